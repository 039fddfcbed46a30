"""The in-memory dataset every learner and the loop work on."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Corpus:
    """All texts of a dataset in one list, with index arrays for its splits.

    ``labels`` is ``(n,)`` int64 for single-label data, or ``(n, L)`` float32 0/1 for multi-label.
    ``pool`` is the train split minus the validation split carved from it; active learning queries
    from ``pool`` only. Indices everywhere refer to positions in ``texts``.
    """

    name: str
    texts: list[str]
    labels: np.ndarray
    pool: np.ndarray
    val: np.ndarray
    test: np.ndarray
    label_names: list[str]
    multilabel: bool = False
    synthetic: bool = False
    source: str = ""
    fingerprint: str = field(default="")

    @property
    def num_classes(self) -> int:
        """Number of classes (single-label) or of labels (multi-label)."""
        return len(self.label_names)

    def __post_init__(self) -> None:
        if not self.fingerprint:
            self.fingerprint = corpus_fingerprint(self.texts, self.labels)


def corpus_fingerprint(texts: list[str], labels: np.ndarray) -> str:
    """A short content hash, used as a cache key for features computed from the texts."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    digest.update(np.ascontiguousarray(labels).tobytes())
    return digest.hexdigest()[:16]
