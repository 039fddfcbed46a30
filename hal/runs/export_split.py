"""``python -m hal export-split``: the split, initial set and stop set of a run, for another tool.

A peer library (or a colleague's script) that wants to run the very job HAL runs needs the
validation and test rows, the pool, the seeded round-0 labeled set and, when the run holds one,
the stop set that is never queried. ``split_indices`` (``hal.core.loop``) computes them the way the
loop does; this module writes them, with the labels as HAL encodes them, to one JSON file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hal.core.config import RunConfig
from hal.core.corpus import Corpus
from hal.core.files import atomic_write_text
from hal.core.loop import split_indices

ROWS = ("corpus rows: the train file's rows in file order (0 .. n_train - 1), then the test "
        "file's rows (n_train .. n_train + n_test - 1)")


def split_record(cfg: RunConfig, corpus: Corpus) -> dict[str, Any]:
    """What ``export-split`` writes for ``cfg`` (resolved) on ``corpus``: plain JSON types."""
    split = split_indices(cfg, corpus)
    n_train = len(corpus.texts) - len(corpus.test)
    labels = corpus.labels.astype(int).tolist()
    return {
        "dataset": corpus.name,
        "source": corpus.source,
        "synthetic": corpus.synthetic,
        "rows": ROWS,
        "n_train": n_train,
        "n_test": len(corpus.test),
        "num_classes": corpus.num_classes,
        "label_names": list(corpus.label_names),
        "multilabel": corpus.multilabel,
        "seed": cfg.seed,
        "data_seed": cfg.data_seed,
        "val_size": cfg.val_size,
        "initial_size": cfg.initial_size,
        "stop_set_size": len(split.stop_set),
        "pool": split.pool.tolist(),
        "val": split.val.tolist(),
        "test": split.test.tolist(),
        "initial": [int(i) for i in split.initial],
        "stop_set": split.stop_set.tolist(),
        "labels": labels,
    }


def write_split(cfg: RunConfig, corpus: Corpus, path: str | Path) -> dict[str, Any]:
    """Write ``split_record`` as JSON to ``path`` (atomically) and return it."""
    record = split_record(cfg, corpus)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record) + "\n")
    return record


def read_split(path: str | Path) -> dict[str, Any]:
    """A split written by ``write_split``, index lists as int64 arrays."""
    record = json.loads(Path(path).read_text())
    for key in ("pool", "val", "test", "initial", "stop_set"):
        record[key] = np.asarray(record[key], dtype=np.int64)
    return record
