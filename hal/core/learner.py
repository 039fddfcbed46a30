"""What the loop and the query strategies need from a model backend (``hal.learners`` implements it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    import scipy.sparse as sp


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


@dataclass
class Representation:
    """What the current model makes of some examples, for the query strategies that look past
    its probabilities: ``probs`` as ``predict_proba`` gives them, and ``embedding``, the input of
    the model's output layer (one row per example; CSR for TF-IDF rows under a linear head).

    Every HAL learner ends in a linear layer over ``embedding`` (logits = W·embedding + b), so the
    gradient of the loss with respect to W, which BADGE needs, follows from these two alone
    (``hal.core.query.geometry.gradient_scale``)."""

    probs: np.ndarray
    embedding: np.ndarray | sp.csr_matrix


class Learner(Protocol):
    """Reset to the initial weights, warm-start, fit on indices, predict probabilities, represent
    examples, and hand its weights to a checkpoint. Indices refer to the corpus the learner was
    built on."""

    # Whether ``predict_proba`` can sample with dropout on (MC dropout, for ``bald``).
    has_dropout: bool

    def reset(self) -> None:
        """Back to the initial weights (pretrained checkpoint + the run's seeded head)."""

    def warm_start(self, shrink: float, perturb: float, seed: int) -> None:
        """Prepare a warm-started round: θ ← shrink·θ + perturb·θ_fresh ((1, 0) keeps θ)."""

    def fit(self, idx: np.ndarray, y: np.ndarray, epochs: int, lr: float, seed: int,
            patience: int = 0) -> FitResult:
        """Train on ``idx`` from the current weights; only the training itself is timed."""

    def predict_proba(self, idx: np.ndarray, dropout_seed: int | None = None) -> np.ndarray:
        """Class probabilities ``(n, classes)``, or per-label ones for multi-label data. With
        ``dropout_seed``, one stochastic forward pass with dropout on (seeded); only learners
        with ``has_dropout`` accept it."""

    def represent(self, idx: np.ndarray) -> Representation:
        """Probabilities and output-layer inputs of ``idx`` (one forward pass)."""

    def state_dict(self) -> dict:
        """The current weights, for checkpoints."""

    def load_state_dict(self, state: dict) -> None:
        """Restore weights saved by ``state_dict``."""


def no_dropout(name: str) -> Exception:
    """The error of a learner asked for MC-dropout samples that it cannot give."""
    from hal.core.errors import HalError

    return HalError(f"{name} has no dropout, so it cannot sample predictions for --query-strategy "
                    "bald: use --head mlp --dropout 0.1 (or --head adamw --hidden-size N --dropout "
                    "0.1) over tfidf/embedding features, or --learner transformer")
