"""The Ray Tune trainable: one AL run that reports every round.

Every round the trial writes its files and ``checkpoint.pt`` into its own directory on the storage
path *before* reporting, and a trial that starts (first start, retry after a failure,
``Tuner.restore`` after the driver died, another node) continues from the checkpoint it finds
there. So whenever and however often the driver or a worker dies, ``records.jsonl`` holds each
round exactly once and no finished round is trained again. (Tune's own checkpoint references live
in experiment snapshots that can lag behind the trial by many rounds; on cloud storage, where the
trial writes to a synced local folder, they are still used.)

Roles (``config["role"]``) of shared-prefix sweeps (``hal.sweep.prefix``): ``trajectory`` trains the
retrain rounds of a group and keeps fork checkpoints; ``member`` is one hybrid configuration, which
either trains its tail from a fork (``source`` empty) or copies the records of a run equal to it
(``source`` names it). Without a role a trial is a plain, independent run.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from ray import tune

from hal.core.checkpoint import CHECKPOINT_FILE
from hal.core.config import RunConfig, make_config
from hal.core.loop import ActiveLearningLoop
from hal.core.records import SUMMARY_FILE, RoundRecord, aulc, write_records
from hal.data.inputs import Prepared, prepare, prepare_key
from hal.runs.build import new_loop
from hal.runs.output import RunFiles
from hal.sweep import prefix

RUN_KEYS = {f.name for f in fields(RunConfig)}
# Fault injection for tests of retries: raise once, before round N is reported, on a fresh start.
FAIL_AT_ROUND = "fail_at_round"
ROUND_SLEEP_S = float(os.environ.get("HAL_TEST_ROUND_SLEEP_S") or 0)  # tests: rounds slow enough to kill a node mid-way


class InjectedFailure(RuntimeError):
    """Raised by ``fail_at_round`` to exercise ``FailureConfig`` retries."""


def trial_run_config(trial_config: dict[str, Any]) -> RunConfig:
    """The ``RunConfig`` of a trial: its ``run`` dict plus any top-level run keys (searchers
    sample those, e.g. ``epsilon``)."""
    overrides = dict(trial_config.get("run", {}))
    overrides.update({k: v for k, v in trial_config.items() if k in RUN_KEYS})
    return make_config(overrides).resolved()


def _trial_out_dir() -> tuple[Path, bool]:
    """Where a trial writes records.jsonl, summary.json, TensorBoard events and its checkpoint,
    and whether that is on the storage path itself.

    On a local (or shared-filesystem) storage path we write straight into the trial's directory
    there, so TensorBoard sees rounds as they arrive and a restarted trial finds its checkpoint;
    on cloud storage we write to the trial's local directory, which Ray syncs up as artifacts.
    """
    context = tune.get_context()
    try:
        storage = context.get_storage()
        if storage.storage_filesystem.type_name == "local":
            path = Path(storage.trial_fs_path)
            path.mkdir(parents=True, exist_ok=True)
            return path, True
    except Exception:  # noqa: BLE001 - internal API; fall back to the synced local dir
        pass
    return Path(context.get_trial_dir()), False


class _Trial:
    """What every role shares: the loop, its directory, resuming and reporting."""

    def __init__(self, config: dict[str, Any], prepared: dict[tuple, Prepared] | None) -> None:
        self.config = config
        self.cfg = trial_run_config(config)
        self.started_at = time.time()
        self.resources = dict(tune.get_context().get_trial_resources().required_resources)

        torch.set_num_threads(max(1, int(self.resources.get("CPU", 1))))
        self.inputs = (prepared or {}).get(prepare_key(self.cfg)) or prepare(self.cfg)
        self.loop = new_loop(self.cfg, self.inputs)
        self.out, self.on_storage = _trial_out_dir()
        self.resumed = self._resume()

    def _resume(self) -> bool:
        """Continue from this trial's own checkpoint if it has one (see the module docstring)."""
        if (self.out / CHECKPOINT_FILE).is_file():
            self.loop.load(self.out)
            return True
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as directory:
                self.loop.load(Path(directory))
            return True
        return False

    def files(self, fresh: bool) -> RunFiles:
        return RunFiles(self.out, self.cfg.to_dict(), fresh=fresh)

    def finish(self, files: RunFiles, **extra: Any) -> None:
        files.finish(self.loop, trial_id=tune.get_context().get_trial_id(), resources=self.resources,
                     started_at=self.started_at, finished_at=time.time(), **extra)

    def save(self) -> None:
        """The round checkpoint, before the round is reported."""
        self.loop.save(self.out)

    def report(self, base: RoundRecord | None = None, **extra: Any) -> None:
        """Report the last round with the run-level figures so far.

        ``computed_train_*`` is what this trial trained itself: everything after ``base`` (a
        tail's fork round), everything when ``base`` is None.
        """
        time.sleep(ROUND_SLEEP_S)
        records = self.loop.records
        record = records[-1]
        metrics = record.to_dict()
        metrics.update(_progress(records, done=len(records) == self.cfg.rounds))
        metrics.update(role=self.config.get("role", "run"), **extra)
        metrics["computed_train_samples"] = max(0, record.cum_train_samples - (base.cum_train_samples if base else 0))
        metrics["computed_train_time_s"] = max(0.0, record.cum_train_time_s - (base.cum_train_time_s if base else 0.0))
        if self.on_storage:
            tune.report(_finite(metrics))
            return
        with tempfile.TemporaryDirectory() as directory:
            self.loop.save(Path(directory))
            tune.report(_finite(metrics), checkpoint=tune.Checkpoint.from_directory(directory))


def run_trial(config: dict[str, Any], prepared: dict[tuple, Prepared] | None = None) -> None:
    """Tune function trainable. ``prepared`` maps ``prepare_key`` to inputs the driver built once
    (passed with ``tune.with_parameters``); missing keys are prepared here."""
    # One "checkpoint created" line per round and trial would drown the sweep's own output.
    logging.getLogger("ray.train").setLevel(logging.WARNING)
    trial = _Trial(config, prepared)
    role = config.get("role")
    if role == "trajectory":
        _run_trajectory(trial)
    elif role == "member" and config.get("source"):
        _run_copy(trial)
    elif role == "member":
        _run_tail(trial)
    else:
        _run_plain(trial)


def _run_plain(trial: _Trial) -> None:
    """An independent run."""
    loop = trial.loop
    if loop.done and trial.resumed:
        _finished_already(trial)
        return
    files = trial.files(fresh=not trial.resumed)
    for record in loop:
        _maybe_fail(trial, record)
        # Files first: Tune may end the trial's worker as soon as the last result is reported.
        files.round(loop, record)
        trial.save()
        if loop.done:
            trial.finish(files)
        trial.report()


def _maybe_fail(trial: _Trial, record: RoundRecord) -> None:
    """Fault injection for tests: fail before ``fail_at_round`` is saved, on a fresh start only."""
    fail_at = trial.config.get(FAIL_AT_ROUND)
    if fail_at is not None and record.round == fail_at and not trial.resumed:
        raise InjectedFailure(f"injected failure at round {fail_at}")


def _finished_already(trial: _Trial, base: RoundRecord | None = None, **extra: Any) -> None:
    """A trial restarted after its last round (the driver died before Tune saw it finish): write
    the summary if it is missing and report the last round again, training nothing."""
    if not (trial.out / SUMMARY_FILE).is_file():
        trial.finish(trial.files(fresh=False), **extra)
    trial.report(base=base)


def _run_trajectory(trial: _Trial) -> None:
    """The retrain rounds of a group: forks where members switch (after every round with
    ``keep_every_fork``, for rules sampled later), the members' switch rounds in every report. A
    trajectory that is neither the sweep's retrain baseline nor keeps every fork stops as soon as
    every member has switched."""
    config, loop = trial.config, trial.loop
    members = [prefix.Member(name, run) for name, run in config["members"]]
    group, prefix_dir = config["group"], config["prefix_dir"]
    baseline, every = bool(config.get("baseline")), bool(config.get("keep_every_fork"))

    def finished(switches: dict[str, int | None]) -> bool:
        stops_early = not baseline and not every and all(s is not None for s in switches.values())
        return loop.done or stops_early

    def report() -> bool:
        switches = prefix.switch_rounds(members, loop.records)
        done = finished(switches)
        trial.report(prefix_switches=json.dumps(switches), trajectory_done=done, baseline=baseline)
        return done

    if trial.resumed and finished(prefix.switch_rounds(members, loop.records)):
        if baseline and not (trial.out / SUMMARY_FILE).is_file():
            trial.finish(trial.files(fresh=False))
        report()
        return
    files = trial.files(fresh=not trial.resumed) if baseline else None
    for record in loop:
        _maybe_fail(trial, record)
        if every or record.round in prefix.switch_rounds(members, loop.records).values():
            loop.save(prefix.fork_dir(prefix_dir, group, record.round))  # before the tails hear of it
        prefix.write_trajectory(prefix_dir, group, loop.records)
        if files is not None:
            files.round(loop, record)
        trial.save()
        if files is not None and loop.done:
            trial.finish(files)
        if report():
            return


def _run_tail(trial: _Trial) -> None:
    """A member that trains: the trajectory's rounds up to its switch round come from the fork
    (reported and written as its own), then its warm-started rounds run here."""
    config, loop = trial.config, trial.loop
    fork_round = config["fork"]
    share = {"shared_prefix": {"group": config["group"], "switch_round": fork_round, "tail_from": "self"}}
    if trial.resumed:
        fork_record = loop.records[fork_round]
        if loop.done:
            _finished_already(trial, fork_record, **_tail_costs(loop, fork_record), **share)
            return
        files = trial.files(fresh=False)
    else:
        ckpt = prefix.load_fork(config["prefix_dir"], config["group"], fork_round)
        prefix.start_from_fork(loop, ckpt, fork_round, config.get("name", "this trial"))
        fork_record = loop.records[-1]
        files = trial.files(fresh=True)
        for record in loop.records:
            files.writer.log(record)
        write_records(trial.out, loop.records)
        trial.save()
        # Tune hears of the prefix once (the files have every round): a report is a round trip
        # that costs as much as a fast round's training.
        if loop.done:
            trial.finish(files, **_tail_costs(loop, fork_record), **share)
        trial.report(base=fork_record)
    for record in loop:
        files.round(loop, record)
        trial.save()
        if loop.done:
            trial.finish(files, **_tail_costs(loop, fork_record), **share)
        trial.report(base=fork_record)


def _tail_costs(loop: ActiveLearningLoop, fork_record: RoundRecord) -> dict[str, Any]:
    """What a tail trained itself (its summary's ``computed_train_*``)."""
    last = loop.records[-1]
    return {"computed_train_samples": last.cum_train_samples - fork_record.cum_train_samples,
            "computed_train_time_s": last.cum_train_time_s - fork_record.cum_train_time_s}


def _run_copy(trial: _Trial) -> None:
    """A member whose run equals another's (same switch round, or never switched): its records,
    with its own configuration in the summary and TensorBoard. Trains nothing."""
    config, loop = trial.config, trial.loop
    source = config["source"]
    share = {"shared_prefix": {"group": config["group"], "switch_round": config.get("fork"),
                               "tail_from": source},
             "computed_train_samples": 0, "computed_train_time_s": 0.0}
    records = prefix.read_source_records(config["prefix_dir"], config["group"], source, trial.out.parent)
    records = prefix.reflag(records, config.get("fork"))
    loop.state.records = records
    loop.state.next_round = len(records)
    if (trial.out / SUMMARY_FILE).is_file():
        trial.report(base=records[-1])
        return
    files = trial.files(fresh=True)
    for record in records:
        files.writer.log(record)
    write_records(trial.out, records)
    trial.finish(files, **share)
    trial.report(base=records[-1])


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
