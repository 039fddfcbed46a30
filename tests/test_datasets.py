"""Dataset loading: the named datasets from the shared copies, synthetic data, any folder of
splits, every bad input as a one-line HalError, and the offline hub fallback."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hal.core.config import RunConfig
from hal.core.errors import HalError
from hal.data import datasets
from hal.data.datasets import load_corpus
from hal.data.synthetic import class_sizes, make_synthetic

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not (SHARED / "imdb" / "train.parquet").is_file(),
                                  reason=f"shared dataset copies not found at {SHARED}")


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No test may reach the hub, and none may pick up a developer's own data folders."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HAL_DATA_DIR", raising=False)
    monkeypatch.setattr(datasets, "REPO_DATA_DIR", tmp_path / "repo_data")


def cfg(**kw) -> RunConfig:
    return RunConfig(**kw)


def write_splits(folder: Path, train: dict, test: dict, fmt: str = "parquet") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, data in (("train", train), ("test", test)):
        df = pd.DataFrame(data)
        if fmt == "parquet":
            df.to_parquet(folder / "train.parquet" if split == "train" else folder / "test.parquet")
        else:
            df.to_csv(folder / f"{split}.csv", index=False)
    return folder


def small(n: int = 12, labels=(0, 1)) -> dict:
    return {"text": [f"document number {i}" for i in range(n)],
            "label": [labels[i % len(labels)] for i in range(n)]}


def check_splits(c, n_train: int, n_test: int) -> None:
    assert len(c.texts) == len(c.labels) == n_train + n_test
    assert np.intersect1d(c.pool, c.val).size == 0
    assert np.array_equal(np.union1d(c.pool, c.val), np.arange(n_train))
    assert np.array_equal(c.test, np.arange(n_train, n_train + n_test))


# --------------------------------------------------------------------------- named datasets


@needs_shared
def test_ag_news_shared_copy():
    c = load_corpus(cfg(dataset="ag_news", data_dir=str(SHARED)))
    check_splits(c, 6000, 1600)
    assert c.name == "ag_news" and not c.synthetic and not c.multilabel
    assert c.label_names == ["World", "Sports", "Business", "Sci/Tech"] and c.num_classes == 4
    assert c.labels.dtype == np.int64 and set(np.unique(c.labels)) == {0, 1, 2, 3}
    assert len(c.val) == 600
    assert np.bincount(c.labels[c.val]).tolist() == [150] * 4  # stratified: balanced like train
    assert str((SHARED / "ag_news").resolve()) in c.source


@needs_shared
def test_loading_is_deterministic_and_cached():
    first = load_corpus(cfg(dataset="ag_news", data_dir=str(SHARED)))
    assert load_corpus(cfg(dataset="ag_news", data_dir=str(SHARED))) is first
    datasets._cached_files.cache_clear()
    again = load_corpus(cfg(dataset="ag_news", data_dir=str(SHARED)))
    assert again is not first
    assert np.array_equal(again.val, first.val) and again.fingerprint == first.fingerprint
    other = load_corpus(cfg(dataset="ag_news", data_dir=str(SHARED), data_seed=1))
    assert not np.array_equal(other.val, first.val)
    counted = load_corpus(cfg(dataset="ag_news", data_dir=str(SHARED), val_size=200))
    assert len(counted.val) == 200


@needs_shared
def test_imdb_shared_copy():
    c = load_corpus(cfg(dataset="imdb", data_dir=str(SHARED)))
    check_splits(c, 25000, 25000)
    assert c.label_names == ["negative", "positive"]
    assert np.bincount(c.labels[c.test]).tolist() == [12500, 12500]
    assert np.bincount(c.labels[c.val]).tolist() == [1250, 1250]


@needs_shared
def test_banking77_shared_copy_with_its_intent_names():
    c = load_corpus(cfg(dataset="banking77", data_dir=str(SHARED)))
    check_splits(c, 10003, 3080)
    assert c.num_classes == 77 and not c.multilabel
    assert c.label_names[:3] == ["card_arrival", "card_linking", "exchange_rate"]
    # the names are the files' own `label_name` column, label by label
    for split, idx in (("train", np.arange(10003)), ("test", c.test)):
        names = pd.read_parquet(SHARED / "banking77" / f"{split}.parquet", columns=["label_name"]).label_name
        assert [c.label_names[y] for y in c.labels[idx]] == names.tolist()
    assert np.bincount(c.labels[c.test]).tolist() == [40] * 77


def test_banking77_is_a_named_dataset(tmp_path):
    from hal.core.config import NAMED_DATASETS

    assert "banking77" in NAMED_DATASETS and datasets.NAMED["banking77"].label_names == datasets.BANKING77_LABELS
    folder = tmp_path / "banking77"
    folder.mkdir()
    rows = [(f"query {i} about {datasets.BANKING77_LABELS[i % 77]}", i % 77) for i in range(77 * 4)]
    frame = pd.DataFrame(rows, columns=["text", "label"])
    frame.to_parquet(folder / "train.parquet")
    frame.iloc[:77].to_parquet(folder / "test.parquet")
    c = load_corpus(cfg(dataset="banking77", data_dir=str(tmp_path), val_size=77))
    assert c.label_names == list(datasets.BANKING77_LABELS) and c.name == "banking77"


@needs_shared
def test_jigsaw_binary_and_multilabel(monkeypatch):
    monkeypatch.setenv("HAL_DATA_DIR", str(SHARED))  # the environment variable works too
    c = load_corpus(cfg(dataset="jigsaw"))
    check_splits(c, 12266, 1363)
    assert c.label_names == ["non-toxic", "toxic"]
    assert np.bincount(c.labels[:12266]).tolist() == [8475, 3791]
    rate = c.labels[c.val].mean()
    assert abs(rate - 3791 / 12266) < 0.005  # stratified
    m = load_corpus(cfg(dataset="jigsaw", multilabel=True))
    check_splits(m, 12266, 1363)
    assert m.multilabel and m.labels.shape == (13629, 6) and m.labels.dtype == np.float32
    assert m.label_names == list(datasets.JIGSAW_LABELS)
    assert set(np.unique(m.labels)) == {0.0, 1.0}
    assert np.array_equal(m.labels.max(axis=1).astype(np.int64), c.labels)  # any label == label
    assert m.labels[:12266, 0].sum() == 3609  # toxic, per the shared README


def test_source_order(tmp_path, monkeypatch):
    for where in ("explicit", "env", "repo_data"):
        write_splits(tmp_path / where / "imdb", small(), small(4))
    monkeypatch.setenv("HAL_DATA_DIR", str(tmp_path / "env"))
    assert load_corpus(cfg(dataset="imdb", data_dir=str(tmp_path / "explicit"),
                           val_size=0.25)).source.endswith("explicit/imdb")
    assert load_corpus(cfg(dataset="imdb", val_size=0.25)).source.endswith("env/imdb")
    monkeypatch.delenv("HAL_DATA_DIR")
    assert load_corpus(cfg(dataset="imdb", val_size=0.25)).source.endswith("repo_data/imdb")


def test_csv_accepted_for_named_dataset(tmp_path):
    write_splits(tmp_path / "ag_news", small(16, (0, 1, 2, 3)), small(8, (3, 2, 1, 0)), "csv")
    c = load_corpus(cfg(dataset="ag_news", data_dir=str(tmp_path), val_size=4))
    check_splits(c, 16, 8)
    assert c.labels[16:].tolist() == [3, 2, 1, 0] * 2


# --------------------------------------------------------------------------- hub fallback


def test_offline_hub_fallback_names_the_fix(tmp_path):
    with pytest.raises(HalError) as err:
        load_corpus(cfg(dataset="imdb", data_dir=str(tmp_path)))
    message = str(err.value)
    assert "not found locally" in message and "--data-dir" in message
    assert "HF_HUB_OFFLINE" in message and str(tmp_path / "imdb") in message
    assert "\n" not in message


def test_jigsaw_has_no_hub_copy(tmp_path):
    with pytest.raises(HalError, match="no freely downloadable copy.*prepare.py jigsaw"):
        load_corpus(cfg(dataset="jigsaw", data_dir=str(tmp_path)))


def test_unreachable_hub_fails_fast(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: refused at once
    with pytest.raises(HalError, match="hub is unreachable.*--data-dir"):
        load_corpus(cfg(dataset="ag_news", data_dir=str(tmp_path)))


def test_hub_path_with_a_stand_in_for_datasets(tmp_path, monkeypatch):
    """The hub branch, without a network: ``datasets.load_dataset`` replaced by a stub."""
    class Split:
        def __init__(self, n):
            self.frame = pd.DataFrame(small(n))

        def to_pandas(self):
            return self.frame

    fake = types.ModuleType("datasets")
    fake.load_dataset = lambda repo: {"train": Split(20), "test": Split(6), "unsupervised": None}
    monkeypatch.setitem(sys.modules, "datasets", fake)
    monkeypatch.setattr(datasets, "hub_unavailable", lambda name: None)
    c = load_corpus(cfg(dataset="imdb", data_dir=str(tmp_path), val_size=4))
    check_splits(c, 20, 6)
    assert c.source == "Hugging Face hub stanfordnlp/imdb"

    def broken(repo):
        raise ConnectionError("no route")

    fake.load_dataset = broken
    with pytest.raises(HalError, match=r"fancyzhx/ag_news\) failed \(ConnectionError\).*--data-dir"):
        load_corpus(cfg(dataset="ag_news", data_dir=str(tmp_path)))


# --------------------------------------------------------------------------- synthetic


def test_synthetic_deterministic_and_seeded():
    a_train, a_test = make_synthetic(4, 400, 1.0, 0.05, seed=3)
    b_train, b_test = make_synthetic(4, 400, 1.0, 0.05, seed=3)
    pd.testing.assert_frame_equal(a_train, b_train)
    pd.testing.assert_frame_equal(a_test, b_test)
    c_train, _ = make_synthetic(4, 400, 1.0, 0.05, seed=4)
    assert a_train["text"].tolist() != c_train["text"].tolist()
    assert len(a_train) == 400 and len(a_test) == 100
    assert all(isinstance(t, str) and t.strip() for t in a_train["text"])


def test_synthetic_imbalance_and_noise():
    train, _ = make_synthetic(3, 1400, imbalance=4.0, noise=0.0, seed=0)
    counts = np.bincount(train["label"])
    assert counts.sum() == 1400 and counts[0] / counts[-1] == pytest.approx(4.0, rel=0.02)
    assert counts.tolist() == class_sizes(3, 1400, 4.0).tolist()
    noisy, _ = make_synthetic(3, 1400, imbalance=4.0, noise=0.2, seed=0)
    flipped = (noisy["label"] != train["label"]).mean()
    assert 0.15 < flipped < 0.25


def test_synthetic_corpus():
    c = load_corpus(cfg(dataset="synthetic", synthetic_classes=5, synthetic_size=1000))
    check_splits(c, 1000, 250)
    assert c.name == "synthetic" and c.synthetic
    assert c.label_names == [f"class_{i}" for i in range(5)]
    assert len(c.val) == 100
    assert load_corpus(cfg(dataset="synthetic", synthetic_classes=5, synthetic_size=1000)) is c


# --------------------------------------------------------------------------- any folder


def test_generic_parquet_with_string_labels(tmp_path):
    folder = write_splits(tmp_path / "reviews", {"text": [f"t {i}" for i in range(12)],
                                                 "label": ["pos", "neg", "meh"] * 4},
                          {"text": ["x", "y", "z"], "label": ["neg", "pos", "neg"]})
    c = load_corpus(cfg(dataset=str(folder), val_size=3))
    check_splits(c, 12, 3)
    assert c.name == "reviews" and c.label_names == ["meh", "neg", "pos"]
    assert c.labels[:3].tolist() == [2, 1, 0] and c.labels[12:].tolist() == [1, 2, 1]
    assert np.bincount(c.labels[c.val]).tolist() == [1, 1, 1]


def test_generic_csv_with_int_labels_and_own_columns(tmp_path):
    folder = write_splits(tmp_path / "mine", {"body": [f"doc {i}" for i in range(10)],
                                              "y": [7, 3] * 5},
                          {"body": ["a", "b"], "y": [3, 7]}, fmt="csv")
    c = load_corpus(cfg(dataset=str(folder), text_column="body", label_column="y", val_size=0.2))
    check_splits(c, 10, 2)
    assert c.label_names == ["3", "7"] and c.labels[10:].tolist() == [0, 1]
    assert c.texts[0] == "doc 0"


def test_csv_text_reading_na_is_kept(tmp_path):
    folder = write_splits(tmp_path / "d", {"text": ["NA", "null"] * 5, "label": [0, 1] * 5},
                          {"text": ["None"], "label": [1]}, fmt="csv")
    c = load_corpus(cfg(dataset=str(folder), val_size=2))
    assert c.texts[:2] == ["NA", "null"] and c.texts[-1] == "None"


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("train, test, phrase", [
    ({"text": ["a", " ", None, "d"] * 3, "label": [0, 1] * 6}, small(2),
     r"6 row\(s\) have an empty, whitespace-only or missing text in column 'text' \(first at row 1"),
    ({"text": ["a"] * 8, "label": [0, 1, None, 1] * 2}, small(2),
     r"2 row\(s\) have no label in column 'label' \(first at row 2"),
    (small(), {"text": ["a", "b"], "label": [0, 2]}, r"label not seen in train \(2; first at row 1"),
    (small(labels=(1,)), small(2, labels=(1,)), r"only one class \('1'\) occurs.*at least 2 classes"),
    ({"text": [1, 2, 3, 4], "label": [0, 1, 0, 1]}, small(2), "holds numbers, not text"),
    (small(), {"text": ["a"], "lab": [0]}, r"has no column 'label' \(columns: text, lab\)"),
])
def test_bad_generic_input(tmp_path, train, test, phrase):
    folder = write_splits(tmp_path / "bad", train, test)
    with pytest.raises(HalError, match=phrase):
        load_corpus(cfg(dataset=str(folder), val_size=2))


@pytest.mark.parametrize("train, phrase", [
    (small(labels=(0, 1, 5)), r"holds 5 at row 2 \(4 row\(s\) out of range\), expected 0..1 "
                              r"\(negative, positive\)"),
    (small(labels=("neg", "pos")), "must hold integers 0..1"),
    (small(labels=(0,)), r"only one class \('negative'\) occurs"),
])
def test_bad_named_labels(tmp_path, train, phrase):
    write_splits(tmp_path / "imdb", train, small(4))
    with pytest.raises(HalError, match=phrase):
        load_corpus(cfg(dataset="imdb", data_dir=str(tmp_path), val_size=0.25))


def test_bad_multilabel_columns(tmp_path):
    data = {"text": [f"c {i}" for i in range(8)], "toxic": [0, 1] * 4, "label": [0, 1] * 4}
    write_splits(tmp_path / "jigsaw", data, data)
    with pytest.raises(HalError, match="has no column 'severe_toxic'.*columns: text, toxic, label"):
        load_corpus(cfg(dataset="jigsaw", data_dir=str(tmp_path), multilabel=True))


def test_missing_files_and_unknown_names(tmp_path):
    (tmp_path / "imdb").mkdir()
    pd.DataFrame(small()).to_parquet(tmp_path / "imdb" / "train.parquet")
    with pytest.raises(HalError, match="needs train and test files.*found train.parquet"):
        load_corpus(cfg(dataset="imdb", data_dir=str(tmp_path)))
    with pytest.raises(HalError, match="needs train and test files"):
        load_corpus(cfg(dataset=str(tmp_path / "imdb")))
    with pytest.raises(HalError, match="unknown dataset 'agnews': choose one of synthetic, ag_news"):
        load_corpus(cfg(dataset="agnews"))
    with pytest.raises(HalError, match="is a file"):
        load_corpus(cfg(dataset=str(tmp_path / "imdb" / "train.parquet")))
    with pytest.raises(HalError, match="--data-dir .*nowhere' does not exist"):
        load_corpus(cfg(dataset="imdb", data_dir=str(tmp_path / "nowhere")))
    with pytest.raises(HalError, match="--data-dir .* is a file, not a folder"):
        load_corpus(cfg(dataset="imdb", data_dir=str(tmp_path / "imdb" / "train.parquet")))
    with pytest.raises(HalError, match="dataset .* is under .*train.parquet', which is a file"):
        load_corpus(cfg(dataset=str(tmp_path / "imdb" / "train.parquet" / "x")))
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "train.parquet").write_text("not parquet")
    (tmp_path / "junk" / "test.csv").write_text("text,label\na,0\n")
    with pytest.raises(HalError, match="cannot read .*train.parquet"):
        load_corpus(cfg(dataset=str(tmp_path / "junk")))


def test_multilabel_only_for_jigsaw():
    with pytest.raises(HalError, match="multilabel is only available for --dataset jigsaw"):
        load_corpus(cfg(dataset="synthetic", multilabel=True))


def test_validation_split_too_large(tmp_path):
    folder = write_splits(tmp_path / "tiny", small(6), small(2))
    with pytest.raises(HalError, match="cannot carve a stratified validation split of 6"):
        load_corpus(cfg(dataset=str(folder), val_size=6))


# --------------------------------------------------------------------------- data/prepare.py


def _prepare_module():
    path = Path(__file__).resolve().parents[1] / "data" / "prepare.py"
    spec = importlib.util.spec_from_file_location("hal_prepare", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prepare_ag_news_from_csv(tmp_path, capsys):
    prepare = _prepare_module()
    src = tmp_path / "src"
    src.mkdir()
    rows = [(c, f"Title {i}", f" about {i}") for i in range(5) for c in (1, 2, 3, 4)]
    for split in ("train", "test"):
        pd.DataFrame(rows).to_csv(src / f"{split}.csv", header=False, index=False)
    assert prepare.main(["ag_news", "--from-csv", str(src), "--out", str(tmp_path / "out")]) == 0
    c = load_corpus(cfg(dataset="ag_news", data_dir=str(tmp_path / "out"), val_size=4))
    assert c.texts[0] == "Title 0.  about 0" and c.labels[:4].tolist() == [0, 1, 2, 3]
    assert prepare.main(["ag_news", "--from-csv", str(tmp_path / "nowhere")]) == 2
    assert prepare.main(["jigsaw", "--out", str(tmp_path / "out")]) == 2
    assert "no freely downloadable copy" in capsys.readouterr().err


def test_prepare_banking77_from_the_authors_csv_numbers_intents_as_the_hub_does(tmp_path, capsys):
    prepare = _prepare_module()
    src = tmp_path / "src"
    src.mkdir()
    names = list(datasets.BANKING77_LABELS)
    for split in ("train", "test"):
        pd.DataFrame({"text": [f"query {i} about {n}" for i, n in enumerate(names * 2)],
                      "category": names * 2}).to_csv(src / f"{split}.csv", index=False)
    assert prepare.main(["banking77", "--from-csv", str(src), "--out", str(tmp_path / "out")]) == 0
    train = pd.read_parquet(tmp_path / "out" / "banking77" / "train.parquet")
    assert train["label"].tolist()[:77] == list(range(77))
    c = load_corpus(cfg(dataset="banking77", data_dir=str(tmp_path / "out"), val_size=77))
    assert c.num_classes == 77 and c.label_names[3] == names[3]
    pd.DataFrame({"text": ["x"], "category": ["no_such_intent"]}).to_csv(src / "train.csv", index=False)
    assert prepare.main(["banking77", "--from-csv", str(src), "--out", str(tmp_path / "out")]) == 2
    assert "'no_such_intent' is not one of BANKING77's 77 intents" in capsys.readouterr().err
