"""The learner a run config asks for, built over prepared inputs."""

from __future__ import annotations

from hal.core.config import RunConfig
from hal.data.inputs import Prepared
from hal.learners.base import TorchLearner


def make_learner(cfg: RunConfig, prepared: Prepared) -> TorchLearner:
    """A learner at its initial weights (seeded from ``cfg.seed``)."""
    corpus = prepared.corpus
    if cfg.learner in ("tfidf", "embedding"):
        from hal.learners.head import HeadLearner

        return HeadLearner(prepared.features, corpus.num_classes, multilabel=corpus.multilabel,
                           hidden_size=cfg.hidden_size, seed=cfg.seed, batch_size=cfg.batch_size,
                           weight_decay=cfg.weight_decay, device=cfg.device)
    from hal.learners.transformer import TransformerLearner

    return TransformerLearner(cfg, corpus, prepared.features)
