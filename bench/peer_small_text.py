"""The peer reference for bench/cpu_learners.py: small-text's ``PoolBasedActiveLearner`` with a
scikit-learn classifier, on the very job HAL runs (its feature matrix, and per seed the split,
initial set and stop set that ``python -m hal export-split`` writes).

Runs in its own environment, never as a HAL dependency, and never imports HAL:

    python -m venv /work/venvs/peer && /work/venvs/peer/bin/pip install small-text==1.4.1 scikit-learn
    /work/venvs/peer/bin/python bench/peer_small_text.py --features F.npz --split s0.json s1.json \
        --clf svc --out peer.jsonl

The job: HAL's features (``F.npz``: ``x`` dense, or CSR ``data, indices, indptr, shape``), HAL's
labels, pool, validation and test rows and initial set (``--split``: export-split's JSON, one per
seed). small-text queries with its ``SubsamplingQueryStrategy(PredictionEntropy(), 1000)``
(entropy over 1,000 random unlabeled pool examples drawn from numpy's global RNG, seeded with the
run seed), ``query_size`` 32, ``rounds`` 30 (round 0 = the initial fit), a fresh classifier every
round (``reuse_model=False``: retrain); the stop set, when the split has one, is never queried
(``indices_ignored``), as in HAL's runs with ``--stop-set shared``.

F1 is macro-F1 of the estimator's own ``predict``. small-text 1.4.1's ``SklearnClassifier.predict``
takes the argmax *column* of ``predict_proba`` as the label, which is wrong while a class is missing
from the labeled set (BANKING77's early rounds); that score is recorded too (``*_smalltext``).
Timing: wall and process CPU seconds of the whole loop (queries, fits, validation every round,
test once at the end), one thread.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one thread, as HAL's benchmark runs

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import f1_score  # noqa: E402
from small_text import (ConfidenceEnhancedLinearSVC, PoolBasedActiveLearner,  # noqa: E402
                        PredictionEntropy, SklearnClassifierFactory, SklearnDataset,
                        SubsamplingQueryStrategy)

CLASSIFIERS = {"svc": "small-text + LinearSVC", "logreg": "small-text + LogisticRegression"}


def make_estimator(name: str, C: float):
    """``svc``: small-text's ConfidenceEnhancedLinearSVC (its documented default); ``logreg``:
    LogisticRegression (lbfgs, max_iter 1000)."""
    if name == "svc":
        return ConfidenceEnhancedLinearSVC(linearsvc_kwargs=dict(C=C))
    return LogisticRegression(C=C, max_iter=1000)


def load_features(path: Path):
    z = np.load(path)
    if "x" in z.files:
        return z["x"]
    return sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))


def macro_f1(classifier, x, y, num_classes: int) -> tuple[float, float]:
    """Macro-F1 of the estimator's own predict, and as small-text's predict reports it."""
    own = classifier.model.predict(x)
    theirs = classifier.predict(SklearnDataset(x, y, target_labels=np.arange(num_classes)))
    return (float(f1_score(y, own, average="macro", zero_division=0)),
            float(f1_score(y, theirs, average="macro", zero_division=0)))


def run_seed(x, split: dict, args) -> list[dict]:
    """One AL run of small-text on ``split``'s job; one row per round."""
    y = np.asarray(split["labels"], dtype=np.int64)
    pool = np.asarray(split["pool"], dtype=np.int64)
    k, seed = int(split["num_classes"]), int(split["seed"])
    position = {int(i): p for p, i in enumerate(pool)}  # small-text indexes its own pool dataset
    train = SklearnDataset(x[pool], y[pool], target_labels=np.arange(k))
    initial = np.array([position[int(i)] for i in split["initial"]])
    ignored = np.array([position[int(i)] for i in split["stop_set"]], dtype=np.int64)
    xv, yv = x[np.asarray(split["val"])], y[np.asarray(split["val"])]
    xt, yt = x[np.asarray(split["test"])], y[np.asarray(split["test"])]

    np.random.seed(seed)  # SubsamplingQueryStrategy draws its subset with np.random.choice
    factory = SklearnClassifierFactory(make_estimator(args.clf, args.C), k)
    strategy = SubsamplingQueryStrategy(PredictionEntropy(), subsample_size=args.subsample)
    learner = PoolBasedActiveLearner(factory, strategy, train)
    rows = []
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for t in range(args.rounds):
        start = time.perf_counter()
        if t == 0:
            learner.initialize_data(initial, y[pool][initial],
                                    indices_ignored=ignored if len(ignored) else None)
            query_s = 0.0
        else:
            queried = learner.query(num_samples=args.query_size)
            query_s = time.perf_counter() - start
            learner.update(y[pool][queried])
        fit_s = time.perf_counter() - start - query_s
        val_f1, val_f1_st = macro_f1(learner.classifier, xv, yv, k)
        row = dict(seed=seed, round=t, labeled=int(len(learner.indices_labeled)), val_f1=val_f1,
                   val_f1_smalltext=val_f1_st, fit_s=fit_s, query_s=query_s,
                   n_iter=int(np.max(getattr(learner.classifier.model, "n_iter_", -1))))
        if t == args.rounds - 1:
            row["test_f1"], row["test_f1_smalltext"] = macro_f1(learner.classifier, xt, yt, k)
        rows.append(row)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    for row in rows:
        row.update(run_wall_s=wall, run_cpu_s=cpu)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", type=Path, required=True, help=".npz of HAL's feature matrix")
    ap.add_argument("--split", type=Path, nargs="+", required=True, help="export-split JSON, one per seed")
    ap.add_argument("--clf", default="svc", choices=tuple(CLASSIFIERS))
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--query-size", type=int, default=32)
    ap.add_argument("--subsample", type=int, default=1000)
    ap.add_argument("--out", type=Path, required=True, help="JSON lines, one per seed x round")
    args = ap.parse_args()
    x = load_features(args.features)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as handle:
        for path in args.split:
            rows = run_seed(x, json.loads(path.read_text()), args)
            for row in rows:
                handle.write(json.dumps(dict(row, clf=args.clf, C=args.C)) + "\n")
            last = rows[-1]
            print(f"peer {args.clf} seed {last['seed']}: test F1 {last['test_f1']:.3f}, "
                  f"wall {last['run_wall_s']:.1f}s, cpu {last['run_cpu_s']:.1f}s", flush=True)


if __name__ == "__main__":
    main()
