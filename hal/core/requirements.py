"""What HAL needs installed that pip does not install for it: PyTorch, whose build (CPU or CUDA)
the user chooses (README, "Set-up"; setup.cfg says why it is not a requirement)."""

from __future__ import annotations

import importlib.util

from hal.core.errors import HalError

TORCH_MISSING = ("PyTorch is not installed: on a CPU machine run `pip install torch --index-url "
                 "https://download.pytorch.org/whl/cpu`, on a CUDA machine `pip install torch` "
                 "(README, Set-up)")


def torch_installed() -> bool:
    """Whether ``import torch`` can find a torch (without paying for its import)."""
    return importlib.util.find_spec("torch") is not None


def require_torch() -> None:
    """A one-line ``HalError`` naming the install commands when torch is missing; call it before
    anything imports torch."""
    if not torch_installed():
        raise HalError(TORCH_MISSING)
