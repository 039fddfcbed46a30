"""Work done once per dataset and learner, then shared by every run (and every sweep trial):
load the corpus and compute the learner's fixed inputs (TF-IDF rows, encoder embeddings or token
ids). (The repository's ``data/prepare.py`` is something else: it puts dataset files on disk.)"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hal.core.config import RunConfig
from hal.core.corpus import Corpus

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
    from hal.data.datasets import load_corpus

    corpus = load_corpus(cfg)
    if cfg.learner == "tfidf":
        from hal.data.tfidf import tfidf_features

        features = tfidf_features(corpus, cfg.tfidf_max_features)
    elif cfg.learner == "embedding":
        from hal.data.embeddings import embed_corpus

        features = embed_corpus(corpus, cfg.model, cfg.max_length, cfg.cache_dir, cfg.device)
    else:
        from hal.data.tokenization import tokenize_corpus

        features = tokenize_corpus(corpus, cfg.model, cfg.max_length, cfg.cache_dir)
    return Prepared(corpus=corpus, learner=cfg.learner, features=features)
