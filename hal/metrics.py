"""Evaluation metrics (scikit-learn underneath)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score


def macro_f1(y_true: np.ndarray, probs: np.ndarray, multilabel: bool) -> float:
    """Macro-F1: over classes (argmax) or, for multi-label data, over labels (p >= 0.5)."""
    if len(y_true) == 0:
        return float("nan")
    pred = (probs >= 0.5).astype(int) if multilabel else probs.argmax(axis=1)
    truth = y_true.astype(int) if multilabel else y_true
    return float(f1_score(truth, pred, average="macro", zero_division=0))
