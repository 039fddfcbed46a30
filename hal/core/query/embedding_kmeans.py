"""Embedding k-means (BERT-KM, Yuan, Lin & Boyd-Graber, EMNLP 2020, "Cold-start Active Learning
through Self-supervised Language Modeling"; small-text's ``EmbeddingKMeans``): cluster the
candidates' L2-normalised representations into as many clusters as examples are queried and take
the candidate nearest (by cosine) to each center; if one candidate is nearest to two centers,
centers pick one after another, each the nearest candidate not yet taken. A purely diverse,
label-free strategy (no model uncertainty), so multi-label data needs nothing special.

k-means is scikit-learn's ``KMeans`` with its defaults (k-means++ initialisation, one run),
seeded from the round, so the same random state gives small-text's picks.
"""

from __future__ import annotations

import numpy as np

from hal.core.query.geometry import inner, unit_rows
from hal.core.query.request import Query


def embedding_kmeans(q: Query) -> np.ndarray:
    """The candidates nearest to the centers of a k-means clustering of their representations."""
    from sklearn.cluster import KMeans

    x = unit_rows(q.representation.embedding)
    centers = KMeans(n_clusters=q.size, random_state=q.random_state).fit(x).cluster_centers_
    return q.candidates[nearest_to_centers(centers, x)]


def nearest_to_centers(centers: np.ndarray, x) -> np.ndarray:
    """For each center the row of ``x`` with the largest cosine similarity, all distinct."""
    sim = inner(centers, x)  # per center, the argmax does not depend on its norm
    picks = sim.argmax(axis=1)
    if len(np.unique(picks)) == len(picks):
        return picks
    picks = np.empty(len(centers), dtype=np.int64)
    for i in range(len(centers)):
        row = sim[i].copy()
        row[picks[:i]] = -np.inf
        picks[i] = int(row.argmax())
    return picks
