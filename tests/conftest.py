"""Shared offline fixtures: a small seeded text corpus built in-process and the shared data dir."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# Tiny models: one thread each. Two spinning threads per process on a shared 2-core machine made
# a 12-round TF-IDF loop take 13 s instead of 0.2 s. Subprocesses (CLI tests) inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from hal.core.corpus import Corpus  # noqa: E402

torch.set_num_threads(1)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def make_toy_corpus(n_train: int = 600, n_test: int = 200, classes: int = 3, seed: int = 0,
                    multilabel: bool = False) -> Corpus:
    """Texts whose class shows in a few keywords among noise words: learnable, not trivial."""
    rng = np.random.default_rng(seed)
    noise = [f"w{i}" for i in range(300)]
    keys = [[f"c{c}k{j}" for j in range(8)] for c in range(classes)]
    n = n_train + n_test
    labels = rng.integers(0, classes, size=n)
    texts = []
    for y in labels:
        words = list(rng.choice(noise, size=rng.integers(8, 20)))
        # the true class's keywords, and sometimes another class's: overlap makes F1 < 1
        words += list(rng.choice(keys[y], size=2))
        if rng.random() < 0.4:
            words += list(rng.choice(keys[rng.integers(classes)], size=2))
        rng.shuffle(words)
        texts.append(" ".join(words))
    order = rng.permutation(n_train)
    val, pool = np.sort(order[: n_train // 5]), np.sort(order[n_train // 5:])
    test = np.arange(n_train, n)
    if multilabel:
        y = np.zeros((n, classes), dtype=np.float32)
        y[np.arange(n), labels] = 1
        y[:, 0] = np.maximum(y[:, 0], (rng.random(n) < 0.2).astype(np.float32))
        return Corpus("toy", texts, y, pool, val, test, [f"l{c}" for c in range(classes)], multilabel=True)
    return Corpus("toy", texts, labels.astype(np.int64), pool, val, test,
                  [f"c{c}" for c in range(classes)])


@pytest.fixture(scope="session")
def toy_corpus() -> Corpus:
    return make_toy_corpus()


@pytest.fixture(scope="session")
def prepared(toy_corpus):
    """The toy corpus with TF-IDF features, as ``hal.data.inputs.prepare`` would give them."""
    from hal.data.inputs import Prepared
    from hal.data.tfidf import tfidf_features

    return Prepared(toy_corpus, "tfidf", tfidf_features(toy_corpus, 5000))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA} (../shared/data beside the repo)")
    return SHARED_DATA


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray for the tests of one module that run Tuners in-process."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
