"""Contrastive active learning, CAL (Margatina et al., EMNLP 2021, "Active Learning by Acquiring
Contrastive Examples"): candidates whose predictions differ most from those of their nearest
labeled neighbours in the model's representation space.

Score of a candidate x: the mean over its ``NEIGHBOURS`` nearest labeled examples l of
KL(p(·|l) ‖ p(·|x)), with the model's predicted probabilities on both sides, as in the paper.
Neighbours by Euclidean distance between L2-normalised output-layer inputs (small-text's
``normalize=True``). small-text's ``ContrastiveActiveLearning`` searches the neighbours among
the labeled *and* unlabeled examples (the candidate itself included) instead of the labeled set
the paper uses; ``cal_scores`` over that set reproduces its picks (docs/query_strategies.md).
Multi-label: KL between per-label Bernoulli distributions, summed over labels.
"""

from __future__ import annotations

import numpy as np

from hal.core.query.geometry import unit_rows
from hal.core.query.request import Query

NEIGHBOURS = 10  # k of the paper and of small-text


def cal(q: Query) -> np.ndarray:
    """The candidates with the largest mean KL divergence from their labeled neighbours."""
    cand, lab = q.representation, q.labeled_representation
    return q.top(cal_scores(unit_rows(cand.embedding), cand.probs, unit_rows(lab.embedding), lab.probs,
                            q.multilabel))


def cal_scores(embedding, probs: np.ndarray, ref_embedding, ref_probs: np.ndarray, multilabel: bool,
               neighbours: int = NEIGHBOURS) -> np.ndarray:
    """Mean KL(p_ref ‖ p) over each row's ``neighbours`` nearest rows of ``ref_embedding``."""
    from scipy.special import rel_entr
    from sklearn.neighbors import NearestNeighbors

    k = min(neighbours, ref_embedding.shape[0])
    near = NearestNeighbors(n_neighbors=k).fit(ref_embedding).kneighbors(embedding, return_distance=False)
    p, ref = np.asarray(probs, dtype=np.float64), np.asarray(ref_probs, dtype=np.float64)
    if multilabel:
        p, ref = np.stack([p, 1.0 - p], axis=-1), np.stack([ref, 1.0 - ref], axis=-1)
    kl = rel_entr(ref[near], p[:, None]).reshape(len(p), k, -1).sum(axis=-1)  # (rows, k)
    return kl.mean(axis=1)
