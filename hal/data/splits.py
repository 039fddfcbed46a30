"""From train/test tables to a ``Corpus``: texts and labels checked (one line per problem, nothing
dropped silently), labels encoded, and the validation split carved from train (seeded, stratified)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from hal.core.corpus import Corpus
from hal.core.errors import HalError, shown

# How tools write a missing value (pandas/numpy, Python, R, JSON, SQL): in a label column these are
# holes in the data, not classes. The CSV reader keeps them as text (a *text* reading "NA" is a
# text), so labels are checked here.
MISSING_SPELLINGS = frozenset({"nan", "-nan", "none", "null", "na", "n/a", "<na>", "nat"})


def build_corpus(name: str, train: pd.DataFrame, test: pd.DataFrame, text_column: str,
                 label_column: str, val_size: float | int, seed: int, source: str,
                 where: tuple[str, str], label_names: list[str] | None = None,
                 multilabel_columns: tuple[str, ...] | None = None) -> Corpus:
    """Validate two split tables and assemble the ``Corpus``. ``label_names``: the classes of a
    named dataset (labels must be 0..C-1); ``multilabel_columns``: one 0/1 column per label."""
    texts = [_texts(df[text_column], text_column, w) for df, w in zip((train, test), where)]
    multilabel = multilabel_columns is not None
    if multilabel:
        y_train, y_test = (_multilabel(df, multilabel_columns, w) for df, w in zip((train, test), where))
        names = list(multilabel_columns)
        strata = (y_train.max(axis=1) > 0).astype(np.int64)  # stratify on "any label"
    elif label_names is not None:
        names = list(label_names)
        y_train, y_test = (_named_labels(df[label_column], label_column, names, w)
                           for df, w in zip((train, test), where))
        strata = y_train
    else:
        y_train, y_test, names = _encode_labels(train[label_column], test[label_column],
                                                label_column, where)
        strata = y_train
    return assemble(name, texts[0], texts[1], y_train, y_test, names, strata, val_size, seed,
                     where[0], multilabel=multilabel, synthetic=False, source=source)


def _texts(column: pd.Series, name: str, where: str) -> list[str]:
    """The column as a list of str; empty, whitespace-only or missing texts are an error."""
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        raise HalError(f"{where}: text column {shown(name)} holds numbers, not text: "
                       "pass --text-column with the column that holds the documents")
    as_str = column.astype(str)
    bad = column.isna().to_numpy() | (as_str.str.strip() == "").to_numpy()
    if bad.any():
        rows = np.flatnonzero(bad)
        raise HalError(f"{where}: {len(rows)} row(s) have an empty, whitespace-only or missing "
                       f"text in column {shown(name)} (first at row {rows[0]}, counting from 0): "
                       "remove or fill those rows")
    return as_str.tolist()


def _label_values(column: pd.Series, name: str, where: str) -> np.ndarray:
    """The labels of ``column``: int64 when they are whole numbers (1 and 1.0 alike), else an
    object array of ``str``. A missing label (empty, NaN, None, or a string such as "NaN" that
    spells a missing value) and a number that is not whole (1.5, inf) are one-line errors naming
    the column and the first such row."""
    missing = column.isna().to_numpy()
    if missing.any():
        rows = np.flatnonzero(missing)
        raise HalError(f"{where}: {len(rows)} row(s) have no label in column {shown(name)} (first at "
                       f"row {rows[0]}, counting from 0): remove or label those rows")
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_integer_dtype(column):
        return column.to_numpy(np.int64)
    if pd.api.types.is_float_dtype(column):
        values = column.to_numpy(np.float64)
        _refuse_fractions(values, np.arange(len(values)), name, where)
        return values.astype(np.int64)
    values = column.to_numpy(dtype=object)
    floats = np.flatnonzero([isinstance(v, (float, np.floating)) for v in values])
    _refuse_fractions(values[floats].astype(np.float64), floats, name, where)
    text = np.array([str(_plain(v)) for v in values], dtype=object)
    spelled = np.flatnonzero([t.strip().lower() in MISSING_SPELLINGS or not t.strip() for t in text])
    if len(spelled):
        row = spelled[0]
        raise HalError(f"{where}: {len(spelled)} row(s) of label column {shown(name)} hold no label "
                       f"(row {row}, counting from 0, reads {shown(text[row])}, which is how a "
                       "missing value is written, not a class): label or remove those rows (if it "
                       "is a real class, give it another name)")
    return text


def _refuse_fractions(values: np.ndarray, rows: np.ndarray, name: str, where: str) -> None:
    """A label that is a number must be a whole number: 1.0 is class 1, 1.5 is a mistake."""
    bad = np.flatnonzero(~np.isfinite(values) | (values != np.floor(values)))
    if len(bad):
        raise HalError(f"{where}: label column {shown(name)} holds {values[bad[0]]:g} at row "
                       f"{rows[bad[0]]} (counting from 0; {len(bad)} row(s) like it), which is not a "
                       "whole number: labels are class names or integer class ids; fix those rows, "
                       "or write fractional classes as text (e.g. c1.5)")


def _plain(value: object) -> object:
    """A numpy scalar as the Python value it holds (its ``str`` is the label's name)."""
    return value.item() if isinstance(value, np.generic) else value


def _named_labels(column: pd.Series, name: str, label_names: list[str], where: str) -> np.ndarray:
    """Integer labels ``0..C-1`` of a named dataset."""
    values = _label_values(column, name, where)
    allowed = f"0..{len(label_names) - 1} ({', '.join(label_names)})"
    if values.dtype == object:  # text: only digits ("3") can be a class id
        row = next((i for i, v in enumerate(values) if not v.strip().lstrip("-").isdigit()), None)
        if row is not None:
            raise HalError(f"{where}: label column {shown(name)} must hold integers {allowed}, got "
                           f"{shown(values[row])} at row {row} (counting from 0): re-run python "
                           "data/prepare.py")
        values = np.array([int(v) for v in values], dtype=np.int64)
    bad = np.flatnonzero((values < 0) | (values >= len(label_names)))
    if len(bad):
        raise HalError(f"{where}: label column {shown(name)} holds {values[bad[0]]} at row {bad[0]} "
                       f"({len(bad)} row(s) out of range), expected {allowed}")
    return values


def _multilabel(df: pd.DataFrame, columns: tuple[str, ...], where: str) -> np.ndarray:
    """The label columns as an ``(n, L)`` float32 0/1 matrix."""
    matrix = []
    for name in columns:
        values = _label_values(df[name], name, where)
        bad = np.flatnonzero(np.ones(len(values), bool) if values.dtype == object  # text
                             else ~np.isin(values, (0, 1)))
        if len(bad):
            raise HalError(f"{where}: label column {shown(name)} must hold only 0 and 1, got "
                           f"{shown(_plain(values[bad[0]]))} at row {bad[0]} (counting from 0)")
        matrix.append(values)
    return np.stack(matrix, axis=1).astype(np.float32)


def _encode_labels(train: pd.Series, test: pd.Series, name: str,
                   where: tuple[str, str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Map the sorted unique train labels (ints or strings) to ``0..C-1``."""
    y_train, y_test = _label_values(train, name, where[0]), _label_values(test, name, where[1])
    # E.g. "1" in one file and 1 in the other: compare both as strings.
    if (y_train.dtype == object) != (y_test.dtype == object):
        y_train, y_test = y_train.astype(str).astype(object), y_test.astype(str).astype(object)
    classes = np.unique(y_train)
    codes = pd.Categorical(y_test, categories=classes).codes.astype(np.int64)
    unseen = np.flatnonzero(codes < 0)
    if len(unseen):
        examples = ", ".join(shown(_label_name(v))[1:-1] for v in pd.unique(y_test[unseen])[:5])
        raise HalError(f"{where[1]}: {len(unseen)} row(s) have a label not seen in train "
                       f"({examples}; first at row {unseen[0]}, counting from 0): every test label "
                       "must also occur in train")
    names = [_label_name(c) for c in classes]
    return np.searchsorted(classes, y_train).astype(np.int64), codes, names


def _label_name(value: object) -> str:
    return str(_plain(value))


def val_size_arg(value: float) -> float | int:
    """``RunConfig.val_size`` as sklearn wants it: a fraction, or a whole count when >= 1."""
    return int(value) if value >= 1 else float(value)


def assemble(name: str, train_texts: list[str], test_texts: list[str], y_train: np.ndarray,
              y_test: np.ndarray, names: list[str], strata: np.ndarray, val_size: float | int,
              seed: int, where: str, *, multilabel: bool, synthetic: bool, source: str) -> Corpus:
    """Carve the validation split and put train (pool + val) and test into one ``Corpus``."""
    n_train = len(train_texts)
    if n_train == 0 or len(test_texts) == 0:
        raise HalError(f"{name}: the {'train' if n_train == 0 else 'test'} split has no rows")
    present = np.unique(strata)
    if len(present) < 2:
        if multilabel:  # strata is "any label set" here
            detail = "every row has a label set" if present[0] else "no row has any label set"
        else:
            detail = f"only one class ({shown(names[int(present[0])])}) occurs"
        raise HalError(f"{where}: {detail}; a classifier needs at least 2 classes in train")
    try:
        pool, val = train_test_split(np.arange(n_train), test_size=val_size, stratify=strata,
                                     random_state=seed)
    except ValueError as exc:
        raise HalError(f"cannot carve a stratified validation split of {val_size} from the "
                       f"{n_train} train rows of {name}: {first_line(exc)}; pass another "
                       "--val-size or use more data") from None
    labels = np.concatenate([y_train, y_test])
    return Corpus(
        name=name,
        texts=list(train_texts) + list(test_texts),
        labels=labels,
        pool=np.sort(pool).astype(np.int64),
        val=np.sort(val).astype(np.int64),
        test=np.arange(n_train, n_train + len(test_texts), dtype=np.int64),
        label_names=list(names),
        multilabel=multilabel,
        synthetic=synthetic,
        source=source,
    )


def first_line(exc: Exception) -> str:
    """The first line of an exception's message (or its type name): for one-line errors."""
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= 200 else line[:197] + "..."  # messages may quote the data
