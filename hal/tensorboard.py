"""Our own per-round TensorBoard scalars and an HParams entry written when a run *starts*, so
runs are comparable in the HParams tab while they are still going (Ray's automatic TensorBoard
output files everything under ``ray/tune/`` and writes HParams only at trial end)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hal.records import RoundRecord

SCALARS = {
    "f1/val": "val_f1",
    "f1/monitor": "monitor_f1",
    "f1/delta": "delta_f1",
    "f1/test": "test_f1",
    "cost/train_time_s": "train_time_s",
    "cost/cum_train_time_s": "cum_train_time_s",
    "cost/train_samples": "train_samples",
    "cost/cum_train_samples": "cum_train_samples",
    "cost/query_time_s": "query_time_s",
    "cost/eval_time_s": "eval_time_s",
    "al/labeled": "labeled",
    "hybrid/switched": "switched",
}
HPARAMS = ("dataset", "learner", "strategy", "epsilon", "k", "query_size", "seed", "monitor",
           "query_strategy", "finetune_epochs", "replay_fraction")
FINAL_METRICS = {"final/test_f1": "final_test_f1", "final/aulc": "aulc",
                 "final/train_time_s": "total_train_time_s", "final/train_samples": "total_train_samples"}


class RoundWriter:
    """Writes one run's rounds to TensorBoard as they arrive (step = round)."""

    def __init__(self, log_dir: Path, config: dict[str, Any], write_hparams: bool = True) -> None:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        self.writer = SummaryWriter(log_dir=str(log_dir), flush_secs=5)
        if write_hparams:
            hp = {name: _hparam_value(config.get(name)) for name in HPARAMS}
            for summary in hparams(hp, {tag: 0.0 for tag in FINAL_METRICS}):
                self.writer.file_writer.add_summary(summary)

    def log(self, record: RoundRecord) -> None:
        """Scalars of one round; null values (ΔF1 in round 0, test F1 mid-run) are skipped."""
        values = record.to_dict()
        for tag, field in SCALARS.items():
            if values[field] is not None:
                self.writer.add_scalar(tag, values[field], global_step=record.round)
        self.writer.flush()

    def finish(self, summary: dict[str, Any]) -> None:
        """The final metrics the HParams tab shows for this run."""
        step = summary["rounds"] - 1
        for tag, key in FINAL_METRICS.items():
            if summary.get(key) is not None:
                self.writer.add_scalar(tag, summary[key], global_step=step)
        self.writer.close()


def _hparam_value(value: Any) -> Any:
    # HParams accept numbers, strings and bools only.
    if value is None:
        return "none"
    return value if isinstance(value, (int, float, str, bool)) else str(value)
