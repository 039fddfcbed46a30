"""An offline, seeded text-classification dataset: HAL's default when no real data is at hand.

Documents are strings of pseudo-words ("kota", "ribe", ...). Every word comes either from a
shared Zipfian background vocabulary or from its class's topic words, which are themselves
drawn from that same vocabulary, so the classes overlap. How much topic signal a document
carries varies a lot from document to document, and a fraction of labels is flipped. The effect
(what active-learning experiments need): a TF-IDF + logistic-regression classifier improves
with more labels and then plateaus well below a perfect score (with the defaults, 4 classes:
macro-F1 about 0.68 at 200 labels, 0.8 at 1,000, levelling off near 0.83 from a few thousand).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

VOCAB_SIZE = 5000
TOPIC_WORDS = 1000  # per class: many rare informative words, so more labels keep helping
ZIPF_EXPONENT = 1.05  # background vocabulary, as in natural text
TOPIC_EXPONENT = 0.5  # flatter within a topic
TEST_FRACTION = 4  # test size = size // TEST_FRACTION

_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
_SYLLABLES = [c + v for c in _CONSONANTS for v in _VOWELS]


def _word(index: int) -> str:
    """Pseudo-word number ``index``: its base-70 digits written as consonant-vowel syllables."""
    parts = []
    while True:
        index, digit = divmod(index, len(_SYLLABLES))
        parts.append(_SYLLABLES[digit])
        if index == 0:
            return "".join(reversed(parts))


# Words of two syllables or more (no bare letters). Fixed across seeds: the seed changes the
# data, not the language it is written in. Shuffled once so that the frequent words do not all
# share a first syllable.
VOCAB = np.random.default_rng(12345).permutation(
    np.array([_word(len(_SYLLABLES) + i) for i in range(VOCAB_SIZE)], dtype=object))


def _zipf(n: int, exponent: float = ZIPF_EXPONENT) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    return weights / weights.sum()


def class_sizes(num_classes: int, total: int, imbalance: float) -> np.ndarray:
    """Class counts summing to ``total``, geometric from largest to smallest, ratio ``imbalance``."""
    exponents = np.arange(num_classes) / max(num_classes - 1, 1)
    weights = float(imbalance) ** -exponents
    counts = np.floor(total * weights / weights.sum()).astype(np.int64)
    # Hand the rounding rest out to the largest classes.
    counts[np.argsort(-weights, kind="stable")[: total - counts.sum()]] += 1
    return counts


def _documents(rng: np.random.Generator, labels: np.ndarray, topics: list[np.ndarray],
               background: np.ndarray, topic_p: np.ndarray) -> list[str]:
    n = len(labels)
    # Lengths like short reviews or news snippets: log-normal, 8 to 200 words.
    lengths = np.clip(rng.lognormal(mean=3.4, sigma=0.5, size=n), 8, 200).astype(np.int64)
    # Share of topic words per document: Beta-distributed, so some documents carry almost no
    # signal (the irreducible error behind the plateau) and some are easy.
    signal = rng.beta(3.0, 5.0, size=n)
    doc_of_token = np.repeat(np.arange(n), lengths)
    total = int(lengths.sum())
    from_topic = rng.random(total) < signal[doc_of_token]
    tokens = rng.choice(len(VOCAB), size=total, p=background)
    topic_matrix = np.stack(topics)  # (classes, TOPIC_WORDS)
    topic_rank = rng.choice(TOPIC_WORDS, size=total, p=topic_p)
    token_class = labels[doc_of_token]
    tokens[from_topic] = topic_matrix[token_class[from_topic], topic_rank[from_topic]]
    words = VOCAB[tokens]
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    return [" ".join(words[bounds[i]:bounds[i + 1]]) for i in range(n)]


def make_synthetic(num_classes: int = 4, size: int = 4000, imbalance: float = 1.0,
                   noise: float = 0.05, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate ``(train, test)`` DataFrames with a ``text`` (str) and ``label`` (int64) column.

    ``size`` train rows and ``size // 4`` test rows; class ``c`` is named ``class_c`` (see
    ``label_names``). ``imbalance`` is the ratio of the largest to the smallest class (classes in
    between are geometric), applied to both splits. ``noise`` is the fraction of labels replaced by
    a different class, in both splits (a real dataset's label noise is not confined to train).
    The same arguments always give the same data.
    """
    if num_classes < 2:
        raise ValueError("num_classes must be >= 2")
    rng = np.random.default_rng(seed)
    background = _zipf(VOCAB_SIZE)
    # Topic words come from the same Zipfian vocabulary (skipping the 20 most common "function
    # words"), so classes share some of them and a topic word is also a background word.
    candidates = np.arange(20, VOCAB_SIZE)
    cand_p = _zipf(len(candidates)) ** 0.5
    cand_p /= cand_p.sum()
    topics = [rng.choice(candidates, size=TOPIC_WORDS, replace=False, p=cand_p)
              for _ in range(num_classes)]
    topic_p = _zipf(TOPIC_WORDS, TOPIC_EXPONENT)

    frames = []
    for n in (size, size // TEST_FRACTION):
        labels = np.repeat(np.arange(num_classes), class_sizes(num_classes, n, imbalance))
        rng.shuffle(labels)
        texts = _documents(rng, labels, topics, background, topic_p)
        flip = rng.random(n) < noise
        # A flipped label moves to one of the *other* classes, uniformly.
        shift = rng.integers(1, num_classes, size=n)
        noisy = np.where(flip, (labels + shift) % num_classes, labels).astype(np.int64)
        frames.append(pd.DataFrame({"text": texts, "label": noisy}))
    return frames[0], frames[1]


def label_names(num_classes: int) -> list[str]:
    """The synthetic dataset's class names: ``class_0`` ... ``class_{C-1}``."""
    return [f"class_{c}" for c in range(num_classes)]
