"""Sweeps on Ray Tune: a tiny grid end to end, retries from checkpoints, resume, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "sweeps" / "eps_k_grid.py"
TINY_RUN = dict(dataset="synthetic", synthetic_size=400, synthetic_classes=3, learner="tfidf",
                initial_size=20, rounds=4, epochs=2, tfidf_max_features=2000)
TIMING = {"train_time_s", "cum_train_time_s", "query_time_s", "eval_time_s"}


def _records(trial_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (trial_dir / "records.jsonl").read_text().splitlines()]


def _untimed(records):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


def _spec(tmp_path, name, **kw):
    from hal.sweep.spec import SweepSpec

    spec = SweepSpec(name=name, run=dict(TINY_RUN), strategies=["hybrid", "retrain"], epsilon=[0.02],
                     k=[1, 2], query_size=[10], seed=[0], storage_path=str(tmp_path), max_failures=1)
    for key, value in kw.items():
        setattr(spec, key, value)
    return spec.validate()


def _trial_dirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and (p / "params.json").exists())


def test_tiny_sweep_end_to_end(local_ray, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    from hal.sweep.spec import trial_overrides
    from hal.sweep.tuners import grid_tuner, prepare_shared

    spec = _spec(tmp_path, "tiny")
    runs = trial_overrides(spec)
    assert len(runs) == 3  # hybrid × 2 k + retrain
    results = grid_tuner(spec, runs, prepare_shared(runs)).fit()
    assert not results.errors and len(results) == 3
    for result in results:
        history = result.metrics_dataframe
        assert history["round"].tolist() == list(range(TINY_RUN["rounds"]))
        assert history["labeled"].tolist() == [20, 30, 40, 50]
    dirs = _trial_dirs(tmp_path / "tiny")
    assert len(dirs) == 3
    for trial_dir in dirs:
        assert [r["round"] for r in _records(trial_dir)] == [0, 1, 2, 3]
        summary = json.loads((trial_dir / "summary.json").read_text())
        assert summary["final_test_f1"] is not None and summary["dataset"] == "synthetic"
        events = EventAccumulator(str(trial_dir)).Reload()
        tags = set(events.Tags()["scalars"])
        assert {"F1/val", "F1/delta", "cost/cum_train_time_s", "cost/cum_train_samples",
                "cost/labeled", "final/test_f1"} <= tags
        assert ("switch/switched" in tags) == (summary["config"]["strategy"] == "hybrid")
        assert [e.step for e in events.Scalars("F1/val")] == [0, 1, 2, 3]
        assert not any(t.startswith("ray/") for t in tags)
        # HParams written when the trial started, so the tab compares runs while they go
        start = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
        hparams = plugin_data_pb2.HParamsPluginData.FromString(start).session_start_info.hparams
        assert {"strategy", "query_size", "seed"} <= set(hparams)
        # ε and k mean nothing to a baseline: left empty there
        assert ({"epsilon", "k"} <= set(hparams)) == (summary["config"]["strategy"] == "hybrid")
        assert hparams["strategy"].string_value == summary["config"]["strategy"]


def test_failed_trial_is_retried_from_its_checkpoint(local_ray, tmp_path):
    from hal.core.config import make_config
    from hal.runs.build import new_loop
    from hal.sweep.spec import trial_overrides
    from hal.sweep.tuners import grid_tuner, prepare_shared

    spec = _spec(tmp_path, "flaky", strategies=["hybrid"], k=[1])
    runs = trial_overrides(spec)
    shared = prepare_shared(runs)
    results = grid_tuner(spec, runs, shared, extra={"fail_at_round": 2}).fit()
    assert not results.errors
    history = results[0].metrics_dataframe
    assert history["round"].tolist() == [0, 1, 2, 3]  # each round exactly once
    trial_dir = _trial_dirs(tmp_path / "flaky")[0]
    assert "injected failure" in (trial_dir / "error.txt").read_text()  # it did fail once

    cfg = make_config(runs[0]).resolved()
    (prepared,) = shared.values()
    unfailed = [r.to_dict() for r in new_loop(cfg, prepared)]
    assert _untimed(_records(trial_dir)) == _untimed(unfailed)


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def test_resume_finishes_only_unfinished_trials(tmp_path):
    """Independent trials (--no-share-prefix) interrupted by Ctrl+C, then --resume."""
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({
        "name": "resumable", "run": TINY_RUN,
        "grid": {"strategies": ["hybrid", "retrain"], "epsilon": [0.01, 0.02], "k": [1, 2],
                 "query_size": [10], "seed": [0]},
        "resources": {"cpus_per_trial": 1, "max_concurrent": 1}}))
    args = ["--config", str(config), "--storage-path", str(tmp_path), "--no-share-prefix"]
    with open(tmp_path / "interrupted.out", "w") as out:
        proc = subprocess.Popen([sys.executable, str(SCRIPT), *args], cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    experiment = tmp_path / "resumable"
    deadline = time.time() + 240
    while time.time() < deadline and not list(experiment.glob("*/summary.json")):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl+C does: Tune saves its state and stops
    proc.wait(timeout=120)
    # finished = Tune received the trial's last round; only those must not run again
    finished = {d.name: (d / "summary.json").stat().st_mtime_ns for d in _trial_dirs(experiment)
                if (d / "summary.json").is_file()}
    assert 1 <= len(finished) < 5, "the sweep should have been stopped part-way"
    assert "--resume" in (tmp_path / "interrupted.out").read_text()  # Ctrl+C says how to continue

    done = _cli(*args, "--resume")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"({len(finished)} finished before)" in done.stdout
    dirs = _trial_dirs(experiment)
    assert len(dirs) == 5
    for trial_dir in dirs:
        # HAL's records and Tune's own result.json (rewritten whole by the resumed sweep) hold
        # each round exactly once
        assert [r["round"] for r in _records(trial_dir)] == [0, 1, 2, 3]
        assert _reported_rounds(trial_dir) == [0, 1, 2, 3]
        assert (trial_dir / "summary.json").exists()
        if trial_dir.name in finished:
            assert (trial_dir / "summary.json").stat().st_mtime_ns == finished[trial_dir.name], \
                f"{trial_dir.name} ran again"


def _reported_rounds(trial_dir: Path) -> list[int]:
    path = trial_dir / "result.json"
    if not path.exists():
        return []
    return [json.loads(line)["round"] for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("args, phrase", [
    (["--epsilons", ""], "--epsilons is empty"),
    (["--ks", "a,b"], "--ks"),
    (["--cpus-per-trial", "-1"], "cpus_per_trial must be > 0"),
    (["--gpus-per-trial", "-0.5"], "gpus_per_trial must be >= 0"),
    (["--strategies", "hybrid,bogus"], "unknown strategy 'bogus'"),
    (["--config", "/nonexistent/sweep.yaml"], "does not exist"),
    (["--address", "127.0.0.1:1"], "could not start or join"),
])
def test_bad_flags_exit_2_with_one_line(args, phrase, tmp_path):
    out = _cli(*args, "--storage-path", str(tmp_path), timeout=120)
    assert out.returncode == 2, out.stderr[-2000:]
    assert phrase in out.stderr
    assert "Traceback" not in out.stderr


def test_unknown_config_keys_exit_2(tmp_path):
    for content, phrase in [({"name": "x", "grid": {"epsilons": [0.1]}}, "unknown key 'epsilons'"),
                            ({"name": "x", "run": {"epochz": 3}}, "unknown config key 'epochz'"),
                            ({"nmae": "x"}, "unknown key 'nmae'")]:
        config = tmp_path / "bad.yaml"
        config.write_text(yaml.safe_dump(content))
        out = _cli("--config", str(config), "--storage-path", str(tmp_path), timeout=120)
        assert out.returncode == 2 and phrase in out.stderr, out.stderr
        assert "Traceback" not in out.stderr


def test_optuna_search_runs_hybrid_trials_and_finds_a_front(tmp_path):
    config = tmp_path / "search.yaml"
    config.write_text(yaml.safe_dump({"name": "search", "run": TINY_RUN, "grid": {"query_size": [10, 20]}}))
    script = ROOT / "sweeps" / "optuna_pareto.py"
    done = subprocess.run([sys.executable, str(script), "--config", str(config), "--num-samples", "4",
                           "--storage-path", str(tmp_path), "--max-concurrent", "2",
                           "--query-strategies", "entropy,coreset"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "python -m analysis.report" in done.stdout
    from hal.core.config import make_config
    from hal.data.inputs import prepare
    from hal.runs.build import new_loop

    search = tmp_path / "search_optuna"
    summaries = {p.parent: json.loads(p.read_text()) for p in search.glob("*/summary.json")}
    assert len(summaries) == 4
    for trial_dir, s in summaries.items():
        cfg = s["config"]
        assert cfg["strategy"] == "hybrid" and 0.001 <= cfg["epsilon"] <= 0.05
        assert 1 <= cfg["k"] <= 4 and cfg["query_size"] in (10, 20)
        assert cfg["query_strategy"] in ("entropy", "coreset")
        # each sample trained only its tail from the shared trajectory, with an independent run's records
        assert s["shared_prefix"]["switch_round"] == s["switch_round"]
        run = make_config(cfg).resolved()
        alone = [r.to_dict() for r in new_loop(run, prepare(run))]
        assert _untimed(_records(trial_dir)) == _untimed(alone)
    spend = json.loads((search / "sweep_summary.json").read_text())
    assert spend["shared_prefix"] and spend["configurations"] == 4
    assert "query strategy in ['entropy', 'coreset']" in done.stdout  # searched, one trajectory per choice
    assert not (search / "_prefix").exists(), "the search's fork checkpoints were left behind"


@pytest.mark.slow
def test_optuna_search_resumes_and_refuses_a_second_start(tmp_path):
    """Killed part-way, the search continues with --resume: every sample exactly once, finished
    ones not run again. Started again without --resume, or resumed with other settings: one line,
    exit 2, at once."""
    config = tmp_path / "search.yaml"
    config.write_text(yaml.safe_dump({"name": "again", "run": TINY_RUN, "grid": {"query_size": [10]}}))
    script = ROOT / "sweeps" / "optuna_pareto.py"
    args = [sys.executable, str(script), "--config", str(config), "--num-samples", "6", "--storage-path",
            str(tmp_path), "--max-concurrent", "2"]
    search = tmp_path / "again_optuna"
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, env={**os.environ, "HAL_TEST_ROUND_SLEEP_S": "0.2"})
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and len(list(search.glob("*/summary.json"))) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    before = {p.parent.name: p.stat().st_mtime_ns for p in search.glob("*/summary.json")}
    assert 2 <= len(before) < 6, "the search should have been killed part-way"

    started = time.time()
    again = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "already exists" in again.stderr and "--resume" in again.stderr
    other = subprocess.run([*args, "--resume", "--k-range", "1,2"], cwd=ROOT, capture_output=True, text=True,
                           timeout=120)
    assert other.returncode == 2 and "k_range" in other.stderr, other.stderr
    assert time.time() - started < 60 and len(again.stderr.strip().splitlines()) == 1

    done = subprocess.run([*args, "--resume"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    summaries = {p.parent.name: json.loads(p.read_text()) for p in search.glob("*/summary.json")}
    assert len(summaries) == 6  # each sample once
    samples = [name.rsplit("_", 1)[1] for name in summaries]
    assert len(set(samples)) == 6 and all(s.startswith("sample") for s in samples)
    for name, mtime in before.items():
        assert (search / name / "summary.json").stat().st_mtime_ns == mtime, f"{name} ran again"
    assert "6 of 6 configurations finished" in done.stdout


# --- query strategies as a sweep axis -----------------------------------------------------------


def test_query_strategies_are_a_grid_axis_with_their_own_baselines_and_names(tmp_path):
    from hal.sweep import prefix
    from hal.sweep.naming import config_name, trial_name
    from hal.sweep.spec import load_spec, trial_overrides

    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump({"name": "qs", "run": TINY_RUN, "grid": {
        "strategies": ["hybrid", "retrain"], "epsilon": [0.02], "k": [1, 2], "query_size": [10],
        "query_strategy": ["entropy", "badge"], "seed": [0]}}))
    runs = trial_overrides(load_spec(config).validate())
    names = [trial_name(r) for r in runs]
    assert len(names) == len(set(names)) == 6  # (2 hybrids + retrain) × 2 strategies
    assert "hybrid_eps0.02_k1_q10_s0" in names and "hybrid_eps0.02_k1_q10_badge_s0" in names
    assert "retrain_q10_badge_s0" in names and config_name(runs[-1]) == "retrain q=10 badge"
    groups, independent = prefix.plan_groups(runs, trial_name)
    # one retrain trajectory per query strategy, each the baseline of its own hybrids
    assert len(groups) == 2 and not independent
    for group in groups:
        assert group.baseline and len({m.run["query_strategy"] for m in group.members}) == 1
        assert group.trajectory["query_strategy"] == group.members[0].run["query_strategy"]
    # without the axis the run's own setting holds, and names stay as before
    from hal.sweep.spec import SweepSpec

    plain = trial_overrides(SweepSpec(run={**TINY_RUN, "query_strategy": "coreset"}, strategies=["retrain"]).validate())
    assert plain[0]["query_strategy"] == "coreset" and trial_name(plain[0]) == "retrain_q32_coreset_s0"


@pytest.mark.parametrize("args, phrase", [
    (["--query-strategies", "entropy,qbc"], "unknown query_strategy 'qbc'"),
    (["--query-strategies", "badge,badge"], "repeats 'badge'"),
    (["--query-strategies", "bald"], "--query-strategy bald samples predictions with dropout"),
])
def test_bad_query_strategy_axis_exits_2_with_one_line(args, phrase, tmp_path):
    out = _cli(*args, "--storage-path", str(tmp_path), timeout=120)
    assert out.returncode == 2 and phrase in out.stderr, out.stderr[-2000:]
    assert "Traceback" not in out.stderr


def test_a_shared_sweep_over_query_strategies_equals_independent_runs(local_ray, tmp_path):
    from analysis.report import build_report
    from hal.core.config import make_config
    from hal.data.inputs import prepare
    from hal.runs.build import new_loop
    from hal.sweep.spec import trial_overrides
    from hal.sweep.tuners import grid_tuner, prepare_shared

    spec = _spec(tmp_path, "qs", query_strategy=["coreset", "badge"], k=[1])
    runs = trial_overrides(spec)
    results = grid_tuner(spec, runs, prepare_shared(runs), share_prefix=True).fit()
    assert not results.errors
    dirs = {p.name: p for p in (tmp_path / "qs").iterdir() if (p / "summary.json").is_file()}
    assert sorted(dirs) == sorted(["hybrid_eps0.02_k1_q10_coreset_s0", "retrain_q10_coreset_s0",
                                   "hybrid_eps0.02_k1_q10_badge_s0", "retrain_q10_badge_s0"])
    for run in runs:
        cfg = make_config(run).resolved()
        alone = [r.to_dict() for r in new_loop(cfg, prepare(cfg))]
        from hal.sweep.naming import trial_name

        assert _untimed(_records(dirs[trial_name(run)])) == _untimed(alone)
        summary = json.loads((dirs[trial_name(run)] / "summary.json").read_text())
        assert summary["total_query_time_s"] > 0 and summary["config"]["query_strategy"] == run["query_strategy"]
    report = build_report(tmp_path / "qs", tmp_path / "report")
    text = (tmp_path / "report" / "summary.md").read_text()
    assert "query time (s)" in text and "retrain q=10 badge" in text and "retrain q=10 coreset" in text
    # each hybrid is compared with the retrain run of its own query strategy
    table = report.table
    label_of = dict(zip(table["config_id"], table["config"]))
    for _, row in table[table["strategy"] == "hybrid"].iterrows():
        assert label_of[row["reference_id"]] == f"retrain q=10 {row['query_strategy']}"
