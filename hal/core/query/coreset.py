"""Core-set (Sener & Savarese, ICLR 2018): greedy k-center over the model's representation.

Each pick is the candidate farthest from everything labeled or picked so far, so the batch covers
the pool. Distances are Euclidean between L2-normalised output-layer inputs, small-text's
``GreedyCoreset`` default (``normalize=True``, Euclidean); ties go to the earlier candidate, as
there. The distance to the nearest labeled example is computed once and updated with each pick
(small-text recomputes it against the whole set every pick: the same picks, b times the work).
Label-free, so multi-label data needs nothing special.
"""

from __future__ import annotations

import numpy as np

from hal.core.query.geometry import min_sq_distances, sq_distances, sq_norms, unit_rows
from hal.core.query.request import Query


def coreset(q: Query) -> np.ndarray:
    """Greedy k-center picks among the candidates, starting from the labeled set."""
    candidates = unit_rows(q.representation.embedding)
    labeled = unit_rows(q.labeled_representation.embedding)
    return q.candidates[greedy_k_center(candidates, labeled, q.size)]


def greedy_k_center(candidates, labeled, size: int) -> np.ndarray:
    """Positions (in ``candidates``) of ``size`` greedy k-center picks: each the candidate whose
    squared distance to its nearest labeled-or-picked row is largest."""
    norms = sq_norms(candidates)
    nearest = min_sq_distances(candidates, labeled, norms)
    picks: list[int] = []
    for _ in range(size):
        nearest[picks] = -np.inf
        pick = int(np.argmax(nearest))
        picks.append(pick)
        to_pick = sq_distances(candidates, candidates[[pick]], norms, norms[[pick]])[:, 0]
        np.minimum(nearest, to_pick, out=nearest)
    return np.asarray(picks, dtype=np.int64)
