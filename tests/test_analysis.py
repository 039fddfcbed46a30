"""Analysis: Pareto front vs brute force, seed aggregation and savings by hand, the report end to end
on a tiny sweep built from hal.core.records, and the CLI's error exits. Offline, deterministic."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.aggregate import assign_configs, config_keys, config_table
from analysis.load import load_results
from analysis.pareto import front_by_group, pareto_mask
from analysis.report import PNG_FILES, build_report, main
from hal.core.config import RunConfig
from hal.core.records import RoundRecord, read_records, summarize, write_records, write_summary

REPO = Path(__file__).resolve().parents[1]



def test_records_written_before_the_signal_fields_still_load(tmp_path):
    """Files from before ``monitor_score``/``signal`` existed held the switch signal (for every
    monitor) in ``monitor_f1``/``delta_f1``: the loader reads it from there."""
    run = tmp_path / "old_run"
    records = make_run(run, "hybrid", seed=1)
    old = [{k: v for k, v in r.to_dict().items() if k not in ("monitor_score", "signal")} for r in records]
    (run / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in old))
    rounds = load_results(run).rounds
    assert rounds["signal"].tolist()[1:] == [r.delta_f1 for r in records][1:]
    assert rounds["monitor_score"].tolist() == [r.monitor_f1 for r in records]

# ---------------------------------------------------------------------------------------------
# fixture builder: a tiny sweep laid out like a Ray Tune experiment directory


def make_run(run_dir: Path, strategy: str, seed: int, epsilon: float = 0.01, k: int = 2,
             query_size: int = 8, rounds: int = 8, finished: bool = True, **overrides) -> list[RoundRecord]:
    """Write records.jsonl (and summary.json when ``finished``) of a plausible run. Hybrid runs
    apply the real switch rule to their own ΔF1, so switch rounds differ across (ε, k).
    ``overrides`` are further RunConfig fields (dataset, learner, ...)."""
    settings = {"finetune_epochs": 2, **overrides}
    cfg = RunConfig(strategy=strategy, seed=seed, epsilon=epsilon, k=k, query_size=query_size,
                    rounds=rounds, initial_size=20, epochs=5,
                    data_dir=f"/data/copy{seed}", cache_dir=f"/cache/{seed}", **settings)
    # Noise from the seed and the configuration, so configurations differ in more than cost.
    rng = np.random.default_rng([seed, zlib.crc32(f"{strategy}{epsilon}{k}{query_size}".encode())])
    offset = {"retrain": 0.0, "finetune": -0.01, "new_only": -0.2, "hybrid": 0.0}[strategy]
    records: list[RoundRecord] = []
    cum_time, cum_samples, counter, switched = 0.0, 0, 0, 0
    previous = None
    for r in range(rounds):
        labeled = 20 + r * query_size
        if strategy == "retrain" or r == 0 or (strategy == "hybrid" and not switched):
            mode = "retrain"
        else:
            mode = "new_only" if strategy == "new_only" else "finetune"
        samples = {"retrain": labeled * 5, "finetune": labeled * 2, "new_only": query_size * 2}[mode]
        seconds = samples * 0.001 * (1 + 0.1 * rng.random())
        cum_time += seconds
        cum_samples += samples
        if mode == "finetune" and strategy == "hybrid":
            offset = max(offset - 0.002, -0.012)  # fine-tuning drifts a little, round by round
        val = 0.85 + offset - 0.35 * math.exp(-(labeled - 20) / 16) + 0.004 * rng.standard_normal()
        delta = None if previous is None else val - previous
        if strategy == "hybrid" and delta is not None and not switched:
            counter = counter + 1 if abs(delta) < epsilon else 0
            switched = int(counter >= k)
        records.append(RoundRecord(
            round=r, labeled=labeled, queried=0 if r == 0 else query_size, mode=mode,
            switched=switched, val_f1=val, monitor_f1=val, delta_f1=delta, monitor_score=val, signal=delta,
            test_f1=val + 0.01 if r == rounds - 1 else None, train_time_s=seconds,
            cum_train_time_s=cum_time, train_samples=samples, cum_train_samples=cum_samples,
            query_time_s=0.01, eval_time_s=0.02))
        previous = val
    run_dir.mkdir(parents=True, exist_ok=True)
    write_records(run_dir, records)
    # Ray's own files next to ours: analysis must ignore them.
    (run_dir / "result.json").write_text('{"val_f1": 0.5}\n')
    (run_dir / "params.json").write_text(json.dumps({"strategy": strategy, "seed": seed}))
    if finished:
        write_summary(run_dir, summarize(records, cfg.to_dict()))
    return records


def make_sweep(root: Path, seeds=(1, 2), epsilons=(0.01, 0.03), ks=(1, 2), query_size: int = 8,
               hybrid: bool = True, unfinished: bool = True) -> Path:
    """2 seeds x {retrain, finetune, new_only, hybrid over ε x k}, Tune-style trial names (one
    nested a level deeper), plus one unfinished trial."""
    n = 0
    specs = []
    for seed in seeds:
        for strategy in ("retrain", "finetune", "new_only"):
            specs.append(dict(strategy=strategy, seed=seed))
        if hybrid:
            for eps in epsilons:
                for k in ks:
                    specs.append(dict(strategy="hybrid", seed=seed, epsilon=eps, k=k))
    for spec in specs:
        name = (f"hal_run_ab12c_{n:05d}_{n}_epsilon={spec.get('epsilon', 0.01)},k={spec.get('k', 2)},"
                f"seed={spec['seed']},strategy={spec['strategy']}_2026-11-25_17-01-{n:02d}")
        parent = root / "nested" if n == 0 else root
        make_run(parent / name, query_size=query_size, **spec)
        n += 1
    if unfinished:
        make_run(root / "hal_run_ab12c_99999_unfinished", "hybrid", seed=9, finished=False)
    return root


# ---------------------------------------------------------------------------------------------
# Pareto


def brute_force_front(cost, score) -> np.ndarray:
    n = len(cost)
    out = np.zeros(n, dtype=bool)
    for i in range(n):
        if math.isnan(cost[i]) or math.isnan(score[i]):
            continue
        dominated = False
        for j in range(n):
            if j == i or math.isnan(cost[j]) or math.isnan(score[j]):
                continue
            if cost[j] <= cost[i] and score[j] >= score[i] and (cost[j] < cost[i] or score[j] > score[i]):
                dominated = True
                break
        out[i] = not dominated
    return out


# Few distinct values so ties and exact duplicates are common; NaN sometimes.
values = st.one_of(st.sampled_from([0.0, 1.0, 2.0, 3.0, 5.0]), st.just(float("nan")),
                   st.floats(0, 10, allow_nan=False))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(values, values), min_size=0, max_size=25))
def test_pareto_mask_matches_brute_force(points):
    cost = np.array([p[0] for p in points], dtype=float)
    score = np.array([p[1] for p in points], dtype=float)
    assert pareto_mask(cost, score).tolist() == brute_force_front(cost, score).tolist()


def test_pareto_mask_examples():
    # duplicates both stay; equal cost, lower score is dominated; NaN never on the front
    cost = [1, 1, 1, 2, 2, 3, np.nan, 0.5]
    score = [0.8, 0.8, 0.7, 0.9, 0.8, 0.9, 1.0, 0.1]
    assert pareto_mask(cost, score).tolist() == [True, True, False, True, False, False, False, True]
    assert pareto_mask([], []).tolist() == []
    with pytest.raises(ValueError):
        pareto_mask([1, 2], [1])


def test_front_is_computed_per_dataset():
    table = pd.DataFrame({"dataset": ["a", "a", "b"], "c": [1.0, 2.0, 5.0], "s": [0.9, 0.5, 0.1]})
    assert front_by_group(table, "c", "s").tolist() == [True, False, True]


# ---------------------------------------------------------------------------------------------
# aggregation by hand


def hand_trials() -> pd.DataFrame:
    rows = [
        # dataset, strategy, eps, k, q, seed, f1, aulc, time, samples, switch, data_dir
        ("d", "retrain", 0.01, 2, 32, 1, 0.80, 0.70, 100.0, 1000, None),
        ("d", "retrain", 0.02, 2, 32, 2, 0.84, 0.74, 120.0, 1200, None),
        ("d", "hybrid", 0.01, 2, 32, 1, 0.79, 0.69, 60.0, 600, 3),
        ("d", "hybrid", 0.01, 2, 32, 2, 0.85, 0.73, 90.0, 900, 5),
        ("d", "hybrid", 0.02, 2, 32, 3, 0.80, 0.70, 50.0, 500, None),  # no retrain seed 3
        ("d", "finetune", 0.01, 2, 32, 1, 0.78, 0.68, 80.0, 800, None),
        ("d", "finetune", 0.02, 3, 32, 1, 0.76, 0.66, 70.0, 700, None),
        ("d", "finetune", 0.01, 2, 32, 2, 0.82, 0.72, 90.0, 900, None),
        ("d", "hybrid", 0.01, 2, 64, 1, 0.81, 0.71, 40.0, 400, 2),  # no retrain at q=64
    ]
    cols = ["dataset", "strategy", "epsilon", "k", "query_size", "seed", "final_test_f1", "aulc",
            "total_train_time_s", "total_train_samples", "switch_round"]
    df = pd.DataFrame(rows, columns=cols)
    df["learner"] = "tfidf"
    df["switch_round"] = df["switch_round"].astype(float)
    df["data_dir"] = [f"/somewhere/{i}" for i in range(len(df))]  # path-like: never a config key
    df["trial"] = [f"t{i}" for i in range(len(df))]
    return df


def test_config_keys_skip_seed_and_paths_and_blank_hybrid_keys():
    trials = hand_trials()
    keys = config_keys(trials)
    assert keys == ["dataset", "learner", "strategy", "epsilon", "k", "query_size"]
    trials["lr"] = 0.1
    trials.loc[0, "lr"] = 0.2
    assert config_keys(trials)[-1] == "lr"
    assigned = assign_configs(hand_trials(), keys)
    finetune = assigned[assigned["strategy"] == "finetune"]
    assert finetune["config_id"].nunique() == 1  # ε/k blanked: one baseline config per query size
    assert finetune["epsilon"].isna().all() and finetune["k"].isna().all()
    assert finetune["config"].iloc[0] == "finetune q=32"


def test_aggregation_and_savings_by_hand():
    _, table, _ = config_table(hand_trials())
    by = {row["config"]: row for _, row in table.iterrows()}
    # the ε=0.02 hybrid never switched: it is the retrain run and says so
    assert set(by) == {"retrain q=32", "finetune q=32", "hybrid ε=0.01 k=2 q=32",
                       "hybrid ε=0.02 k=2 q=32 = retrain, never switched", "hybrid ε=0.01 k=2 q=64"}

    h = by["hybrid ε=0.01 k=2 q=32"]
    assert h["n_seeds"] == 2
    assert h["final_test_f1_mean"] == pytest.approx(0.82)
    assert h["final_test_f1_std"] == pytest.approx(math.sqrt(2 * 0.03 ** 2))
    assert h["total_train_time_s_mean"] == pytest.approx(75.0)
    assert h["switch_round_mean"] == pytest.approx(4.0) and h["switch_round_n"] == 2
    # paired by seed: time ratios 60/100 = 0.6 and 90/120 = 0.75
    assert h["n_pairs"] == 2
    assert h["cost_ratio_time_mean"] == pytest.approx(0.675)
    assert h["cost_ratio_time_std"] == pytest.approx(math.sqrt(2 * 0.075 ** 2))
    assert h["saving_time_pct_mean"] == pytest.approx(32.5)
    assert h["saving_time_pct_std"] == pytest.approx(100 * math.sqrt(2 * 0.075 ** 2))
    assert h["saving_samples_pct_mean"] == pytest.approx(32.5)
    # F1 differences 0.79 - 0.80 = -0.01 and 0.85 - 0.84 = +0.01; ratios 0.79/0.80 and 0.85/0.84
    assert h["test_f1_diff_mean"] == pytest.approx(0.0, abs=1e-12)
    assert h["test_f1_diff_std"] == pytest.approx(math.sqrt(2 * 0.01 ** 2))
    assert h["test_f1_ratio_mean"] == pytest.approx((0.79 / 0.80 + 0.85 / 0.84) / 2)
    assert h["aulc_diff_mean"] == pytest.approx(-0.01)

    f = by["finetune q=32"]  # three runs (two at seed 1), each paired with its seed's retrain
    assert f["n_seeds"] == 3 and f["n_pairs"] == 3
    assert f["final_test_f1_mean"] == pytest.approx(statistics.mean([0.78, 0.76, 0.82]))
    assert f["final_test_f1_std"] == pytest.approx(statistics.stdev([0.78, 0.76, 0.82]))
    assert f["cost_ratio_time_mean"] == pytest.approx(statistics.mean([0.8, 0.7, 0.75]))
    assert f["switch_round_n"] == 0 and math.isnan(f["switch_round_mean"])

    # no shared seed with retrain: ratio of seed means, no spread
    lone = by["hybrid ε=0.02 k=2 q=32 = retrain, never switched"]
    assert lone["n_pairs"] == 0
    assert lone["cost_ratio_time_mean"] == pytest.approx(50.0 / 110.0)
    assert math.isnan(lone["cost_ratio_time_std"])
    assert lone["test_f1_diff_mean"] == pytest.approx(0.80 - 0.82)
    assert math.isnan(lone["final_test_f1_std"])

    # no retrain at q=64: no savings
    assert math.isnan(by["hybrid ε=0.01 k=2 q=64"]["saving_time_pct_mean"])

    r = by["retrain q=32"]
    assert r["saving_time_pct_mean"] == pytest.approx(0.0) and r["test_f1_diff_mean"] == pytest.approx(0.0)


# ---------------------------------------------------------------------------------------------
# loading and the report


def test_load_finds_nested_trials_and_unfinished(tmp_path):
    sweep = make_sweep(tmp_path / "sweep")
    results = load_results(sweep)
    assert len(results.trials) == 2 * (3 + 4)
    assert results.unfinished == ["hal_run_ab12c_99999_unfinished"]
    assert any(t.startswith("nested/") for t in results.trials["trial"])
    assert len(results.rounds) == len(results.trials) * 8
    assert {"trial", "round", "val_f1", "strategy", "epsilon", "seed"} <= set(results.rounds.columns)
    assert {"final_test_f1", "aulc", "switch_round", "summary_rounds", "rounds"} <= set(results.trials.columns)
    # the seeds, data/cache paths and Ray's files differ per trial: none of them splits a configuration
    _, table, keys = config_table(results.trials, results.config_columns)
    assert len(table) == 3 + 4 and keys == ["dataset", "learner", "strategy", "epsilon", "k", "query_size"]
    assert len(config_table(results.trials)[1]) == 3 + 4  # also without being told the config columns


def test_report_on_tiny_sweep(tmp_path, capsys):
    sweep = make_sweep(tmp_path / "sweep")
    assert main([str(sweep)]) == 0
    out_dir = sweep / "report"
    for name in (*PNG_FILES, "summary.csv", "pareto.csv", "summary.md"):
        assert (out_dir / name).is_file() and (out_dir / name).stat().st_size > 0, name
    printed = capsys.readouterr().out
    assert "Pareto front" in printed and "unfinished" in printed

    summary = pd.read_csv(out_dir / "summary.csv")
    assert len(summary) == 3 + 4
    # every number recomputed straight from the records files, without the analysis package
    per_config: dict[str, dict[str, list[float]]] = {}
    for summary_file in sweep.rglob("summary.json"):
        if "report" in summary_file.parts:
            continue
        cfg = json.loads(summary_file.read_text())["config"]
        recs = read_records(summary_file.parent / "records.jsonl")
        label = cfg["strategy"] + (f" ε={cfg['epsilon']:g} k={cfg['k']}" if cfg["strategy"] == "hybrid" else "")
        label += f" q={cfg['query_size']}"
        d = per_config.setdefault(label, {"f1": [], "time": [], "samples": [], "seed": [], "switch": []})
        d["switch"].append(json.loads(summary_file.read_text())["switch_round"])
        d["f1"].append(recs[-1]["test_f1"])
        d["time"].append(recs[-1]["cum_train_time_s"])
        d["samples"].append(recs[-1]["cum_train_samples"])
        d["seed"].append(cfg["seed"])
    # a hybrid that switched in no seed is the retrain run and is labelled so
    per_config = {(f"{label} = retrain, never switched" if label.startswith("hybrid")
                   and all(x is None for x in d["switch"]) else label): d for label, d in per_config.items()}
    assert set(per_config) == set(summary["config"])
    retrain = per_config["retrain q=8"]
    for _, row in summary.iterrows():
        d = per_config[row["config"]]
        assert row["n_seeds"] == len(d["f1"]) == 2
        assert row["final_test_f1_mean"] == pytest.approx(statistics.mean(d["f1"]))
        assert row["final_test_f1_std"] == pytest.approx(statistics.stdev(d["f1"]))
        assert row["total_train_time_s_mean"] == pytest.approx(statistics.mean(d["time"]))
        assert row["total_train_samples_mean"] == pytest.approx(statistics.mean(d["samples"]))
        ratios = [d["time"][i] / retrain["time"][retrain["seed"].index(s)] for i, s in enumerate(d["seed"])]
        assert row["saving_time_pct_mean"] == pytest.approx(100 * (1 - statistics.mean(ratios)))
        assert row["saving_time_pct_std"] == pytest.approx(100 * statistics.stdev(ratios), abs=1e-9)
        diffs = [d["f1"][i] - retrain["f1"][retrain["seed"].index(s)] for i, s in enumerate(d["seed"])]
        assert row["test_f1_diff_mean"] == pytest.approx(statistics.mean(diffs), abs=1e-12)

    # the default front is the brute-force front of the seed means of training samples (exact) vs
    # final validation F1, never-switched hybrids (= retrain) left out; pareto.csv holds exactly it
    candidates = summary[~summary["never_switched"]]
    expected = brute_force_front(candidates["total_train_samples_mean"].to_numpy(),
                                 candidates["final_val_f1_mean"].to_numpy())
    assert candidates["on_front"].tolist() == expected.tolist()
    assert not summary.loc[summary["never_switched"], "on_front"].any()
    front = pd.read_csv(out_dir / "pareto.csv")
    assert sorted(front["config"]) == sorted(summary.loc[summary["on_front"], "config"])

    md = (out_dir / "summary.md").read_text()
    assert "★" in md and "hal_run_ab12c_99999_unfinished" in md and "## Skipped" not in md
    assert md.count("\n| ") == len(summary) + 1  # header + one row per configuration


def test_report_flags_samples_and_aulc(tmp_path):
    sweep = make_sweep(tmp_path / "sweep", unfinished=False)
    report = build_report(sweep, tmp_path / "out", cost="samples", score="aulc")
    table = report.table
    expected = brute_force_front(table["total_train_samples_mean"].to_numpy(), table["aulc_mean"].to_numpy())
    assert table["on_front"].tolist() == expected.tolist()
    assert not report.unfinished and (tmp_path / "out" / "pareto.png").is_file()


def test_report_single_seed_without_hybrid_says_what_it_skipped(tmp_path):
    sweep = make_sweep(tmp_path / "sweep", seeds=(0,), hybrid=False, unfinished=False)
    report = build_report(sweep)
    names = {p.name for p in report.files}
    assert {"pareto.png", "learning_curves.png", "summary.csv", "pareto.csv", "summary.md"} <= names
    for name in ("delta_f1.png", "switch_timing.png", "heatmap_f1.png", "heatmap_saving.png"):
        assert name not in names and not (report.out_dir / name).exists()
        assert any(reason.startswith(name) for reason in report.skipped)
    md = (report.out_dir / "summary.md").read_text()
    assert "## Skipped" in md and "no hybrid runs" in md and "one seed" in md


def test_report_on_a_single_run_directory(tmp_path):
    run = tmp_path / "run"
    make_run(run, "hybrid", seed=0, epsilon=0.05, k=1)
    report = build_report(run, tmp_path / "out")
    assert len(report.table) == 1 and report.table["on_front"].all()
    assert (tmp_path / "out" / "summary.md").is_file()


def test_report_without_retrain_skips_the_saving_heatmap(tmp_path):
    sweep = tmp_path / "sweep"
    for seed in (1, 2):
        for eps in (0.01, 0.03):
            make_run(sweep / f"h{seed}_{eps}", "hybrid", seed=seed, epsilon=eps)
    report = build_report(sweep)
    assert any(r.startswith("heatmap_saving.png: no retrain") for r in report.skipped)
    assert (report.out_dir / "heatmap_f1.png").is_file()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis.report", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("kind", ["missing", "file", "empty", "only_unfinished"])
def test_cli_bad_path_exits_2_with_one_line(tmp_path, kind):
    target = tmp_path / "target"
    if kind == "file":
        target.write_text("not a sweep")
    elif kind == "empty":
        target.mkdir()
        (target / "result.json").write_text("{}")  # Ray files alone do not make a HAL sweep
    elif kind == "only_unfinished":
        make_run(target / "trial", "retrain", seed=0, finished=False)
    proc = run_cli(str(target))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    if kind == "empty":
        assert "is not a HAL sweep or run directory: no records.jsonl below it" in lines[0]
    assert not (target / "report").exists()  # nothing written that could look like a report


def test_warm_start_settings_do_not_split_retrain_or_hide_the_reference(tmp_path):
    # A benchmark-style sweep: retrain recorded with finetune_epochs=5 (unused by retrain), a
    # hybrid and a finetune baseline with 1-epoch warm rounds. Both must find retrain.
    for seed in (1, 2):
        make_run(tmp_path / f"retrain_{seed}", "retrain", seed, finetune_epochs=5)
        make_run(tmp_path / f"hybrid_{seed}", "hybrid", seed, epsilon=0.03, k=1, finetune_epochs=1)
        make_run(tmp_path / f"finetune_{seed}", "finetune", seed, finetune_epochs=1)
    results = load_results(tmp_path)
    _, table, keys = config_table(results.trials, results.config_columns)
    assert sorted(table["strategy"]) == ["finetune", "hybrid", "retrain"]  # retrain is one config
    for strategy in ("hybrid", "finetune"):
        row = table[table["strategy"] == strategy].iloc[0]
        assert not math.isnan(row["cost_ratio_samples_mean"]) and row["n_pairs"] == 2
