"""The learner a run config asks for, built over prepared inputs."""

from __future__ import annotations

from hal.core.config import SKLEARN_HEADS, RunConfig
from hal.core.learner import Learner
from hal.data.inputs import Prepared


def make_learner(cfg: RunConfig, prepared: Prepared) -> Learner:
    """A learner at its initial weights (seeded from ``cfg.seed``); ``cfg`` must be resolved."""
    corpus = prepared.corpus
    if cfg.learner in ("tfidf", "embedding"):
        features, k = prepared.features, corpus.num_classes
        if cfg.head == "lbfgs":
            from hal.learners.lbfgs import LbfgsHeadLearner

            return LbfgsHeadLearner(features, k, multilabel=corpus.multilabel, C=cfg.C, tol=cfg.tol,
                                    max_iter=cfg.max_iter)
        if cfg.head in SKLEARN_HEADS:
            from hal.learners.sklearn_head import SklearnLearner, make_estimator

            return SklearnLearner(features, k, make_estimator(cfg.head, cfg.C, cfg.tol, cfg.max_iter),
                                  name=cfg.head)
        from hal.learners.head import HeadLearner, MlpHeadLearner

        if cfg.head == "mlp":
            return MlpHeadLearner(features, k, multilabel=corpus.multilabel, hidden_size=cfg.hidden_size,
                                  seed=cfg.seed, batch_size=cfg.batch_size, weight_decay=cfg.weight_decay,
                                  loss_target=cfg.tol, max_epochs=cfg.max_iter, device=cfg.device,
                                  dropout=cfg.dropout)
        return HeadLearner(features, k, multilabel=corpus.multilabel, hidden_size=cfg.hidden_size,
                           seed=cfg.seed, batch_size=cfg.batch_size, weight_decay=cfg.weight_decay,
                           device=cfg.device, dropout=cfg.dropout)
    from hal.learners.transformer import TransformerLearner

    return TransformerLearner(cfg, corpus, prepared.features)
