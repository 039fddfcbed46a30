"""BADGE (Ash et al., ICLR 2020, "Deep Batch Active Learning by Diverse, Uncertain Gradient Lower
Bounds"): k-means++ seeding over the gradient embeddings of the candidates.

The gradient embedding of an example is the gradient of the loss at the model's own predicted
label with respect to the output layer's weights, (p − e_ŷ) ⊗ h: long where the model is unsure
(uncertainty) and pointing in different directions for different examples (diversity). As in the
authors' code, every class counts, binary tasks included, and the bias is left out.

Seeding follows the authors' code (``init_centers`` in github.com/JordanAsh/badge): the first
seed is the largest gradient, each next one is drawn with probability proportional to its squared
distance from the nearest seed so far (plain k-means++, no local trials), with the round's seeded
random state. Distances come from the factorised embedding (``GradientEmbedding``), never a
(candidates × classes·features) matrix. Multi-label: per-label sigmoid gradients at the labels
p ≥ 0.5 (``gradient_scale``).

small-text's ``BADGE`` (1.4.1) differs on three counts, measured in docs/query_strategies.md: its
embedding scales every class block by −p (the predicted class should get 1 − p), it uses the plain
representation for binary tasks, and it seeds with scikit-learn's greedy k-means++ from an unseeded
random state.
"""

from __future__ import annotations

import numpy as np

from hal.core.query.geometry import GradientEmbedding, gradient_scale
from hal.core.query.request import Query


def badge(q: Query) -> np.ndarray:
    """k-means++ seeds of the candidates' gradient embeddings."""
    rep = q.representation
    points = GradientEmbedding(gradient_scale(rep.probs, q.multilabel), rep.embedding)
    return q.candidates[kmeans_plusplus(points, q.size, q.random_state)]


def kmeans_plusplus(points: GradientEmbedding, n_clusters: int,
                    random_state: np.random.RandomState) -> np.ndarray:
    """Indices of ``n_clusters`` distinct k-means++ seeds of ``points``: the largest first (the
    earliest of equals), then D²-sampling. When the distances are spent (every remaining point
    sits on a seed, e.g. a model certain of everything) the rest are drawn uniformly from the
    points not yet chosen."""
    n = len(points)
    chosen = [int(np.argmax(points.sq_norms))]
    closest = points.sq_distances(np.array(chosen))[0]
    while len(chosen) < n_clusters:
        total = closest.sum()
        if total <= 0.0:
            rest = np.setdiff1d(np.arange(n), chosen)
            chosen += random_state.choice(rest, size=n_clusters - len(chosen), replace=False).tolist()
            break
        pick = int(random_state.choice(n, p=closest / total))
        chosen.append(pick)
        np.minimum(closest, points.sq_distances(np.array([pick]))[0], out=closest)
    return np.asarray(chosen, dtype=np.int64)

