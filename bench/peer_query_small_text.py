"""The peer reference for bench/query_agreement.py: small-text's own query strategies, run on
exactly what HAL's strategies saw in one query round.

Runs in its own environment, never as a HAL dependency, and never imports HAL:

    python -m venv /work/venvs/peer && /work/venvs/peer/bin/pip install small-text==1.4.1 scikit-learn torch
    /work/venvs/peer/bin/python bench/peer_query_small_text.py case1.npz case2.npz ... --out peer.jsonl

A case (written by bench/query_agreement.py) holds one round's query: the rows small-text's
strategies index as their dataset (the candidates first, then the labeled examples, as small-text's
own ``EmbeddingBasedQueryStrategy`` lays them out), the model's probabilities and representation
of those rows, MC-dropout samples where the learner has dropout, the batch size and the integer seed
HAL drew its random state from. A stand-in classifier hands these to small-text (``predict_proba``,
``embed(return_proba=True)``, ``predict_proba(dropout_sampling=T)``); the strategies themselves are
small-text's, unchanged: ``PredictionEntropy``, ``BreakingTies``, ``LeastConfidence``,
``GreedyCoreset(distance_metric="euclidean", normalize=True)``, ``EmbeddingKMeans(normalize=True)``
(k-means from numpy's global random state, seeded with HAL's seed), ``ContrastiveActiveLearning(k=10)``,
``BALD(dropout_samples=10)`` and ``BADGE(num_classes)`` (seeded from an unseeded ``RandomState``:
it cannot be given a seed). BADGE runs twice, to show how much two of its own calls agree.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from small_text import (BALD, BreakingTies, ContrastiveActiveLearning, EmbeddingKMeans,  # noqa: E402
                        GreedyCoreset, LeastConfidence, PredictionEntropy)
from small_text.integrations.pytorch.query_strategies import BADGE  # noqa: E402

warnings.filterwarnings("ignore", message="Default distance metric has changed")


class Rows:
    """What small-text's strategies index: positions into the case's arrays."""

    def __init__(self, idx: np.ndarray) -> None:
        self.idx = np.asarray(idx)

    def __getitem__(self, item) -> "Rows":
        return Rows(self.idx[item])

    def __len__(self) -> int:
        return len(self.idx)


class CaseClassifier:
    """A small-text classifier that answers from the case's arrays."""

    def __init__(self, case) -> None:
        self.case = case

    def predict_proba(self, data: Rows, dropout_sampling: int = 1):
        if dropout_sampling > 1:  # small-text's layout: (examples, samples, classes)
            return np.transpose(self.case["mc"][:dropout_sampling, data.idx], (1, 0, 2))
        return self.case["probs"][data.idx]

    def embed(self, data: Rows, return_proba: bool = False, pbar=None, **_):
        x = self.case["embedding"][data.idx]
        x = x.toarray() if sp.issparse(x) else x
        return (x, self.case["probs"][data.idx]) if return_proba else x


def load_case(path: Path) -> dict:
    z = np.load(path, allow_pickle=False)
    case = {name: z[name] for name in z.files}
    if "emb_data" in case:
        case["embedding"] = sp.csr_matrix((case["emb_data"], case["emb_indices"], case["emb_indptr"]),
                                          shape=tuple(case["emb_shape"]))
    return case


def run_case(case: dict) -> list[dict]:
    n_unlabeled, n = int(case["n_unlabeled"]), int(case["size"])
    total = case["probs"].shape[0]
    unlabeled, labeled = np.arange(n_unlabeled), np.arange(n_unlabeled, total)
    clf, data = CaseClassifier(case), Rows(np.arange(total))
    y = np.zeros(len(labeled), dtype=np.int64)  # the strategies compared here never read labels
    strategy = str(case["strategy"])
    makers = {
        "entropy": PredictionEntropy, "margin": BreakingTies, "least_confidence": LeastConfidence,
        "coreset": lambda: GreedyCoreset(distance_metric="euclidean", normalize=True),
        "embedding_kmeans": lambda: EmbeddingKMeans(normalize=True),
        "cal": lambda: ContrastiveActiveLearning(k=10, pbar=None),
        "bald": lambda: BALD(dropout_samples=10),
        "badge": lambda: BADGE(num_classes=int(case["probs"].shape[1])),
    }
    out = []
    for call in range(2 if strategy == "badge" else 1):
        np.random.seed(int(case["seed"]))  # EmbeddingKMeans's KMeans draws from numpy's global state
        kwargs = {"pbar": None} if strategy in ("coreset", "embedding_kmeans", "badge") else {}
        picks = makers[strategy]().query(clf, data, unlabeled, labeled, y, n=n, **kwargs)
        out.append({"call": call, "picks": sorted(int(i) for i in picks)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cases", type=Path, nargs="+")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    with open(args.out, "w") as handle:
        for path in args.cases:
            for row in run_case(load_case(path)):
                handle.write(json.dumps({"case": path.stem, **row}) + "\n")


if __name__ == "__main__":
    main()
