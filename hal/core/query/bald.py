"""BALD with MC dropout (Houlsby et al. 2011; Gal, Islam & Ghahramani, ICML 2017): the
candidates on whose label the model's dropout samples disagree most, i.e. the largest mutual
information between the label and the weights, H[E_t p_t] − E_t H[p_t], estimated from
``SAMPLES`` stochastic forward passes with dropout on (small-text's ``BALD`` default: 10).

Only learners trained with dropout can sample (``Learner.has_dropout``: the transformer, and the
``mlp``/``adamw`` hidden-layer heads with ``--dropout`` > 0); the others are refused in one line
before the run starts. Multi-label: the per-label binary mutual information, summed over labels.
"""

from __future__ import annotations

import numpy as np

from hal.core.query.request import Query

SAMPLES = 10
EPS = 1e-8  # inside the logarithm, as small-text's ``_bald``


def bald(q: Query) -> np.ndarray:
    """The candidates with the largest BALD score."""
    seeds = q.rng.integers(2**31 - 1, size=SAMPLES)
    samples = np.stack([q.learner.predict_proba(q.candidates, dropout_seed=int(s)) for s in seeds])
    return q.top(bald_scores(samples, q.multilabel))


def bald_scores(samples: np.ndarray, multilabel: bool) -> np.ndarray:
    """Mutual information per example from ``(samples, examples, classes)`` probabilities (in
    nats; small-text's bits are the same ranking)."""
    samples = np.asarray(samples, dtype=np.float64)
    if multilabel:  # each label a Bernoulli: stack p and 1 − p as two classes, sum over labels
        samples = np.stack([samples, 1.0 - samples], axis=-1)
        return (_entropy(samples.mean(axis=0)) - _entropy(samples).mean(axis=0)).sum(axis=-1)
    return _entropy(samples.mean(axis=0)) - _entropy(samples).mean(axis=0)


def _entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(p + EPS)).sum(axis=-1)
