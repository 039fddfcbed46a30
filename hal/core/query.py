"""Query strategies: which unlabeled pool examples to label next."""

from __future__ import annotations

from typing import Callable

import numpy as np


def uncertainty_scores(probs: np.ndarray, strategy: str, multilabel: bool) -> np.ndarray:
    """Higher = more uncertain. Multi-label scores average the per-label binary uncertainty."""
    eps = 1e-12
    if multilabel:
        p = np.clip(probs, eps, 1 - eps)
        if strategy == "entropy":
            return -(p * np.log(p) + (1 - p) * np.log(1 - p)).sum(axis=1)
        if strategy == "margin":
            return -np.abs(2 * p - 1).mean(axis=1)
        if strategy == "least_confidence":
            return (1 - np.maximum(p, 1 - p)).mean(axis=1)
    else:
        if strategy == "entropy":
            return -(probs * np.log(np.clip(probs, eps, 1))).sum(axis=1)
        if strategy == "margin":
            top2 = np.sort(probs, axis=1)[:, -2:]
            return -(top2[:, 1] - top2[:, 0])
        if strategy == "least_confidence":
            return 1 - probs.max(axis=1)
    raise ValueError(f"no uncertainty score for {strategy!r}")


def select(strategy: str, unlabeled: np.ndarray, size: int, rng: np.random.Generator,
           predict_proba: Callable[[np.ndarray], np.ndarray], *, multilabel: bool,
           pool_subset: int = 0) -> np.ndarray:
    """Choose ``size`` indices from ``unlabeled``.

    ``random`` samples uniformly. The uncertainty strategies score the pool (or, with
    ``pool_subset`` > 0, a random subset of that many examples, as the seed study did) and take the
    most uncertain; ties go to the earlier candidate so results are reproducible.
    """
    size = min(size, len(unlabeled))
    if strategy == "random":
        return rng.choice(unlabeled, size=size, replace=False)
    candidates = unlabeled
    if 0 < pool_subset < len(unlabeled):
        candidates = np.sort(rng.choice(unlabeled, size=max(pool_subset, size), replace=False))
    scores = uncertainty_scores(predict_proba(candidates), strategy, multilabel)
    order = np.argsort(-scores, kind="stable")
    return candidates[order[:size]]
