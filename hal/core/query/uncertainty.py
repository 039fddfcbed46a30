"""Uncertainty sampling: the most uncertain candidates by the model's probabilities, and random
sampling, the baseline every strategy is compared with."""

from __future__ import annotations

import numpy as np

from hal.core.query.request import Query

EPS = 1e-12


def random(q: Query) -> np.ndarray:
    """Uniform over the whole unlabeled pool (``pool_subset`` does not apply)."""
    return q.rng.choice(q.unlabeled, size=q.size, replace=False)


def entropy(q: Query) -> np.ndarray:
    """Largest prediction entropy (multi-label: the sum of per-label binary entropies)."""
    return q.top(uncertainty_scores(q.probs, "entropy", q.multilabel))


def margin(q: Query) -> np.ndarray:
    """Smallest gap between the two most likely classes, p₁ − p₂ ("breaking ties", Luo et al.
    2005; small-text's ``BreakingTies``); multi-label: the mean over labels of |2p − 1|."""
    return q.top(uncertainty_scores(q.probs, "margin", q.multilabel))


def least_confidence(q: Query) -> np.ndarray:
    """Lowest probability of the predicted class (multi-label: mean over labels)."""
    return q.top(uncertainty_scores(q.probs, "least_confidence", q.multilabel))


def uncertainty_scores(probs: np.ndarray, strategy: str, multilabel: bool) -> np.ndarray:
    """Higher = more uncertain. Multi-label scores combine the per-label binary uncertainty."""
    if multilabel:
        p = np.clip(probs, EPS, 1 - EPS)
        if strategy == "entropy":
            return -(p * np.log(p) + (1 - p) * np.log(1 - p)).sum(axis=1)
        if strategy == "margin":
            return -np.abs(2 * p - 1).mean(axis=1)
        if strategy == "least_confidence":
            return (1 - np.maximum(p, 1 - p)).mean(axis=1)
    else:
        if strategy == "entropy":
            return -(probs * np.log(np.clip(probs, EPS, 1))).sum(axis=1)
        if strategy == "margin":
            top2 = np.sort(probs, axis=1)[:, -2:]
            return -(top2[:, 1] - top2[:, 0])
        if strategy == "least_confidence":
            return 1 - probs.max(axis=1)
    raise ValueError(f"no uncertainty score for {strategy!r}")
