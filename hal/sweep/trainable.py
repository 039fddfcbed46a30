"""The Ray Tune trainable: one trial of a sweep, doing what its plan (``hal.sweep.plan``) says.

Every trial reports *every* round of its configuration, also the rounds it did not train (a tail's
prefix, a copy's records, a finished trial started again by ``--resume``), so Tune's own results
(``result.json``, ``progress.csv``, ``ResultGrid``) hold each configuration's complete curve, as
an independent run's would. After each round a trial writes its files and ``checkpoint.pt`` to
its folder on the storage path *before* reporting, and a trial that starts (a retry, ``--resume``,
another node) continues from the checkpoint it finds there. A tiny Tune checkpoint per report
says which rounds Tune has already heard of in this experiment, so a retried trial reports each
round once.

Shared artefacts are never a single point of failure: a tail whose fork is missing or damaged,
or a copy whose source records are, runs its configuration from round 0 instead (the same
records: runs are deterministic), and says so on stderr.

Over 300 lines: the five trial roles share the ``_Trial`` helper and one reporting protocol, and
are read together.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import torch
from ray import tune

from hal.core.checkpoint import CHECKPOINT_FILE
from hal.core.config import make_config
from hal.core.errors import HalError
from hal.core.loop import ActiveLearningLoop, run_summary
from hal.core.records import RECORDS_FILE, SUMMARY_FILE, RoundRecord, aulc, parse_records, read_records
from hal.core.switch import new_trigger, reflag, replay
from hal.data.inputs import Prepared, prepare, prepare_key
from hal.runs.build import new_loop
from hal.runs.output import RunFiles
from hal.sweep import prefix
from hal.sweep.plan import COPY, ORPHAN, PLAN_FILE, RUN, TAIL, TRAJECTORY, TrialPlan
from hal.sweep.prefix_search import FAILURE_FILE
from hal.sweep.storage import Storage, upload_folder

# Fault injection for tests of retries: raise once, before round N is reported, on a fresh start.
FAIL_AT_ROUND = "fail_at_round"
ROUND_SLEEP_S = float(os.environ.get("HAL_TEST_ROUND_SLEEP_S") or 0)  # tests: rounds slow enough to kill a node mid-way
# Reported fields that describe the trial rather than the configuration's run: what a shared
# trial reports differs from an independent run's only in these (and in wall-clock seconds).
BOOKKEEPING = ("role", "computed_train_samples", "computed_train_time_s", "prefix_switches", "baseline")


class InjectedFailure(RuntimeError):
    """Raised by ``fail_at_round`` to exercise ``FailureConfig`` retries."""


class TrajectoryFailed(RuntimeError):
    """An orphan's error: the trajectory its prefix depended on failed for good."""


@dataclass
class _Trial:
    """One trial's plan, inputs, folders and what Tune has heard of it."""

    plan: TrialPlan
    config: dict[str, Any]
    prepared: dict[tuple, Prepared] | None
    cfg: Any = None
    out: Path = None
    storage: Storage = None
    remote: str | None = None  # the trial folder on an object store, when the storage is one
    uploaded: dict[str, tuple[int, int]] = field(default_factory=dict)
    heard: int = -1  # the last round Tune has a result row of in this experiment
    started_at: float = field(default_factory=time.time)
    resources: dict[str, float] = field(default_factory=dict)
    computed_from: RoundRecord | None = None  # the last round this trial did not train itself
    resumed: bool = False  # continued from its own checkpoint

    def __post_init__(self) -> None:
        self.cfg = make_config(self.plan.run).resolved()
        context = tune.get_context()
        self.resources = dict(context.get_trial_resources().required_resources)
        torch.set_num_threads(max(1, int(self.resources.get("CPU", 1))))
        storage = context.get_storage()
        self.storage = Storage(storage.storage_filesystem, storage.experiment_fs_path)
        if self.storage.local:
            self.out = Path(storage.trial_fs_path)
        else:  # write locally, keep the folder on the object store in step round by round
            self.remote = storage.trial_fs_path
            self.out = Path(tempfile.mkdtemp(prefix=f"hal_{self.plan.name[:40]}_"))
        self.out.mkdir(parents=True, exist_ok=True)
        self._fetch_remote()
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as directory:
                self.heard = json.loads((Path(directory) / "heard.json").read_text())["round"]
        (self.out / PLAN_FILE).write_text(json.dumps(self.plan.to_config(), indent=1) + "\n")

    def _fetch_remote(self) -> None:
        """On an object store: bring the trial's own files (checkpoint, records, summary) here."""
        if self.remote is None:
            return
        for name in (CHECKPOINT_FILE, RECORDS_FILE, SUMMARY_FILE):
            path = f"{self.remote}/{name}"
            if self.storage.exists(path):
                (self.out / name).write_bytes(self.storage.read_bytes(path))

    @cached_property
    def inputs(self) -> Prepared:
        """The run's corpus and features: the driver's if it prepared them, else made here once."""
        return (self.prepared or {}).get(prepare_key(self.cfg)) or prepare(self.cfg)

    def finished_records(self) -> list[RoundRecord] | None:
        """The records of a run this trial already finished (summary written), else None."""
        if not (self.out / SUMMARY_FILE).is_file():
            return None
        try:
            records = [RoundRecord.from_dict(r) for r in read_records(self.out / RECORDS_FILE)]
        except (OSError, ValueError, TypeError):
            return None
        return records if len(records) == self.cfg.rounds else None

    def resume(self, loop: ActiveLearningLoop) -> bool:
        """Continue from this trial's own checkpoint, if it has a usable one. A damaged one is
        dropped with a line on stderr: the run starts over and computes the same rounds again."""
        path = self.out / CHECKPOINT_FILE
        if not path.is_file():
            return False
        try:
            loop.load(self.out)
            self.resumed = True
            return True
        except HalError as exc:
            warn(f"{self.plan.name}: {exc}; starting this trial over from round 0 instead (the same "
                 "records: runs are deterministic)")
            path.unlink(missing_ok=True)
            self._drop_remote(CHECKPOINT_FILE)
            return False

    def _drop_remote(self, name: str) -> None:
        if self.remote is not None:
            self.storage.delete_file(f"{self.remote}/{name}")

    def files(self, fresh: bool) -> RunFiles:
        return RunFiles(self.out, self.cfg.to_dict(), fresh=fresh)

    def sync(self) -> None:
        """On an object store: upload what changed in the trial folder."""
        if self.remote is not None:
            upload_folder(self.out, self.storage, self.remote, self.uploaded)

    def summary(self, records: list[RoundRecord], **extra: Any) -> dict[str, Any]:
        summary = run_summary(self.cfg, self.inputs.corpus, records)
        summary.update(trial_id=tune.get_context().get_trial_id(), resources=self.resources,
                       started_at=self.started_at, finished_at=time.time(), plan=self.plan.role,
                       **self._computed(records[-1]), **extra)
        if self.plan.group is not None:
            summary["group"] = self.plan.group
        return summary

    def _computed(self, record: RoundRecord) -> dict[str, Any]:
        """What this trial trained itself, up to ``record``: everything after ``computed_from``."""
        base = self.computed_from
        if base is not None and record.round <= base.round:
            return {"computed_train_samples": 0, "computed_train_time_s": 0.0}
        return {"computed_train_samples": record.cum_train_samples - (base.cum_train_samples if base else 0),
                "computed_train_time_s": record.cum_train_time_s - (base.cum_train_time_s if base else 0.0)}

    def report(self, records: list[RoundRecord], per_round: Callable[[list[RoundRecord]], dict] | None = None,
               **extra: Any) -> None:
        """Report every round of ``records`` Tune has not heard of yet, each with the run-level
        figures as they stood after it (and ``per_round`` of the records up to it)."""
        for i in range(self.heard + 1, len(records)):
            metrics = records[i].to_dict()
            metrics.update(_progress(records[: i + 1], done=i + 1 == self.cfg.rounds))
            metrics.update(role=self.plan.role, **self._computed(records[i]), **extra)
            if per_round is not None:
                metrics.update(per_round(records[: i + 1]))
            if i < len(records) - 1:  # rounds taken over in a batch: only the last one carries the mark
                tune.report(_finite(metrics))
            else:
                time.sleep(ROUND_SLEEP_S)
                with tempfile.TemporaryDirectory() as directory:
                    (Path(directory) / "heard.json").write_text(json.dumps({"round": i}))
                    tune.report(_finite(metrics), checkpoint=tune.Checkpoint.from_directory(directory))
            self.heard = i


def warn(message: str) -> None:
    """A line on the trial's stderr (Ray shows it in the driver's output)."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def run_trial(config: dict[str, Any], prepared: dict[tuple, Prepared] | None = None) -> None:
    """Tune function trainable. ``prepared`` maps ``prepare_key`` to inputs the driver built once
    (passed with ``tune.with_parameters``); missing keys are prepared here."""
    # One "checkpoint created" line per round and trial would drown the sweep's own output.
    logging.getLogger("ray.train").setLevel(logging.WARNING)
    logging.getLogger("ray.tune").setLevel(logging.WARNING)
    trial = _Trial(TrialPlan.from_config(config), config, prepared)
    runner = {RUN: _run_plain, TRAJECTORY: _run_trajectory, TAIL: _run_tail, COPY: _run_copy,
              ORPHAN: _run_orphan}[trial.plan.role]
    runner(trial)


def _report_finished(trial: _Trial) -> bool:
    """A trial started after its run finished (``--resume``, or the driver died before Tune saw
    the end): report its records, train nothing. Returns whether it had finished."""
    records = trial.finished_records()
    if records is None:
        return False
    trial.computed_from = records[-1]
    trial.report(records)
    return True


def _train(trial: _Trial, loop: ActiveLearningLoop, files: RunFiles, **summary_extra: Any) -> None:
    """Run the loop's remaining rounds: files and checkpoint first, then the report (Tune may end
    the trial's worker as soon as the last result is reported)."""
    if loop.done and not (trial.out / SUMMARY_FILE).is_file():  # stopped between its last round and summary
        files.finish(trial.summary(loop.records, **summary_extra))
        trial.sync()
    trial.report(loop.records)  # rounds restored or taken over that Tune has not heard of here
    for record in loop:
        if trial.plan.role == RUN:
            _maybe_fail(trial, record)
        files.round(loop.records, record)
        loop.save(trial.out)
        if loop.done:
            files.finish(trial.summary(loop.records, **summary_extra))
        trial.sync()
        trial.report(loop.records)


def _run_plain(trial: _Trial) -> None:
    """An independent run (also the fallback of tails and copies that lost their source)."""
    if _report_finished(trial):
        return
    loop = new_loop(trial.cfg, trial.inputs)
    resumed = trial.resume(loop)
    _train(trial, loop, trial.files(fresh=not resumed))


def _maybe_fail(trial: _Trial, record: RoundRecord) -> None:
    """Fault injection for tests: fail before ``fail_at_round`` is saved, on a fresh start only."""
    fail_at = trial.config.get(FAIL_AT_ROUND)
    if fail_at is not None and record.round == fail_at and not trial.resumed:
        raise InjectedFailure(f"injected failure at round {fail_at}")


def _run_trajectory(trial: _Trial) -> None:
    """The retrain rounds of a group: forks where members switch (after every round with
    ``every_fork``, for rules sampled later), the members' switch rounds in every report. A
    trajectory that is neither the sweep's retrain baseline nor keeps every fork stops as soon as
    every member has switched. A failure for good leaves its cause in the group's folder."""
    plan, storage = trial.plan, trial.storage
    failure = f"{prefix.group_path(plan.prefix_dir, plan.group)}/{FAILURE_FILE}"
    storage.delete_file(failure)
    try:
        _trajectory_rounds(trial)
    except Exception as exc:
        storage.write_text(failure, f"{type(exc).__name__}: {_reason(exc)}\n")
        raise


def _trajectory_rounds(trial: _Trial) -> None:
    plan, storage = trial.plan, trial.storage
    members = [(name, make_config(run).resolved()) for name, run in plan.members]

    def switches(records: list[RoundRecord]) -> dict[str, int | None]:
        return prefix.switch_rounds(members, records)

    def finished(loop: ActiveLearningLoop) -> bool:
        stops_early = (not plan.baseline and not plan.every_fork
                       and all(s is not None for s in switches(loop.records).values()))
        return loop.done or stops_early

    def report(records: list[RoundRecord]) -> None:
        # the switch rounds as the trajectory stood after each round: the searcher learns them
        trial.report(records, per_round=lambda upto: {"prefix_switches": json.dumps(switches(upto))},
                     baseline=plan.baseline)

    loop = new_loop(trial.cfg, trial.inputs)
    done_records = trial.finished_records() if plan.baseline else None
    if done_records is not None:
        trial.computed_from = done_records[-1]
        report(done_records)
        return
    resumed = trial.resume(loop)
    if resumed:
        if finished(loop) and plan.baseline and not (trial.out / SUMMARY_FILE).is_file():
            trial.files(fresh=False).finish(trial.summary(loop.records))
            trial.sync()
        report(loop.records)
        if finished(loop):
            return
    files = trial.files(fresh=not resumed) if plan.baseline else None
    for record in loop:
        _maybe_fail(trial, record)
        if plan.every_fork or record.round in switches(loop.records).values():
            prefix.save_fork(storage, plan.prefix_dir, plan.group, record.round, loop.checkpoint())
        prefix.write_trajectory(storage, plan.prefix_dir, plan.group, loop.records)
        if files is not None:
            files.round(loop.records, record)
        loop.save(trial.out)
        if files is not None and loop.done:
            files.finish(trial.summary(loop.records))
        trial.sync()
        report(loop.records)
        if finished(loop):
            return


def _run_tail(trial: _Trial) -> None:
    """A member that trains: the trajectory's rounds up to its switch round come from the fork
    (reported and written as its own), then its warm-started rounds run here."""
    plan = trial.plan
    if _report_finished(trial):
        return
    loop = new_loop(trial.cfg, trial.inputs)
    share = {"shared_prefix": {"group": plan.group, "switch_round": plan.fork, "tail_from": "self"}}
    if trial.resume(loop):
        trial.computed_from = loop.records[plan.fork] if len(loop.records) > plan.fork else None
        files = trial.files(fresh=False)
    else:
        try:
            ckpt = prefix.load_fork(trial.storage, plan.prefix_dir, plan.group, plan.fork)
            loop.continue_from_fork(ckpt, plan.fork)
        except Exception as exc:  # missing, damaged or not this run's prefix: compute it again
            warn(f"{plan.name}: the fork after round {plan.fork} cannot be used ({_reason(exc)}); "
                 "running this configuration from round 0 instead (the same records)")
            loop = new_loop(trial.cfg, trial.inputs)
            share["shared_prefix"]["tail_from"] = "rerun: fork unusable"
        else:
            trial.computed_from = loop.records[-1]
        files = trial.files(fresh=True)
        files.round(loop.records, *loop.records)
        loop.save(trial.out)
        trial.sync()
    _train(trial, loop, files, **share)


def _run_copy(trial: _Trial) -> None:
    """A member whose run equals another's (the same tail, or never switched): that run's
    records re-flagged as its own, with its own configuration in the summary and TensorBoard.
    Trains nothing and builds no learner."""
    plan = trial.plan
    if _report_finished(trial):
        return
    records = _source_records(trial)
    if records is None:
        _run_plain(trial)
        return
    trial.computed_from = records[-1]
    files = trial.files(fresh=True)
    files.round(records, *records)
    files.finish(trial.summary(records, shared_prefix={"group": plan.group, "switch_round": plan.fork,
                                                       "tail_from": plan.source}))
    trial.sync()
    trial.report(records)


def _source_records(trial: _Trial) -> list[RoundRecord] | None:
    """The records a copy takes, re-flagged, or None (with a line saying why) when they are
    missing, damaged, incomplete or do not switch where this configuration does."""
    plan, storage = trial.plan, trial.storage
    path = prefix.source_records_path(plan.prefix_dir, plan.group, plan.source, storage.root)
    try:
        records = [RoundRecord.from_dict(r) for r in parse_records(storage.read_text(path))]
        if len(records) != trial.cfg.rounds:
            raise ValueError(f"{len(records)} of {trial.cfg.rounds} rounds")
        switch = replay(new_trigger(trial.cfg), records).switch_round
        if switch != plan.fork:
            raise ValueError(f"they switch after round {switch}, this configuration after {plan.fork}")
    except Exception as exc:  # noqa: BLE001 - whatever is wrong, the run can be computed instead
        warn(f"{plan.name}: the records to copy from {plan.source} cannot be used ({_reason(exc)}); "
             "running this configuration itself instead (the same records)")
        return None
    return reflag(records, plan.fork)


def _run_orphan(trial: _Trial) -> None:
    raise TrajectoryFailed(f"{trial.plan.name} was not run: {trial.plan.cause}. Fix the cause and "
                           "continue the sweep with --resume")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "missing"
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:160]


def _progress(records: list[RoundRecord], done: bool) -> dict[str, Any]:
    """Run-level figures reported with every round (searchers read them from the last one)."""
    last = records[-1]
    return {
        "aulc": aulc([r.labeled for r in records], [r.val_f1 for r in records]),
        "total_train_time_s": last.cum_train_time_s,
        "total_train_samples": last.cum_train_samples,
        "final_val_f1": last.val_f1,
        "final_test_f1": last.test_f1 if done else None,
        "switch_round": next((r.round for r in records if r.switched), None),
        "done": done,
    }


def _finite(metrics: dict[str, Any]) -> dict[str, Any]:
    # Tune's searchers and loggers choke on None; NaN is their "missing".
    return {k: (math.nan if v is None else v) for k, v in metrics.items()}

