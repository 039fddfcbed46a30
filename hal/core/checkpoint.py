"""``checkpoint.pt``: a run's state after a round (loop state + weights), written atomically and
read back with ``weights_only`` so a crafted file cannot run code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hal.core.errors import HalError
from hal.core.paths import path_error

CHECKPOINT_FILE = "checkpoint.pt"


def save_checkpoint(ckpt: dict[str, Any], directory: Path) -> None:
    """Write ``ckpt`` (plain types and tensors) to ``directory/checkpoint.pt`` atomically."""
    import torch  # here, not at the top: the CLI checks its paths before paying torch's import

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{CHECKPOINT_FILE}.tmp"
    try:
        # Opened here, not by torch: a failed open or write is then an OSError naming the
        # file (torch reports both as a RuntimeError), which the CLI turns into one line.
        with open(tmp, "wb") as handle:
            torch.save(ckpt, handle)
        tmp.replace(directory / CHECKPOINT_FILE)
    except BaseException:
        tmp.unlink(missing_ok=True)  # the previous checkpoint.pt stays as it was
        raise


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The dict saved by ``save_checkpoint`` at ``path``; ``HalError`` if it cannot be read or is
    damaged (truncated, empty, not a checkpoint)."""
    import torch

    path = Path(path)
    try:
        with open(path, "rb") as handle:
            empty = not handle.read(1)
    except OSError as exc:
        raise path_error("checkpoint", path, exc, "make it readable or choose another --out") from None
    if empty:
        raise damaged_checkpoint(path, "empty file")
    try:
        ckpt = torch.load(path, weights_only=True)
    except Exception as exc:  # torch reports damage as RuntimeError, OSError, EOFError, Unpickling...
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise damaged_checkpoint(path, reason) from None
    if not isinstance(ckpt, dict) or not {"config", "next_round", "records", "model"} <= ckpt.keys():
        raise damaged_checkpoint(path, "not a HAL run state")
    return ckpt


def damaged_checkpoint(path: Path, reason: str) -> HalError:
    """The one-line error for an unusable checkpoint, with the way out."""
    return HalError(f"checkpoint {str(path)!r} is damaged ({reason}); the run cannot resume "
                    "without the model weights it holds: start it over with --restart (discards "
                    f"the unfinished run in {str(path.parent)!r}) or choose another --out")
