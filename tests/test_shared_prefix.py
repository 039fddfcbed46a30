"""Shared-prefix sweeps: grouping, the searcher's schedule, equality with independent trials in
HAL's files and in Tune's own results (all three monitors), faults (a failing trajectory, lost or
damaged forks and records, an interrupted sweep) and the two costs."""

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

from hal.sweep import prefix
from hal.core.config import make_config
from hal.runs.build import new_loop
from hal.sweep.plan import COPY, NEVER, ORPHAN, PLAN_FILE, RUN, TAIL, TRAJECTORY, TrialPlan
from hal.sweep.storage import open_storage

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "sweeps" / "eps_k_grid.py"
# Small, but the ε × k grid below switches at several rounds (tails and copies) and never.
TINY_RUN = dict(dataset="synthetic", synthetic_size=1200, synthetic_classes=3, learner="tfidf",
                initial_size=40, rounds=10, epochs=5, tfidf_max_features=2000)
TIMING = {"train_time_s", "cum_train_time_s", "query_time_s", "eval_time_s", "total_train_time_s",
          "total_query_time_s"}
# Summary fields that differ between a shared and an independent run of the same configuration.
RUN_SPECIFIC = {"trial_id", "started_at", "finished_at", "total_train_time_s", "total_query_time_s", "shared_prefix",
                "computed_train_samples", "computed_train_time_s", "resources", "plan", "group"}


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


def test_groups_hold_hybrids_whose_retrain_rounds_are_the_same():
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
    # warm-start settings act only after the switch: such hybrids share the retrain rounds too
    a = {**TINY_RUN, "strategy": "hybrid", "finetune_epochs": 1}
    assert prefix.group_id(a) == prefix.group_id({**a, "finetune_epochs": 3, "epsilon": 0.3})
    assert prefix.group_id(a) != prefix.group_id({**a, "seed": 1})
    assert prefix.tail_key(a, 3) != prefix.tail_key({**a, "finetune_epochs": 3}, 3)


def test_replayed_switch_rounds_equal_the_hybrid_runs_own(toy_corpus):
    """The trajectory decides each member's switch round from the retrain run's signal series;
    it must be the round the hybrid run itself switches after."""
    from hal.core.config import make_config
    from hal.core.switch import reflag
    from hal.data.inputs import Prepared
    from hal.data.tfidf import tfidf_features
    from hal.runs.build import new_loop

    base = dict(learner="tfidf", initial_size=30, query_size=15, rounds=12, epochs=2, seed=3)
    prepared = Prepared(toy_corpus, "tfidf", tfidf_features(toy_corpus, 2000))
    retrain = list(new_loop(make_config({**base, "strategy": "retrain"}).resolved(), prepared))
    members = [(f"e{e}k{k}", {**base, "strategy": "hybrid", "epsilon": e, "k": k})
               for e in (0.005, 0.02, 0.05) for k in (1, 2)]
    replayed = prefix.switch_rounds(members, retrain)
    for name, run in members:
        hybrid = new_loop(make_config(run).resolved(), prepared)
        list(hybrid)
        assert replayed[name] == hybrid.state.trigger.switch_round
        # and its records until the switch are the retrain run's, re-flagged
        own = [r.to_dict() for r in hybrid.records]
        shared = [r.to_dict() for r in reflag(retrain, replayed[name])]
        end = len(own) if replayed[name] is None else replayed[name] + 1
        assert _untimed(own[:end]) == _untimed(shared[:end])
    assert len(set(replayed.values())) > 1, "the grid should switch at different rounds"


def test_the_trial_plan_travels_through_a_tune_config():
    plan = TrialPlan(TAIL, "hybrid_x", {"strategy": "hybrid", "epsilon": 0.01}, group="g", prefix_dir="/p", fork=3)
    config = {**plan.to_config(), "epsilon": 0.02, "fail_at_round": 2}  # a searcher's sample, a test hook
    back = TrialPlan.from_config(json.loads(json.dumps(config)))
    assert back.replace(run=plan.run) == plan and back.run["epsilon"] == 0.02 and "fail_at_round" not in back.run
    assert not TrialPlan(TRAJECTORY, "t", {}).is_configuration and TrialPlan(TRAJECTORY, "t", {}, baseline=True).is_configuration


class _Driver:
    """Drive a searcher as Tune would, without Ray's trial machinery."""

    def __init__(self, runs, tmp_path):
        from hal.sweep.naming import trial_name
        from hal.sweep.prefix_search import PrefixSearcher

        groups, independent = prefix.plan_groups(runs, trial_name)
        self.storage = open_storage(str(tmp_path))
        self.searcher = PrefixSearcher(groups, independent, self.storage, self.storage.path("_prefix"), trial_name)
        self.ids = 0

    def take(self) -> list[tuple[str, TrialPlan]]:
        out = []
        while True:
            self.ids += 1
            config = self.searcher.suggest(str(self.ids))
            if not isinstance(config, dict):
                return out
            out.append((str(self.ids), TrialPlan.from_config(config)))


def _what(plans):
    return [(p.role, p.name, p.fork, p.source) for _, p in plans]


def test_tails_start_as_soon_as_their_switch_round_is_known(tmp_path):
    from ray.tune.search import Searcher

    runs = _runs(strategies=["hybrid", "retrain", "new_only"], epsilon=[0.01, 0.02], k=[1, 2], query_size=[10],
                 seed=[0])
    driver = _Driver(runs, tmp_path)
    first = driver.take()
    # the trajectory (on the critical path) before the independent run
    assert _what(first) == [(TRAJECTORY, "retrain_q10_s0", None, None), (RUN, "new_only_q10_s0", None, None)]
    assert first[0][1].baseline
    trajectory_id = first[0][0]
    assert driver.searcher.suggest("x") is None  # waiting for the trajectory, not finished
    switches = {"hybrid_eps0.01_k1_q10_s0": None, "hybrid_eps0.01_k2_q10_s0": None,
                "hybrid_eps0.02_k1_q10_s0": 2, "hybrid_eps0.02_k2_q10_s0": None}
    driver.searcher.on_trial_result(trajectory_id, {"prefix_switches": json.dumps(switches)})
    assert _what(driver.take()) == [(TAIL, "hybrid_eps0.02_k1_q10_s0", 2, None)]
    # two more switch after round 4: one trains the tail, the other waits to copy it
    switches.update({"hybrid_eps0.01_k1_q10_s0": 4, "hybrid_eps0.02_k2_q10_s0": 4})
    driver.searcher.on_trial_result(trajectory_id, {"prefix_switches": json.dumps(switches)})
    (tail_id, tail), = driver.take()
    assert (tail.role, tail.name, tail.fork) == (TAIL, "hybrid_eps0.01_k1_q10_s0", 4)
    driver.searcher.on_trial_complete(trajectory_id, {"prefix_switches": json.dumps(switches)})
    assert _what(driver.take()) == [(COPY, "hybrid_eps0.01_k2_q10_s0", None, NEVER)]
    assert driver.searcher.suggest("y") is None  # a copy still waits for its tail
    driver.searcher.on_trial_complete(tail_id, {})
    assert _what(driver.take()) == [(COPY, "hybrid_eps0.02_k2_q10_s0", 4, "hybrid_eps0.01_k1_q10_s0")]
    assert driver.searcher.suggest("z") == Searcher.FINISHED
    assert driver.searcher.total == 6  # the retrain trajectory, four hybrids, new_only


def test_a_failed_tail_hands_its_round_to_the_next_member(tmp_path):
    runs = _runs(strategies=["hybrid"], epsilon=[0.01, 0.02], k=[1], query_size=[10], seed=[0])
    driver = _Driver(runs, tmp_path)
    (trajectory_id, _), = driver.take()
    switches = {"hybrid_eps0.01_k1_q10_s0": 3, "hybrid_eps0.02_k1_q10_s0": 3}
    driver.searcher.on_trial_result(trajectory_id, {"prefix_switches": json.dumps(switches)})
    (tail_id, _), = driver.take()
    driver.searcher.on_trial_complete(tail_id, {}, error=True)
    assert _what(driver.take()) == [(TAIL, "hybrid_eps0.02_k1_q10_s0", 3, None)]


def test_members_of_a_trajectory_that_failed_for_good_become_errors_naming_it(tmp_path):
    runs = _runs(strategies=["hybrid"], epsilon=[0.01, 0.02], k=[1], query_size=[10], seed=[0])
    driver = _Driver(runs, tmp_path)
    (trajectory_id, trajectory), = driver.take()
    driver.storage.write_text(f"{prefix.group_path(trajectory.prefix_dir, trajectory.group)}/failure.txt",
                              "OSError: disk full\n")
    driver.searcher.on_trial_complete(trajectory_id, None, error=True)
    orphans = driver.take()
    assert [p.role for _, p in orphans] == [ORPHAN, ORPHAN]
    assert all("trajectory_q10_s0 failed: OSError: disk full" in p.cause for _, p in orphans)


# --- on Ray Tune ------------------------------------------------------------------------------


def _spec(tmp_path, name, **kw):
    from hal.sweep.spec import SweepSpec

    spec = SweepSpec(name=name, run=dict(TINY_RUN), strategies=["hybrid", "retrain", "new_only"],
                     epsilon=[0.005, 0.02, 0.05], k=[1, 2], query_size=[20], seed=[0],
                     storage_path=str(tmp_path), max_failures=1)
    for key, value in kw.items():
        setattr(spec, key, value)
    return spec.validate()


def _tune_rows(results) -> dict[str, list[dict]]:
    """Each configuration's rows in Tune's own results (``metrics_dataframe``, i.e. progress.csv),
    without wall-clock fields, the trial's bookkeeping and Tune's per-trial fields."""
    from hal.sweep.trainable import BOOKKEEPING

    tune_own = {"timestamp", "date", "time_this_iter_s", "time_total_s", "pid", "hostname", "node_ip",
                "time_since_restore", "iterations_since_restore", "trial_id", "checkpoint_dir_name",
                "should_checkpoint", "done"}
    out = {}
    for result in results:
        plan = TrialPlan.from_config(result.config)
        if not plan.is_configuration:
            continue
        frame = result.metrics_dataframe
        keep = [c for c in frame.columns if c not in TIMING | set(BOOKKEEPING) | tune_own and not c.startswith("config/")]
        out[plan.name] = json.loads(frame[keep].to_json(orient="records"))
    return out


@pytest.mark.parametrize("monitor", ["val", "holdout", "agreement"])
def test_shared_sweep_equals_independent_trials_in_every_view(local_ray, tmp_path, monitor):
    """HAL's files and Tune's own results (ResultGrid / progress.csv) of every configuration are
    those of an independent run, wall-clock fields aside; and the shared sweep trains less."""
    from hal.sweep.manifest import GRID, Manifest, outcome
    from hal.sweep.naming import trial_name
    from hal.sweep.spec import trial_overrides
    from hal.sweep.spend import sweep_summary
    from hal.sweep.tuners import grid_tuner, prepare_shared

    # thresholds on each monitor's scale, so that members switch at different rounds and never
    grid = {"val": dict(epsilon=[0.005, 0.05], k=[1, 2]), "holdout": dict(epsilon=[0.02, 0.2], k=[1, 2]),
            "agreement": dict(epsilon=[0.05, 0.3], k=[1, 2])}[monitor]
    run = {**TINY_RUN, "monitor": monitor, "stop_set_size": 200}
    spec = _spec(tmp_path, "shared", run=run, **grid)
    runs = trial_overrides(spec)
    shared_inputs = prepare_shared(runs)
    shared = grid_tuner(spec, runs, shared_inputs, share_prefix=True).fit()
    assert not shared.errors
    alone = grid_tuner(_spec(tmp_path, "alone", run=run, **grid), runs, shared_inputs).fit()
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
    assert switch_rounds - {None}, "the grid should exercise tails and copies"
    # Tune's view: complete curves, equal to the independent trials'
    mine, theirs = _tune_rows(shared), _tune_rows(alone)
    assert sorted(mine) == sorted(theirs) == sorted(got)
    for name in theirs:
        assert [r["round"] for r in mine[name]] == list(range(TINY_RUN["rounds"])), name
        assert mine[name] == theirs[name], name

    manifest = Manifest(GRID, "shared", {}, [{"name": trial_name(r), "run": r} for r in runs])
    storage = open_storage(str(tmp_path / "shared"))
    spend = sweep_summary(storage, manifest, outcome(storage, manifest), shared_prefix=True)
    independent = sum(json.loads((d / "summary.json").read_text())["total_train_samples"] for d in want.values())
    assert spend["independent_train_samples"] == independent and spend["missing"] == []
    assert spend["computed_train_samples"] < independent * 0.75
    (group,) = spend["groups"].values()
    assert group["trajectory"] == "retrain_q20_s0" and len(group["configurations"]) == 4
    assert not list((tmp_path / "shared" / prefix.PREFIX_DIR).rglob("fork_*")), "forks left behind"


def test_failed_trajectory_retries_from_its_checkpoint_and_tails_are_unaffected(local_ray, tmp_path):
    from hal.sweep.spec import trial_overrides
    from hal.sweep.tuners import grid_tuner, prepare_shared

    spec = _spec(tmp_path, "flaky", strategies=["hybrid"], max_failures=2)
    runs = trial_overrides(spec)
    inputs = prepare_shared(runs)
    results = grid_tuner(spec, runs, inputs, share_prefix=True, extra={"fail_at_round": 3}).fit()
    assert not results.errors
    trajectory = next(r for r in results if TrialPlan.from_config(r.config).role == TRAJECTORY)
    assert "injected failure at round 3" in (Path(trajectory.path) / "error.txt").read_text()
    rounds = trajectory.metrics_dataframe["round"].tolist()
    assert rounds == list(range(len(rounds))), "Tune heard of a round twice, or missed one"
    alone = grid_tuner(_spec(tmp_path, "steady", strategies=["hybrid"]), runs, inputs).fit()
    assert not alone.errors
    want = _config_dirs(tmp_path / "steady")
    for name, trial_dir in _config_dirs(tmp_path / "flaky").items():
        assert _untimed(_records(trial_dir)) == _untimed(_records(want[name])), name


def test_a_trajectory_that_fails_for_good_names_its_members(local_ray, tmp_path):
    """Its members are errored trials whose error names the trajectory and its cause; the sweep
    names them as not finished."""
    from hal.sweep.spec import trial_overrides
    from hal.sweep.tuners import grid_tuner, prepare_shared

    spec = _spec(tmp_path, "broken", strategies=["hybrid"], max_failures=0, epsilon=[0.005], k=[1, 2])
    runs = trial_overrides(spec)
    results = grid_tuner(spec, runs, prepare_shared(runs), share_prefix=True, extra={"fail_at_round": 0}).fit()
    errors = {TrialPlan.from_config(r.config).name: r.error for r in results if r.error is not None}
    assert set(errors) == {"trajectory_q20_s0", "hybrid_eps0.005_k1_q20_s0", "hybrid_eps0.005_k2_q20_s0"}
    for name in ("hybrid_eps0.005_k1_q20_s0", "hybrid_eps0.005_k2_q20_s0"):
        assert "trajectory_q20_s0 failed: InjectedFailure: injected failure at round 0" in str(errors[name])


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
    """The driver SIGKILLed twice (before any trial started, then part-way), Tune's saved state and
    the shared artefacts damaged in between, then --resume: every configuration completes with
    each round exactly once (in HAL's files and in Tune's), finished trials are not run again, and
    the records equal those of an uninterrupted sweep."""
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({
        "name": "killed", "run": TINY_RUN,
        "grid": {"strategies": ["hybrid", "retrain"], "epsilon": [0.005, 0.02, 0.05], "k": [1, 2],
                 "query_size": [20], "seed": [0, 1]},
        "resources": {"cpus_per_trial": 1, "max_concurrent": 2}}))
    args = ["--config", str(config), "--storage-path", str(tmp_path)]
    env = {**os.environ, "HAL_TEST_ROUND_SLEEP_S": "0.05"}
    experiment = tmp_path / "killed"
    _start_and_kill(args, env, until=lambda: (experiment / "manifest.json").is_file())  # before any trial
    assert not list(experiment.glob("*/records.jsonl"))
    _start_and_kill(args + ["--resume"], env, until=lambda: len(list(experiment.glob("*/summary.json"))) >= 3)
    finished = {p.parent.name: p.stat().st_mtime_ns for p in experiment.glob("*/summary.json")}
    assert 3 <= len(finished) < 14, "the sweep should have been killed part-way"
    # what a crash or a careless user may leave: truncated Tune state, forks and records gone or cut
    for pickle_file in experiment.glob("*.pkl"):
        pickle_file.write_bytes(pickle_file.read_bytes()[:20])
    for fork in (experiment / prefix.PREFIX_DIR).rglob("fork_*"):
        (fork / "checkpoint.pt").write_bytes(b"damaged")
    for records in (experiment / prefix.PREFIX_DIR).rglob(prefix.TRAJECTORY_RECORDS):
        records.write_text(records.read_text()[:50])

    done = _cli(*args, "--resume", env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert f"({len(finished)} finished before)" in done.stdout
    dirs = _config_dirs(experiment)
    assert len(dirs) == 14  # 12 hybrids + 2 retrain baselines
    for name, trial_dir in dirs.items():
        assert [r["round"] for r in _records(trial_dir)] == list(range(TINY_RUN["rounds"])), name
        tune_rounds = [json.loads(line)["round"] for line in (trial_dir / "result.json").read_text().splitlines()]
        assert tune_rounds == list(range(TINY_RUN["rounds"])), f"{name}: Tune's result.json"
        if name in finished:
            assert (trial_dir / "summary.json").stat().st_mtime_ns == finished[name], f"{name} ran again"
    summary = json.loads((experiment / "sweep_summary.json").read_text())
    assert summary["configurations"] == 14 and summary["missing"] == []
    assert "shared prefixes: trained" in done.stdout

    # Equal to an uninterrupted independent run of each configuration (in-process: the loop is
    # what a trial runs; another sweep would only add Ray's start-up).
    for name, trial_dir in dirs.items():
        plan = TrialPlan.from_config(json.loads((trial_dir / PLAN_FILE).read_text()))
        loop = new_loop(make_config(plan.run).resolved())
        alone = [json.loads(json.dumps(record.to_dict())) for record in loop]
        assert _untimed(_records(trial_dir)) == _untimed(alone), name
