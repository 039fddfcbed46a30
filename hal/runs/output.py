"""What every run writes to its directory as rounds arrive, for the CLI and Tune trials alike:
``records.jsonl`` (rewritten whole, so a retried round never doubles), TensorBoard scalars, and
``summary.json`` last (its presence marks a finished run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hal.core.records import RoundRecord, write_records, write_summary
from hal.runs.tensorboard import RoundWriter


class RunFiles:
    """The files of one run in ``out``; ``fresh`` is False when continuing from a checkpoint."""

    def __init__(self, out: Path, config: dict[str, Any], fresh: bool) -> None:
        self.out = Path(out)
        self.writer = RoundWriter(self.out, config, write_hparams=fresh)

    def round(self, records: list[RoundRecord], *new: RoundRecord) -> None:
        """Persist the run's records so far, ``new`` being the rounds not logged yet (the round
        just run, or every round a run took over from another)."""
        write_records(self.out, records)
        if new:
            self.writer.log(*new)

    def finish(self, summary: dict[str, Any]) -> dict[str, Any]:
        """Write the run summary and close TensorBoard; return it."""
        write_summary(self.out, summary)
        self.writer.finish(summary)
        return summary
