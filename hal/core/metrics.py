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


def predictions(probs: np.ndarray, multilabel: bool) -> np.ndarray:
    """Hard predictions as ``macro_f1`` makes them: argmax, or p >= 0.5 per label."""
    return (probs >= 0.5).astype(np.int64) if multilabel else probs.argmax(axis=1).astype(np.int64)


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's κ between two label vectors (as ``sklearn.metrics.cohen_kappa_score``), defined
    where sklearn gives NaN: when both sides predict one and the same class throughout (chance
    agreement 1), κ is 1 if they agree everywhere, else 0."""
    a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
    if len(a) == 0:
        return float("nan")
    classes, codes = np.unique(np.concatenate([a, b]), return_inverse=True)
    ca, cb = codes[: len(a)], codes[len(a):]
    observed = float(np.mean(ca == cb))
    chance = float(np.dot(np.bincount(ca, minlength=len(classes)), np.bincount(cb, minlength=len(classes)))
                   / len(a) ** 2)
    if chance >= 1.0:
        return 1.0 if observed >= 1.0 else 0.0
    return (observed - chance) / (1.0 - chance)


def prediction_agreement(previous: np.ndarray, current: np.ndarray, multilabel: bool) -> float:
    """Cohen's κ between two models' hard predictions on the same examples; for multi-label data
    κ over all (example, label) decisions pooled. (The mean of per-label κ jumps on one flipped
    decision of a rare label: 1 of 3,000 decisions gives 1 − κ 0.33, pooled 0.001.)"""
    return cohen_kappa(np.asarray(previous).ravel(), np.asarray(current).ravel())
