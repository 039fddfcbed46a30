"""The Ray Tune trainable: one trial of a sweep, doing what its plan (``hal.sweep.plan``) says.

Every trial reports *every* round of its configuration, also the rounds it did not train (a tail's
prefix, a copy's records, a finished trial started again by ``--resume``), so Tune's own results
(``result.json``, ``progress.csv``, ``ResultGrid``) hold each configuration's complete curve, as
an independent run's would. After each round a trial writes its files and ``checkpoint.pt`` to
its folder on the storage path *before* reporting, and a trial that starts (a retry, ``--resume``,
another node) continues from the checkpoint it finds there. Each round is reported once, also by a retried trial (``hal.sweep.trial``).

Shared artefacts are never a single point of failure: a tail whose fork is missing or damaged,
or a copy whose source records are, runs its configuration from round 0 instead (the same
records: runs are deterministic), and says so on stderr.

One trial's folder, inputs and reporting protocol are ``hal.sweep.trial``.
"""

from __future__ import annotations

import json
import logging
from typing import Any


from hal.core.config import make_config
from hal.core.loop import ActiveLearningLoop
from hal.core.records import SUMMARY_FILE, RoundRecord, parse_records
from hal.core.switch import new_trigger, reflag, replay
from hal.data.inputs import Prepared
from hal.runs.build import new_loop
from hal.runs.output import RunFiles
from hal.sweep import prefix
from hal.sweep.plan import COPY, ORPHAN, RUN, TAIL, TRAJECTORY, TrialPlan
from hal.sweep.prefix_search import FAILURE_FILE
from hal.sweep.trial import Trial, warn

# Fault injection for tests of retries: raise once, before round N is reported, on a fresh start.
FAIL_AT_ROUND = "fail_at_round"
# Reported fields that describe the trial rather than the configuration's run: what a shared
# trial reports differs from an independent run's only in these (and in wall-clock seconds).
BOOKKEEPING = ("role", "computed_train_samples", "computed_train_time_s", "prefix_switches", "baseline")


class InjectedFailure(RuntimeError):
    """Raised by ``fail_at_round`` to exercise ``FailureConfig`` retries."""


class TrajectoryFailed(RuntimeError):
    """An orphan's error: the trajectory its prefix depended on failed for good."""


def run_trial(config: dict[str, Any], prepared: dict[tuple, Prepared] | None = None) -> None:
    """Tune function trainable. ``prepared`` maps ``prepare_key`` to inputs the driver built once
    (passed with ``tune.with_parameters``); missing keys are prepared here."""
    # One "checkpoint created" line per round and trial would drown the sweep's own output.
    logging.getLogger("ray.train").setLevel(logging.WARNING)
    logging.getLogger("ray.tune").setLevel(logging.WARNING)
    trial = Trial(TrialPlan.from_config(config), config, prepared)
    runner = {RUN: _run_plain, TRAJECTORY: _run_trajectory, TAIL: _run_tail, COPY: _run_copy,
              ORPHAN: _run_orphan}[trial.plan.role]
    runner(trial)


def _report_finished(trial: Trial) -> bool:
    """A trial started after its run finished (``--resume``, or the driver died before Tune saw
    the end): report its records, train nothing. Returns whether it had finished."""
    records = trial.finished_records()
    if records is None:
        return False
    trial.computed_from = records[-1]
    trial.report(records)
    return True


def _train(trial: Trial, loop: ActiveLearningLoop, files: RunFiles, **summary_extra: Any) -> None:
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


def _run_plain(trial: Trial) -> None:
    """An independent run (also the fallback of tails and copies that lost their source)."""
    if _report_finished(trial):
        return
    loop = new_loop(trial.cfg, trial.inputs)
    resumed = trial.resume(loop)
    _train(trial, loop, trial.files(fresh=not resumed))


def _maybe_fail(trial: Trial, record: RoundRecord) -> None:
    """Fault injection for tests: fail before ``fail_at_round`` is saved, on a fresh start only."""
    fail_at = trial.config.get(FAIL_AT_ROUND)
    if fail_at is not None and record.round == fail_at and not trial.resumed:
        raise InjectedFailure(f"injected failure at round {fail_at}")


def _run_trajectory(trial: Trial) -> None:
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


def _trajectory_rounds(trial: Trial) -> None:
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


def _run_tail(trial: Trial) -> None:
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


def _run_copy(trial: Trial) -> None:
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


def _source_records(trial: Trial) -> list[RoundRecord] | None:
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


def _run_orphan(trial: Trial) -> None:
    raise TrajectoryFailed(f"{trial.plan.name} was not run: {trial.plan.cause}. Fix the cause and "
                           "continue the sweep with --resume")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "missing"
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:160]
