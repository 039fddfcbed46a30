"""What a reviewer relies on in HAL's outputs: choices are made on validation scores only, the
default cost is exact (samples), a never-switched hybrid is shown as the retrain run, TensorBoard's
HParams carry the settings that matter (and no ε/k for baselines), result files are readable by
colleagues, and the CLI says true things. Offline, deterministic, seconds."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.aggregate import recommended_hybrids
from analysis.report import build_report, mark_front
from hal.core.errors import HalError
from hal.core.records import RoundRecord, write_records, write_summary
from hal.runs.cli import _interrupted_message, format_record
from hal.runs.tensorboard import RoundWriter
from hal.sweep.ranking import rank_configurations
from tests.test_analysis import brute_force_front, make_sweep


def _set_test_scores(sweep: Path, score_of) -> None:
    """Overwrite every run's test F1 (summary and last record) with ``score_of(summary)``."""
    for path in sweep.rglob("summary.json"):
        if "report" in path.parts:
            continue
        summary = json.loads(path.read_text())
        summary["final_test_f1"] = score_of(summary)
        path.write_text(json.dumps(summary))
        lines = (path.parent / "records.jsonl").read_text().splitlines()
        last = json.loads(lines[-1])
        last["test_f1"] = summary["final_test_f1"]
        (path.parent / "records.jsonl").write_text("\n".join([*lines[:-1], json.dumps(last)]) + "\n")


def _choices(report) -> pd.DataFrame:
    return report.table.set_index("config")[["on_front", "recommended"]].sort_index()


# ---------------------------------------------------------------------------------------------
# choose on validation


def test_selection_never_reads_test_scores(tmp_path):
    sweep = make_sweep(tmp_path / "sweep", unfinished=False)
    # Adversarial test scores: the worse on validation, the better on test.
    _set_test_scores(sweep, lambda s: 2.0 - s["final_val_f1"])
    first = build_report(sweep, tmp_path / "a")
    _set_test_scores(sweep, lambda s: float(np.random.default_rng(s["seed"]).random()))
    second = build_report(sweep, tmp_path / "b")
    pd.testing.assert_frame_equal(_choices(first), _choices(second))

    table = first.table
    hybrids = table[(table["strategy"] == "hybrid") & ~table["never_switched"]]
    best_val = hybrids.sort_values("final_val_f1_mean", ascending=False).iloc[0]
    assert table.loc[table["recommended"], "config"].tolist() == [best_val["config"]]
    assert best_val["config"] != hybrids.sort_values("final_test_f1_mean").iloc[-1]["config"]
    # every table says which column chooses and which is the outcome
    md = (tmp_path / "a" / "summary.md").read_text()
    assert "val F1 (chooses)" in md and "test F1 (outcome)" in md


def test_test_f1_cannot_be_the_choosing_score(tmp_path):
    sweep = make_sweep(tmp_path / "sweep", unfinished=False)
    with pytest.raises(HalError, match="outcome"):
        build_report(sweep, tmp_path / "out", score="f1")
    table = pd.DataFrame({"strategy": ["hybrid"], "final_test_f1_mean": [0.9]})
    with pytest.raises(ValueError, match="validation"):
        recommended_hybrids(table, [], score="final_test_f1")


def test_sweep_ranking_uses_seed_mean_validation_f1():
    def trial(eps, seed, val, test, switch=3.0):
        run = {"strategy": "hybrid", "epsilon": eps, "k": 2, "query_size": 32, "seed": seed}
        return run, {"val_f1": val, "final_test_f1": test, "total_train_samples": 100, "switch_round": switch}

    rows = [trial(0.01, 0, 0.90, 0.10), trial(0.01, 1, 0.70, 0.10),  # mean val 0.80, worst test
            trial(0.02, 0, 0.85, 0.99), trial(0.02, 1, 0.60, 0.99),  # mean val 0.725, best test
            trial(0.05, 0, 0.99, 0.99, switch=float("nan"))]          # never switched: = retrain
    lines = rank_configurations(rows)
    ranked = [line for line in lines if line.startswith("  hybrid")]
    assert "ε=0.01" in ranked[0] and "val F1 0.8000 (2 seeds)" in ranked[0]
    assert "ε=0.02" in ranked[1]
    assert not any("ε=0.05" in line for line in ranked)
    assert any("never switched" in line and "= retrain" in line for line in lines)
    assert "validation" in lines[0] and "outcome" in lines[0]


# ---------------------------------------------------------------------------------------------
# exact cost by default; equal samples are equal cost


def test_default_front_is_on_samples_not_seconds(tmp_path):
    sweep = make_sweep(tmp_path / "sweep", unfinished=False)
    # Seconds that contradict samples: the more samples, the faster.
    for path in sweep.rglob("summary.json"):
        summary = json.loads(path.read_text())
        summary["total_train_time_s"] = 1e6 / summary["total_train_samples"]
        path.write_text(json.dumps(summary))
    table = build_report(sweep, tmp_path / "out").table
    candidates = table[~table["never_switched"]]
    expected = brute_force_front(candidates["total_train_samples_mean"].to_numpy(),
                                 candidates["final_val_f1_mean"].to_numpy())
    assert candidates["on_front"].tolist() == expected.tolist()
    timed = build_report(sweep, tmp_path / "timed", cost="time").table
    assert timed["on_front"].tolist() != table["on_front"].tolist()  # the flag does change the axis


def test_equal_samples_are_equal_cost_on_a_time_front():
    # retrain and a finetune baseline did exactly the same work; finetune's clock read lower.
    table = pd.DataFrame({
        "dataset": ["d", "d", "d"], "strategy": ["retrain", "finetune", "new_only"],
        "total_train_time_s_mean": [10.0, 8.0, 1.0], "total_train_samples_mean": [1000, 1000, 100],
        "final_val_f1_mean": [0.80, 0.79, 0.50], "never_switched": [False, False, False],
        "switch_round_n": [0, 0, 0]})
    marked = mark_front(table, ["dataset", "strategy"], "total_train_time_s", "final_val_f1")
    assert marked["front_cost"].tolist()[:2] == [9.0, 9.0]
    assert marked["on_front"].tolist() == [True, False, True]  # 2 s of noise buys finetune nothing


# ---------------------------------------------------------------------------------------------
# a never-switched hybrid is retrain


def test_never_switched_hybrid_is_labelled_retrain_and_kept_off_the_front(tmp_path):
    # ε tiny and k large: the hybrid never switches and did exactly retrain's work.
    sweep = tmp_path / "sweep"
    from tests.test_analysis import make_run

    for seed in (1, 2):
        make_run(sweep / f"retrain_{seed}", "retrain", seed)
        make_run(sweep / f"never_{seed}", "hybrid", seed, epsilon=1e-9, k=5)
        make_run(sweep / f"hybrid_{seed}", "hybrid", seed, epsilon=0.05, k=1)
    report = build_report(sweep, tmp_path / "out")
    row = report.table[(report.table["strategy"] == "hybrid") & (report.table["epsilon"] < 1e-6)].iloc[0]
    assert row["never_switched"] and row["config"].endswith("= retrain, never switched")
    assert not row["on_front"] and not row["recommended"]
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "= retrain, never switched" in md and "0 (same samples as retrain)" in md
    front = pd.read_csv(tmp_path / "out" / "pareto.csv")
    assert not front["config"].str.contains("never switched").any()
    assert report.table.loc[report.table["recommended"], "epsilon"].tolist() == [0.05]


# ---------------------------------------------------------------------------------------------
# TensorBoard HParams


def _hparams_of(log_dir: Path) -> tuple[dict, list[str], list[str], list[str]]:
    """(session hparams, declared hparam names, declared metric tags, scalar tags) of a run."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    content = acc.PluginTagToContent(metadata.PLUGIN_NAME)
    start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    experiment = metadata.parse_experiment_plugin_data(content[metadata.EXPERIMENT_TAG])
    values = {name: value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind"))
              for name, value in start.hparams.items()}
    return (values, [h.name for h in experiment.hparam_infos],
            [m.name.tag for m in experiment.metric_infos], acc.Tags()["scalars"])


def _write_tb_run(log_dir: Path, config: dict) -> None:
    writer = RoundWriter(log_dir, config)
    for r in range(2):
        writer.log(RoundRecord(r, 10 + r, r, "retrain", 0, 0.5, 0.5, None if r == 0 else 0.0,
                               0.4 if r == 1 else None, 1.0, 1.0 + r, 10, 10 * (r + 1), 0.1, 0.1))
    writer.finish({"rounds": 2, "final_val_f1": 0.5, "aulc": 0.5, "total_train_samples": 20,
                   "total_train_time_s": 2.0, "final_test_f1": 0.4})


def test_hparams_show_strategy_query_size_seed_and_no_eps_k_for_baselines(tmp_path):
    base = {"dataset": "synthetic", "learner": "tfidf", "epsilon": 0.02, "k": 2, "monitor": "val",
            "query_strategy": "entropy", "finetune_epochs": 5, "replay_fraction": 1.0}
    _write_tb_run(tmp_path / "retrain", {**base, "strategy": "retrain", "query_size": 16, "seed": 3})
    _write_tb_run(tmp_path / "hybrid", {**base, "strategy": "hybrid", "query_size": 32, "seed": 4})

    values, declared, metrics, scalars = _hparams_of(tmp_path / "retrain")
    assert values["strategy"] == "retrain" and values["query_size"] == 16 and values["seed"] == 3
    assert not {"epsilon", "k", "monitor", "finetune_epochs"} & set(values)  # unused: empty cells
    assert {"strategy", "epsilon", "k", "query_size", "seed", "monitor"} <= set(declared)
    assert {"final/val_f1", "final/aulc", "final/train_samples", "final/test_f1"} <= set(metrics)
    # no duplicates: monitor F1 = val F1 here, and test F1 of one round is final/test_f1
    assert "F1/monitor" not in scalars and "F1/test" not in scalars and "F1/val" in scalars

    values, *_ = _hparams_of(tmp_path / "hybrid")
    assert values["strategy"] == "hybrid" and values["epsilon"] == pytest.approx(0.02) and values["k"] == 2
    assert values["query_size"] == 32 and values["monitor"] == "val"


# ---------------------------------------------------------------------------------------------
# result files readable by colleagues


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_result_files_respect_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        record = RoundRecord(0, 10, 0, "retrain", 0, 0.5, 0.5, None, 0.4, 1.0, 1.0, 10, 10, 0.1, 0.1)
        write_records(tmp_path, [record])
        write_summary(tmp_path, {"final_val_f1": 0.5})
    finally:
        os.umask(old)
    for name in ("records.jsonl", "summary.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name


# ---------------------------------------------------------------------------------------------
# CLI lines


def test_switch_is_printed_once():
    def record(r, mode, switched):
        return RoundRecord(r, 10, 1, mode, switched, 0.5, 0.5, 0.0, None, 1.0, 1.0, 10, 10, 0.1, 0.1)

    lines = [format_record(record(2, "retrain", 0)), format_record(record(3, "retrain", 1)),
             format_record(record(4, "finetune", 1)), format_record(record(5, "finetune", 1))]
    assert [("switch" in line) for line in lines] == [False, True, False, False]
    assert "from round 4" in lines[1]


def test_interrupt_before_the_first_round_says_nothing_to_resume(tmp_path):
    message = _interrupted_message(argparse.Namespace(out=str(tmp_path / "run")))
    assert "nothing to resume" in message and "continue with" not in message
