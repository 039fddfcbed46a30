"""Shared-prefix sweeps: grouping, the searcher's schedule, equality with independent trials,
faults (a failing trajectory, a missing fork, an interrupted sweep) and the two costs."""

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

from hal.core.errors import HalError
from hal.sweep import prefix

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "sweeps" / "eps_k_grid.py"
# Small, but the ε × k grid below switches at several rounds (tails and copies) and never.
TINY_RUN = dict(dataset="synthetic", synthetic_size=1200, synthetic_classes=3, learner="tfidf",
                initial_size=40, rounds=10, epochs=5, tfidf_max_features=2000)
TIMING = {"train_time_s", "cum_train_time_s", "query_time_s", "eval_time_s"}
# Summary fields that differ between a shared and an independent run of the same configuration.
RUN_SPECIFIC = {"trial_id", "started_at", "finished_at", "total_train_time_s", "shared_prefix",
                "computed_train_samples", "computed_train_time_s", "resources"}


def _runs(**grid):
    from hal.sweep.spec import SweepSpec, trial_overrides

    spec = SweepSpec(name="t", run=dict(TINY_RUN), **grid)
    return trial_overrides(spec.validate())


def _records(trial_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (trial_dir / "records.jsonl").read_text().splitlines()]


def _untimed(records):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


def _config_dirs(path: Path) -> dict[str, Path]:
    return {p.name: p for p in path.iterdir() if (p / "summary.json").is_file()}


# --- plain logic ----------------------------------------------------------------------------


def test_groups_hold_hybrids_that_differ_only_in_the_rule():
    from hal.sweep.naming import trial_name

    runs = _runs(strategies=["hybrid", "retrain", "finetune"], epsilon=[0.01, 0.02], k=[1, 2],
                 query_size=[10, 20], seed=[0])
    groups, independent = prefix.plan_groups(runs, trial_name)
    assert len(groups) == 2  # one per query size
    for group in groups:
        assert len(group.members) == 4 and group.baseline
        assert group.trajectory["strategy"] == "retrain"
        assert {m.run["query_size"] for m in group.members} == {group.trajectory["query_size"]}
    assert sorted(trial_name(r) for r in independent) == ["finetune_q10_s0", "finetune_q20_s0"]

    groups, independent = prefix.plan_groups(_runs(strategies=["hybrid"], epsilon=[0.01], k=[1, 2],
                                                   query_size=[10], seed=[0, 1]), trial_name)
    assert [g.name for g in groups] == ["trajectory_q10_s0", "trajectory_q10_s1"]
    assert not any(g.baseline for g in groups) and independent == []


def test_replayed_switch_rounds_equal_the_hybrid_runs_own(toy_corpus):
    """The trajectory decides each member's switch round from the retrain run's monitor series;
    it must be the round the hybrid run itself switches after."""
    from hal.core.config import make_config
    from hal.data.inputs import Prepared
    from hal.data.tfidf import tfidf_features
    from hal.runs.build import new_loop

    base = dict(learner="tfidf", initial_size=30, query_size=15, rounds=12, epochs=2, seed=3)
    prepared = Prepared(toy_corpus, "tfidf", tfidf_features(toy_corpus, 2000))
    retrain = list(new_loop(make_config({**base, "strategy": "retrain"}).resolved(), prepared))
    members = [prefix.Member(f"e{e}k{k}", {**base, "strategy": "hybrid", "epsilon": e, "k": k})
               for e in (0.005, 0.02, 0.05) for k in (1, 2)]
    replayed = prefix.switch_rounds(members, retrain)
    for member in members:
        hybrid = new_loop(make_config(member.run).resolved(), prepared)
        list(hybrid)
        assert replayed[member.name] == hybrid.state.trigger.switch_round
        # and its records until the switch are the retrain run's, re-flagged
        own = [r.to_dict() for r in hybrid.records]
        shared = [r.to_dict() for r in prefix.reflag(retrain, replayed[member.name])]
        end = len(own) if replayed[member.name] is None else replayed[member.name] + 1
        assert _untimed(own[:end]) == _untimed(shared[:end])
    assert len(set(replayed.values())) > 1, "the grid should switch at different rounds"


def test_missing_fork_is_named(tmp_path):
    with pytest.raises(HalError, match=r"fork checkpoint .*fork_0003.*round 3 of trajectory g1.* missing"):
        prefix.load_fork(tmp_path, "g1", 3)


class _Searcher:
    """Drive the searcher as Tune would, without Ray's trial machinery."""

    def __init__(self, runs):
        from hal.sweep.naming import trial_name
        from hal.sweep.prefix_search import PrefixSearcher

        groups, independent = prefix.plan_groups(runs, trial_name)
        self.searcher = PrefixSearcher(groups, independent, "/nonexistent", trial_name)
        self.ids = 0

    def take(self) -> list[tuple[str, dict]]:
        out = []
        while True:
            self.ids += 1
            config = self.searcher.suggest(str(self.ids))
            if not isinstance(config, dict):
                return out
            out.append((str(self.ids), config))


def test_tails_start_as_soon_as_their_switch_round_is_known():
    from ray.tune.search import Searcher

    runs = _runs(strategies=["hybrid", "retrain"], epsilon=[0.01, 0.02], k=[1, 2], query_size=[10], seed=[0])
    driver = _Searcher(runs)
    first = driver.take()
    assert [c["role"] for _, c in first] == ["trajectory"] and first[0][1]["baseline"]
    trajectory_id = first[0][0]
    assert driver.searcher.suggest("x") is None  # waiting for the trajectory, not finished
    switches = {"hybrid_eps0.01_k1_q10_s0": None, "hybrid_eps0.01_k2_q10_s0": None,
                "hybrid_eps0.02_k1_q10_s0": 2, "hybrid_eps0.02_k2_q10_s0": None}
    driver.searcher.on_trial_result(trajectory_id, {"prefix_switches": json.dumps(switches)})
    tails = driver.take()
    assert [(c["name"], c["fork"], c["source"]) for _, c in tails] == [("hybrid_eps0.02_k1_q10_s0", 2, None)]
    # two more switch after round 4: one trains the tail, the other waits to copy it
    switches.update({"hybrid_eps0.01_k1_q10_s0": 4, "hybrid_eps0.02_k2_q10_s0": 4})
    driver.searcher.on_trial_result(trajectory_id, {"prefix_switches": json.dumps(switches)})
    (tail_id, tail), = driver.take()
    assert (tail["name"], tail["fork"], tail["source"]) == ("hybrid_eps0.01_k1_q10_s0", 4, None)
    driver.searcher.on_trial_complete(trajectory_id, {"prefix_switches": json.dumps(switches)})
    never = driver.take()
    assert [(c["name"], c["fork"], c["source"]) for _, c in never] == [("hybrid_eps0.01_k2_q10_s0", None, "never")]
    assert driver.searcher.suggest("y") is None  # a copy still waits for its tail
    driver.searcher.on_trial_complete(tail_id, {})
    copies = driver.take()
    assert [(c["name"], c["fork"], c["source"]) for _, c in copies] == [
        ("hybrid_eps0.02_k2_q10_s0", 4, "hybrid_eps0.01_k1_q10_s0")]
    assert driver.searcher.suggest("z") == Searcher.FINISHED
    assert driver.searcher.total == 5  # the retrain trajectory + four hybrids


def test_a_failed_tail_hands_its_round_to_the_next_member():
    runs = _runs(strategies=["hybrid"], epsilon=[0.01, 0.02], k=[1], query_size=[10], seed=[0])
    driver = _Searcher(runs)
    (trajectory_id, _), = driver.take()
    switches = {"hybrid_eps0.01_k1_q10_s0": 3, "hybrid_eps0.02_k1_q10_s0": 3}
    driver.searcher.on_trial_result(trajectory_id, {"prefix_switches": json.dumps(switches)})
    (tail_id, tail), = driver.take()
    driver.searcher.on_trial_complete(tail_id, {}, error=True)
    (_, retry), = driver.take()
    assert (retry["name"], retry["fork"], retry["source"]) == ("hybrid_eps0.02_k1_q10_s0", 3, None)


# --- on Ray Tune ------------------------------------------------------------------------------


def _spec(tmp_path, name, **kw):
    from hal.sweep.spec import SweepSpec

    spec = SweepSpec(name=name, run=dict(TINY_RUN), strategies=["hybrid", "retrain", "new_only"],
                     epsilon=[0.005, 0.02, 0.05], k=[1, 2], query_size=[20], seed=[0],
                     storage_path=str(tmp_path), max_failures=1)
    for key, value in kw.items():
        setattr(spec, key, value)
    return spec.validate()


def test_shared_sweep_equals_independent_trials_and_costs_less(local_ray, tmp_path):
    from hal.sweep.spec import trial_overrides
    from hal.sweep.spend import write_sweep_summary
    from hal.sweep.tuners import build_grid_tuner, build_shared_tuner, prepare_shared

    spec = _spec(tmp_path, "shared")
    runs = trial_overrides(spec)
    shared_inputs = prepare_shared(runs)
    shared = build_shared_tuner(spec, runs, shared_inputs).fit()
    assert not shared.errors
    alone = build_grid_tuner(_spec(tmp_path, "alone"), runs, shared_inputs).fit()
    assert not alone.errors

    got, want = _config_dirs(tmp_path / "shared"), _config_dirs(tmp_path / "alone")
    assert sorted(got) == sorted(want) and len(got) == len(runs)
    switch_rounds = set()
    for name, trial_dir in want.items():
        assert _untimed(_records(got[name])) == _untimed(_records(trial_dir)), name
        mine = json.loads((got[name] / "summary.json").read_text())
        theirs = json.loads((trial_dir / "summary.json").read_text())
        assert {k: v for k, v in mine.items() if k not in RUN_SPECIFIC} == \
            {k: v for k, v in theirs.items() if k not in RUN_SPECIFIC}, name
        switch_rounds.add(theirs["switch_round"])
    assert len(switch_rounds - {None}) >= 2, "the grid should exercise tails and copies"

    spend = write_sweep_summary(spec, shared, shared_prefix=True)
    on_disk = json.loads((tmp_path / "shared" / "sweep_summary.json").read_text())
    assert on_disk["computed_train_samples"] == spend["computed_train_samples"]
    independent = sum(json.loads((d / "summary.json").read_text())["total_train_samples"] for d in want.values())
    assert spend["independent_train_samples"] == independent
    assert spend["computed_train_samples"] < independent / 2
    (group,) = on_disk["groups"].values()
    assert group["trajectory"] == "retrain_q20_s0" and len(group["configurations"]) == 6
    assert not list((tmp_path / "shared" / prefix.PREFIX_DIR).rglob("fork_*")), "forks left behind"


def test_failed_trajectory_retries_from_its_checkpoint_and_tails_are_unaffected(local_ray, tmp_path):
    from hal.sweep.spec import trial_overrides
    from hal.sweep.tuners import build_grid_tuner, build_shared_tuner, prepare_shared

    spec = _spec(tmp_path, "flaky", strategies=["hybrid"], max_failures=2)
    runs = trial_overrides(spec)
    inputs = prepare_shared(runs)
    results = build_shared_tuner(spec, runs, inputs, extra={"fail_at_round": 3}).fit()
    assert not results.errors
    trajectory = next(r for r in results if r.config.get("role") == "trajectory")
    assert "injected failure at round 3" in (Path(trajectory.path) / "error.txt").read_text()
    rounds = trajectory.metrics_dataframe["round"].tolist()
    assert rounds == sorted(set(rounds)) and rounds[0] == 0, "a round was trained twice"
    alone = build_grid_tuner(_spec(tmp_path, "steady", strategies=["hybrid"]), runs, inputs).fit()
    assert not alone.errors
    want = _config_dirs(tmp_path / "steady")
    for name, trial_dir in _config_dirs(tmp_path / "flaky").items():
        assert _untimed(_records(trial_dir)) == _untimed(_records(want[name])), name


def _cli(*args, timeout=300, env=None):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


def _start_and_kill(args, env, until, timeout=240):
    """Start the sweep script, SIGKILL it (and its process group) once ``until()`` holds."""
    proc = subprocess.Popen([sys.executable, str(SCRIPT), *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, env=env)
    deadline = time.time() + timeout
    while time.time() < deadline and not until() and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


@pytest.mark.slow
def test_killed_sweep_resumes_without_losing_or_repeating_rounds(tmp_path):
    """The driver SIGKILLed twice (before any trial started, then part-way, with Tune's snapshots
    as rare as on a large sweep), then --resume: every configuration completes with each round
    exactly once, and trials that had finished are not run again. (Independent trials: the same
    mechanism, tested after Ctrl+C in test_sweep.py.)"""
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({
        "name": "killed", "run": TINY_RUN,
        "grid": {"strategies": ["hybrid", "retrain"], "epsilon": [0.005, 0.02, 0.05], "k": [1, 2],
                 "query_size": [20], "seed": [0, 1]},
        "resources": {"cpus_per_trial": 1, "max_concurrent": 2}}))
    args = ["--config", str(config), "--storage-path", str(tmp_path)]
    env = {**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "30"}
    experiment = tmp_path / "killed"
    _start_and_kill(args, env, until=experiment.is_dir)  # before any trial has started
    assert not list(experiment.glob("*/records.jsonl"))
    _start_and_kill(args + ["--resume"], env, until=lambda: len(list(experiment.glob("*/summary.json"))) >= 3)
    finished = {p.parent.name: p.stat().st_mtime_ns for p in experiment.glob("*/summary.json")}
    assert 3 <= len(finished) < 14, "the sweep should have been killed part-way"

    done = _cli(*args, "--resume", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    dirs = _config_dirs(experiment)
    assert len(dirs) == 14  # 12 hybrids + 2 retrain baselines
    for name, trial_dir in dirs.items():
        assert [r["round"] for r in _records(trial_dir)] == list(range(TINY_RUN["rounds"])), name
        if name in finished:
            assert (trial_dir / "summary.json").stat().st_mtime_ns == finished[name], f"{name} ran again"
    summary = json.loads((experiment / "sweep_summary.json").read_text())
    assert summary["configurations"] == 14 and summary["errored"] == 0
    assert "shared prefixes: trained" in done.stdout
