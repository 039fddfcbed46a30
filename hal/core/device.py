"""Which torch device a run uses, and reading the clock honestly on it."""

from __future__ import annotations

import torch

from hal.core.errors import HalError


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when present; ``cuda`` without a usable GPU is a one-line ``HalError``
    (torch would only fail later, deep in the first forward pass)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise HalError(f"--device {device}: this torch ({torch.__version__}, {build}) sees no CUDA "
                       "GPU: pass --device cpu (or auto), or install a CUDA build of torch on a "
                       "machine with a GPU")
    try:
        return torch.device(device)
    except RuntimeError:
        raise HalError(f"unknown device {device!r}: pass --device auto, cpu or cuda") from None


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels: CUDA runs asynchronously, so synchronise before reading the clock."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
