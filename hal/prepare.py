"""Work done once per dataset and learner, then shared by every run (and every sweep trial):
load the corpus and compute the learner's fixed inputs (TF-IDF rows, encoder embeddings or token
ids)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hal.config import RunConfig
from hal.corpus import Corpus
from hal.learners.base import TorchLearner

# Config fields that decide what ``prepare`` builds; runs that agree on them share one Prepared.
PREPARE_KEYS = ("dataset", "data_dir", "text_column", "label_column", "multilabel", "val_size",
                "data_seed", "synthetic_classes", "synthetic_size", "synthetic_imbalance",
                "synthetic_noise", "learner", "model", "tfidf_max_features", "max_length",
                "cache_dir")


@dataclass
class Prepared:
    """A corpus plus the learner inputs computed from it."""

    corpus: Corpus
    learner: str
    features: Any


def prepare_key(cfg: RunConfig) -> tuple:
    """The part of a (resolved) config that ``prepare`` depends on."""
    return tuple(getattr(cfg, name) for name in PREPARE_KEYS)


def prepare(cfg: RunConfig) -> Prepared:
    """Load the dataset and compute the inputs of ``cfg.learner`` (``cfg`` must be resolved)."""
    from hal.datasets import load_corpus

    corpus = load_corpus(cfg)
    if cfg.learner == "tfidf":
        from hal.features import tfidf_features

        features = tfidf_features(corpus, cfg.tfidf_max_features)
    elif cfg.learner == "embedding":
        from hal.embeddings import embed_corpus

        features = embed_corpus(corpus, cfg.model, cfg.max_length, cfg.cache_dir, cfg.device)
    else:
        from hal.learners.transformer import tokenize_corpus

        features = tokenize_corpus(corpus, cfg.model, cfg.max_length, cfg.cache_dir)
    return Prepared(corpus=corpus, learner=cfg.learner, features=features)


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
