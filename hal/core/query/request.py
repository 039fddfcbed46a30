"""One query round as a strategy sees it: the pool it may choose from, what is labeled, the
model, and a seeded random stream. Everything the model computes is asked for lazily and at most
once, so each strategy pays only for what it reads."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from hal.core.learner import Learner, Representation


@dataclass
class Query:
    """Choose ``size`` of ``unlabeled`` (corpus rows). ``pool_subset`` > 0 narrows the choice to
    a random subset of that many (``candidates``, sorted); ``labeled`` are the rows trained on so
    far. ``rng`` is the round's own stream (``hal.core.loop`` seeds it from seed and round)."""

    unlabeled: np.ndarray
    labeled: np.ndarray
    size: int
    rng: np.random.Generator
    learner: Learner
    multilabel: bool
    pool_subset: int = 0

    @cached_property
    def candidates(self) -> np.ndarray:
        """The rows to choose from: the unlabeled pool, or a random subset of ``pool_subset``."""
        if 0 < self.pool_subset < len(self.unlabeled):
            subset = self.rng.choice(self.unlabeled, size=max(self.pool_subset, self.size), replace=False)
            return np.sort(subset)
        return self.unlabeled

    @cached_property
    def probs(self) -> np.ndarray:
        """The model's probabilities for ``candidates``."""
        return self.learner.predict_proba(self.candidates)

    @cached_property
    def representation(self) -> Representation:
        """Probabilities and output-layer inputs of ``candidates``."""
        return self.learner.represent(self.candidates)

    @cached_property
    def labeled_representation(self) -> Representation:
        """Probabilities and output-layer inputs of ``labeled``."""
        return self.learner.represent(self.labeled)

    @cached_property
    def random_state(self) -> np.random.RandomState:
        """A legacy ``RandomState`` seeded from ``rng``, for scikit-learn (k-means, k-means++)."""
        return np.random.RandomState(int(self.rng.integers(2**31 - 1)))

    def top(self, scores: np.ndarray) -> np.ndarray:
        """The ``size`` candidates with the highest ``scores``; ties go to the earlier candidate,
        so picks are reproducible."""
        return self.candidates[np.argsort(-np.asarray(scores), kind="stable")[: self.size]]
