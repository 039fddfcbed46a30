"""The per-round record and the run summary: the one schema every sink (CLI, Tune, TensorBoard,
analysis) uses. Field names are fixed by DESIGN.md; do not rename them without updating analysis."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from hal.core.files import atomic_write_text

RECORDS_FILE = "records.jsonl"
SUMMARY_FILE = "summary.json"


@dataclass
class RoundRecord:
    """What one round did and cost. ``None`` stands for null (no ΔF1 in round 0, no test score).

    The switch signal has two names. ``monitor_score`` and ``signal`` hold it for every monitor:
    the monitor's score this round and the change the switch rule thresholds (F1 on the monitor
    set and ΔF1 for ``val``/``holdout``; Cohen's κ with the previous model and 1 − κ for
    ``agreement``). ``monitor_f1``/``delta_f1`` are DESIGN.md's names for the F1 monitors: equal to
    ``monitor_score``/``signal`` there, null for ``agreement``, which measures no F1.
    """

    round: int
    labeled: int
    queried: int
    mode: str
    switched: int
    val_f1: float
    monitor_f1: float | None
    delta_f1: float | None
    test_f1: float | None
    train_time_s: float
    cum_train_time_s: float
    train_samples: int
    cum_train_samples: int
    query_time_s: float
    eval_time_s: float
    # extras (allowed by DESIGN.md): the switch signal for every monitor, how the round was built
    monitor_score: float | None = None
    signal: float | None = None
    monitor_size: int = 0
    held_out: int = 0
    # passes over the training examples this round (epochs; function evaluations of a full-batch
    # solver; a scikit-learn estimator's n_iter_), and whether the head's stopping criterion was
    # met (1) or its cap hit (0); null for a fixed epoch budget
    epochs_run: int = 0
    fit_converged: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RoundRecord":
        """A record read back from a file or checkpoint, including those written before
        ``monitor_score``/``signal`` existed (their ``monitor_f1``/``delta_f1`` held the signal
        for every monitor)."""
        values = dict(values)
        if "signal" not in values:
            values["monitor_score"] = values.get("monitor_f1")
            values["signal"] = values.get("delta_f1")
        return cls(**values)


def switch_signal(record: RoundRecord | dict[str, Any]) -> float | None:
    """The signal the switch rule thresholds, from a record or its dict (old files included)."""
    if isinstance(record, RoundRecord):
        return record.signal
    return record["signal"] if "signal" in record else record.get("delta_f1")


TIMING_FIELDS = ("train_time_s", "cum_train_time_s", "query_time_s", "eval_time_s")


def aulc(labeled: Iterable[float], f1: Iterable[float]) -> float:
    """Area under the F1-vs-labeled curve divided by the labeled range, so it lies in [0, 1].

    With a single point the curve has no width; its F1 is returned.
    """
    x = np.asarray(list(labeled), dtype=float)
    y = np.asarray(list(f1), dtype=float)
    if len(x) == 0:
        return float("nan")
    if len(x) == 1 or x[-1] == x[0]:
        return float(y.mean())
    return float(np.trapezoid(y, x) / (x[-1] - x[0]))


def summarize(records: list[RoundRecord], config: dict[str, Any]) -> dict[str, Any]:
    """The run summary DESIGN.md fixes, computed from the records."""
    last = records[-1]
    switch_round = next((r.round for r in records if r.switched), None)
    return {
        "config": config,
        "dataset": config.get("dataset"),
        "strategy": config.get("strategy"),
        "seed": config.get("seed"),
        "rounds": len(records),
        "final_test_f1": last.test_f1,
        "final_val_f1": last.val_f1,
        "switch_round": switch_round,
        "total_train_time_s": last.cum_train_time_s,
        "total_train_samples": last.cum_train_samples,
        # querying is a cost of its own (BADGE or core-set over a large pool may rival training)
        "total_query_time_s": sum(r.query_time_s for r in records),
        "aulc": aulc([r.labeled for r in records], [r.val_f1 for r in records]),
        "final_labeled": last.labeled,
        "total_passes": sum(r.epochs_run for r in records),
    }


def _clean(value: Any) -> Any:
    """JSON has no NaN: write it as null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


def records_text(records: list[RoundRecord]) -> str:
    """Records as JSON Lines (NaN written as null)."""
    return "".join(json.dumps(_clean(r.to_dict())) + "\n" for r in records)


def write_records(out_dir: Path, records: list[RoundRecord]) -> None:
    """(Re)write ``records.jsonl`` with every round so far, each exactly once."""
    atomic_write_text(Path(out_dir) / RECORDS_FILE, records_text(records))


def write_summary(out_dir: Path, summary: dict[str, Any]) -> None:
    """Write ``summary.json``; its presence marks a run as complete."""
    atomic_write_text(Path(out_dir) / SUMMARY_FILE, json.dumps(_clean(summary), indent=2) + "\n")


def parse_records(text: str) -> list[dict[str, Any]]:
    """JSON Lines (what ``records_text`` writes) back as a list of dicts; blank lines skipped."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def read_records(path: Path) -> list[dict[str, Any]]:
    """Read a ``records.jsonl`` back as a list of dicts."""
    return parse_records(Path(path).read_text())
