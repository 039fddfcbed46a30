"""What the loop needs from a model backend (``hal.learners`` implements it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass
class FitResult:
    """What one call of ``fit`` cost: wall seconds, examples processed (passes x examples), the
    passes made (epochs, or full-batch evaluations), the final training loss, and whether a head
    trained to a criterion met it (``None`` for a fixed epoch budget)."""

    seconds: float
    samples: int
    epochs_run: int
    final_loss: float
    converged: bool | None = None


class Learner(Protocol):
    """Reset to the initial weights, warm-start, fit on indices, predict probabilities, and hand
    its weights to a checkpoint. Indices refer to the corpus the learner was built on."""

    def reset(self) -> None:
        """Back to the initial weights (pretrained checkpoint + the run's seeded head)."""

    def warm_start(self, shrink: float, perturb: float, seed: int) -> None:
        """Prepare a warm-started round: θ ← shrink·θ + perturb·θ_fresh ((1, 0) keeps θ)."""

    def fit(self, idx: np.ndarray, y: np.ndarray, epochs: int, lr: float, seed: int,
            patience: int = 0) -> FitResult:
        """Train on ``idx`` from the current weights; only the training itself is timed."""

    def predict_proba(self, idx: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, classes)``, or per-label ones for multi-label data."""

    def state_dict(self) -> dict:
        """The current weights, for checkpoints."""

    def load_state_dict(self, state: dict) -> None:
        """Restore weights saved by ``state_dict``."""
