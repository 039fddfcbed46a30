"""One run put together from its config: the prepared inputs, the learner at its initial weights,
and the loop (the same for ``python -m hal run`` and every Tune trial)."""

from __future__ import annotations

from hal.core.config import RunConfig
from hal.core.loop import ActiveLearningLoop
from hal.data.inputs import Prepared, prepare
from hal.learners.factory import make_learner


def new_loop(cfg: RunConfig, prepared: Prepared | None = None) -> ActiveLearningLoop:
    """A fresh loop for ``cfg`` (resolved) over ``prepared`` inputs (prepared here when None)."""
    prepared = prepared if prepared is not None else prepare(cfg)
    return ActiveLearningLoop(cfg, prepared.corpus, make_learner(cfg, prepared))
