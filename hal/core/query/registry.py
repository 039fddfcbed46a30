"""Every query strategy by its ``--query-strategy`` name, and ``select``, which runs one.

A strategy is a function of a ``Query`` returning the corpus rows to label; adding one is its
own module plus a line here. ``needs`` says what it reads of the learner, so a run that cannot
serve it (``bald`` without dropout) is refused before it starts. Functions are named by module
path and imported when a run first queries: configs read this table, and a bad flag must not wait
for scikit-learn to load.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

from hal.core.errors import HalError, shown
from hal.core.learner import Learner

PROBS, REPRESENTATION, DROPOUT = "probabilities", "representation", "dropout"


@dataclass(frozen=True)
class QueryStrategy:
    """A registered strategy: its function (``module:name`` under ``hal.core.query``), what it
    reads of the learner, one line of help."""

    function: str
    needs: str
    about: str

    @property
    def pick(self) -> Callable:
        """The strategy function: ``Query`` -> corpus rows."""
        module, name = self.function.split(":")
        return getattr(importlib.import_module(f"hal.core.query.{module}"), name)


STRATEGIES: dict[str, QueryStrategy] = {
    "random": QueryStrategy("uncertainty:random", "", "uniform over the unlabeled pool"),
    "entropy": QueryStrategy("uncertainty:entropy", PROBS, "largest prediction entropy"),
    "margin": QueryStrategy("uncertainty:margin", PROBS,
                            "smallest gap between the top two classes (= breaking ties)"),
    "least_confidence": QueryStrategy("uncertainty:least_confidence", PROBS, "lowest top-class probability"),
    "badge": QueryStrategy("badge:badge", REPRESENTATION,
                           "k-means++ over gradient embeddings (uncertain and diverse)"),
    "coreset": QueryStrategy("coreset:coreset", REPRESENTATION,
                             "greedy k-center over the representation (diverse)"),
    "bald": QueryStrategy("bald:bald", DROPOUT, "MC-dropout disagreement (needs a learner with dropout)"),
    "cal": QueryStrategy("cal:cal", REPRESENTATION, "predictions unlike those of the labeled neighbours"),
    "embedding_kmeans": QueryStrategy("embedding_kmeans:embedding_kmeans", REPRESENTATION,
                                      "nearest to k-means centers of the representation (diverse)"),
}
# Names other tools use for a strategy HAL has under another name.
SAME_AS = {"breaking_ties": "margin"}


def check_strategy(name: object) -> str:
    """``name`` if it is a registered strategy; else a one-line ``HalError`` (naming HAL's name
    for a strategy known under another one)."""
    if isinstance(name, str) and name in STRATEGIES:
        return name
    if isinstance(name, str) and name in SAME_AS:
        raise HalError(f"query_strategy {name!r} is HAL's {SAME_AS[name]!r}: pass --query-strategy "
                       f"{SAME_AS[name]}")
    raise HalError(f"unknown query_strategy {shown(name)}: choose one of {', '.join(STRATEGIES)}")


def check_learner(name: str, learner: Learner, what: str) -> None:
    """A one-line ``HalError`` when ``learner`` cannot serve strategy ``name`` (``what`` names
    the learner in the message)."""
    if STRATEGIES[name].needs == DROPOUT and not getattr(learner, "has_dropout", False):
        from hal.core.learner import no_dropout

        raise no_dropout(what)


def select(name: str, unlabeled: np.ndarray, labeled: np.ndarray, size: int, rng: np.random.Generator,
           learner: Learner, *, multilabel: bool, pool_subset: int = 0) -> np.ndarray:
    """``size`` corpus rows from ``unlabeled`` (fewer if the pool has fewer) chosen by strategy
    ``name``; ``labeled`` are the rows trained on so far. Deterministic given ``rng``'s state."""
    from hal.core.query.request import Query

    q = Query(np.asarray(unlabeled), np.asarray(labeled, dtype=np.int64), min(size, len(unlabeled)), rng,
              learner, multilabel, pool_subset)
    if q.size == 0:
        return np.zeros(0, dtype=np.int64)
    picks = np.asarray(STRATEGIES[name].pick(q), dtype=np.int64)
    if len(picks) != q.size or len(np.unique(picks)) != q.size:  # a strategy bug, not bad input
        raise RuntimeError(f"query strategy {name} returned {len(np.unique(picks))} distinct of {q.size} rows")
    return picks
