"""What every run writes to its directory as rounds arrive, for the CLI and Tune trials alike:
``records.jsonl`` (rewritten whole, so a retried round never doubles), TensorBoard scalars, and
``summary.json`` last (its presence marks a finished run)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hal.core.records import RoundRecord, write_records, write_summary
from hal.runs.tensorboard import RoundWriter

if TYPE_CHECKING:
    from hal.core.loop import ActiveLearningLoop


class RunFiles:
    """The files of one run in ``out``; ``fresh`` is False when continuing from a checkpoint."""

    def __init__(self, out: Path, config: dict[str, Any], fresh: bool) -> None:
        self.out = Path(out)
        self.writer = RoundWriter(self.out, config, write_hparams=fresh)

    def round(self, loop: "ActiveLearningLoop", record: RoundRecord) -> None:
        """Persist the round just run."""
        write_records(self.out, loop.records)
        self.writer.log(record)

    def finish(self, loop: "ActiveLearningLoop", **extra: Any) -> dict[str, Any]:
        """Write the run summary (plus ``extra`` fields) and close TensorBoard; return it."""
        summary = loop.summary()
        summary.update(extra)
        write_summary(self.out, summary)
        self.writer.finish(summary)
        return summary
