"""The Ray Tune trainable: one AL run that reports every round with a checkpoint.

A trial restarted (retry after a failure, ``Tuner.restore``, another node) loads the latest
checkpoint and continues at the next round, so its reported history has every round exactly once.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

from hal.config import RunConfig, make_config
from hal.loop import ActiveLearningLoop
from hal.prepare import Prepared, prepare, prepare_key
from hal.records import aulc
from hal.run_files import RunFiles

RUN_KEYS = {f.name for f in fields(RunConfig)}
# Fault injection for tests of retries: raise once, before round N is reported, on a fresh start.
FAIL_AT_ROUND = "fail_at_round"


class InjectedFailure(RuntimeError):
    """Raised by ``fail_at_round`` to exercise ``FailureConfig`` retries."""


def trial_run_config(trial_config: dict[str, Any]) -> RunConfig:
    """The ``RunConfig`` of a trial: its ``run`` dict plus any top-level run keys (searchers
    sample those, e.g. ``epsilon``)."""
    overrides = dict(trial_config.get("run", {}))
    overrides.update({k: v for k, v in trial_config.items() if k in RUN_KEYS})
    return make_config(overrides).resolved()


def _trial_out_dir() -> Path:
    """Where a trial writes records.jsonl, summary.json and TensorBoard events.

    On a local (or shared-filesystem) storage path we write straight into the trial's directory
    there, so TensorBoard sees rounds as they arrive; on cloud storage we write to the trial's
    local directory, which Ray syncs up as artifacts.
    """
    from ray import tune

    context = tune.get_context()
    try:
        storage = context.get_storage()
        if storage.storage_filesystem.type_name == "local":
            path = Path(storage.trial_fs_path)
            path.mkdir(parents=True, exist_ok=True)
            return path
    except Exception:  # noqa: BLE001 - internal API; fall back to the synced local dir
        pass
    return Path(context.get_trial_dir())


def run_trial(config: dict[str, Any], prepared: dict[tuple, Prepared] | None = None) -> None:
    """Tune function trainable. ``prepared`` maps ``prepare_key`` to inputs the driver built once
    (passed with ``tune.with_parameters``); missing keys are prepared here."""
    from ray import tune

    # One "checkpoint created" line per round and trial would drown the sweep's own output.
    logging.getLogger("ray.train").setLevel(logging.WARNING)
    cfg = trial_run_config(config)
    started_at = time.time()
    resources = dict(tune.get_context().get_trial_resources().required_resources)
    threads = int(resources.get("CPU", 1))
    import torch

    torch.set_num_threads(max(1, threads))
    inputs = (prepared or {}).get(prepare_key(cfg)) or prepare(cfg)
    loop = ActiveLearningLoop(cfg, inputs)
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            loop.load(Path(directory))
    out = _trial_out_dir()
    files = RunFiles(out, cfg.to_dict(), fresh=checkpoint is None)
    fail_at = config.get(FAIL_AT_ROUND)

    for record in loop:
        if fail_at is not None and record.round == fail_at and checkpoint is None:
            raise InjectedFailure(f"injected failure at round {fail_at}")
        # Files first: Tune may end the trial's worker as soon as the last result is reported.
        files.round(loop, record)
        if loop.done:
            files.finish(loop, trial_id=tune.get_context().get_trial_id(), resources=resources,
                         started_at=started_at, finished_at=time.time())
        metrics = record.to_dict()
        metrics.update(_progress(loop))
        with tempfile.TemporaryDirectory() as directory:
            loop.save(Path(directory))
            tune.report(_finite(metrics), checkpoint=tune.Checkpoint.from_directory(directory))


def _progress(loop: ActiveLearningLoop) -> dict[str, Any]:
    """Run-level figures reported with every round (searchers read them from the last one)."""
    records = loop.records
    last = records[-1]
    return {
        "aulc": aulc([r.labeled for r in records], [r.val_f1 for r in records]),
        "total_train_time_s": last.cum_train_time_s,
        "total_train_samples": last.cum_train_samples,
        "final_test_f1": last.test_f1 if loop.done else None,
        "switch_round": loop.state.trigger.switch_round,
        "done": loop.done,
    }


def _finite(metrics: dict[str, Any]) -> dict[str, Any]:
    # Tune's searchers and loggers choke on None; NaN is their "missing".
    return {k: (math.nan if v is None else v) for k, v in metrics.items()}
