"""One trial's side of the reporting protocol: its plan and inputs, its folder on the storage
path (kept in step with an object store), and ``report``, which tells Tune every round it has
not heard of yet, each with the run-level figures as they stood after it. A tiny Tune checkpoint
per report says which rounds Tune has already heard of in this experiment, so a retried trial
reports each round once."""

from __future__ import annotations

import json
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
from hal.core.records import RECORDS_FILE, SUMMARY_FILE, RoundRecord, read_records, summarize
from hal.data.inputs import Prepared, prepare, prepare_key
from hal.runs.output import RunFiles
from hal.sweep.plan import PLAN_FILE, TrialPlan
from hal.sweep.storage import Storage, upload_folder

ROUND_SLEEP_S = float(os.environ.get("HAL_TEST_ROUND_SLEEP_S") or 0)  # tests: rounds slow enough to kill a node mid-way


@dataclass
class Trial:
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


# Run-level figures reported with every round (searchers read them from the last one).
PROGRESS = ("aulc", "total_train_time_s", "total_train_samples", "total_query_time_s", "final_val_f1",
            "final_test_f1", "switch_round")


def _progress(records: list[RoundRecord], done: bool) -> dict[str, Any]:
    """The run summary's figures as they stand after the last of ``records``; the test F1 only
    once the run is done."""
    summary = summarize(records, {})
    progress = {key: summary[key] for key in PROGRESS}
    if not done:
        progress["final_test_f1"] = None
    return {**progress, "done": done}


def _finite(metrics: dict[str, Any]) -> dict[str, Any]:
    # Tune's searchers and loggers choke on None; NaN is their "missing".
    return {k: (math.nan if v is None else v) for k, v in metrics.items()}

