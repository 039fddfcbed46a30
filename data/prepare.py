"""Write a named dataset as Parquet splits HAL loads: ``<out>/<name>/{train,test}.parquet``.

    python data/prepare.py ag_news                       # from the Hugging Face hub
    python data/prepare.py imdb --from-csv ~/aclImdb     # from the original files
    python data/prepare.py jigsaw --from-csv ~/jigsaw    # Kaggle's train.csv (+ test files)
    python data/prepare.py banking77                     # from the hub, or --from-csv the authors' CSVs

Every split gets a ``text`` column (str) and an integer ``label`` column (0-based); Jigsaw also
keeps its six label columns. See data/README.md for the original files each source expects.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

try:
    import hal  # noqa: F401
except ImportError:  # run as a plain script from a checkout that is not pip-installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hal.core.errors import EXIT_USAGE, HalError  # noqa: E402
from hal.data.datasets import BANKING77_LABELS, hub_unavailable  # noqa: E402

HUB_REPOS = {"ag_news": "fancyzhx/ag_news", "imdb": "stanfordnlp/imdb", "banking77": "PolyAI/banking77"}
JIGSAW_LABELS = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
JIGSAW_TEST_FRACTION = 0.1  # only used when Kaggle's labelled test files are not given
SPLIT_SEED = 0


def from_hub(name: str) -> dict[str, pd.DataFrame]:
    """``{"train": df, "test": df}`` with ``text`` and ``label`` from the Hugging Face hub."""
    if name not in HUB_REPOS:
        raise HalError(f"{name} has no freely downloadable copy on the Hugging Face hub: download "
                       "train.csv from Kaggle's Jigsaw Toxic Comment Classification Challenge and "
                       "pass --from-csv DIR")
    reason = hub_unavailable(name)
    if reason is not None:  # fail fast: load_dataset retries an unreachable hub for ~25 s
        raise HalError(f"cannot download {name}: {reason}; download the original files and pass "
                       "--from-csv DIR (see data/README.md)")
    import datasets  # heavy; only this path needs it

    try:
        hub = datasets.load_dataset(HUB_REPOS[name])
    except Exception as exc:  # offline, renamed, ...: the fix is the same
        raise HalError(f"cannot load {HUB_REPOS[name]} from the Hugging Face hub "
                       f"({type(exc).__name__}): download the original files and pass "
                       "--from-csv DIR") from None
    return {split: hub[split].to_pandas()[["text", "label"]] for split in ("train", "test")}


def ag_news_from_csv(folder: Path) -> dict[str, pd.DataFrame]:
    """The original headerless ``train.csv``/``test.csv``: class index 1-4, title, description."""
    out = {}
    for split in ("train", "test"):
        path = _need_file(folder / f"{split}.csv")
        try:
            raw = pd.read_csv(path, header=None, keep_default_na=False, dtype=str)
        except Exception as exc:
            raise HalError(f"cannot read {path}: {_first_line(exc)}") from None
        if raw.shape[1] != 3:
            raise HalError(f"{path} has {raw.shape[1]} columns, expected 3 (class index, title, "
                           "description, no header): is this the AG News CSV?")
        raw.columns = ["class", "title", "description"]
        classes = pd.to_numeric(raw["class"], errors="coerce")
        if not classes.isin([1, 2, 3, 4]).all():
            row = int((~classes.isin([1, 2, 3, 4])).to_numpy().argmax())
            raise HalError(f"{path}: the first column must be the class index 1-4, row {row} holds "
                           f"{raw['class'].iloc[row]!r}: is this the AG News CSV (no header)?")
        out[split] = pd.DataFrame({
            # Plain concatenation, as in the shared copies: the original spacing is kept.
            "text": raw["title"] + ". " + raw["description"],
            "label": classes.astype("int64") - 1,
            "title": raw["title"],
            "description": raw["description"],
        })
    return out


def banking77_from_csv(folder: Path) -> dict[str, pd.DataFrame]:
    """The authors' ``train.csv``/``test.csv`` (PolyAI-LDN/task-specific-datasets,
    ``banking_data/``): columns ``text`` and ``category`` (the intent's name), numbered as the hub
    copy numbers them (``hal.data.datasets.BANKING77_LABELS``)."""
    index = {name: i for i, name in enumerate(BANKING77_LABELS)}
    out = {}
    for split in ("train", "test"):
        path = _need_file(folder / f"{split}.csv")
        raw = _read(path, ["text", "category"])
        unknown = sorted(set(raw["category"]) - set(index))
        if unknown:
            raise HalError(f"{path}: category {unknown[0]!r} is not one of BANKING77's 77 intents: is this "
                           "the BANKING77 CSV (columns text, category)?")
        out[split] = pd.DataFrame({"text": raw["text"], "label": raw["category"].map(index).astype("int64")})
    return out


def imdb_from_folder(folder: Path) -> dict[str, pd.DataFrame]:
    """The ``aclImdb`` folder (or its parent): ``{train,test}/{neg,pos}/<id>_<rating>.txt``."""
    if (folder / "aclImdb").is_dir():
        folder = folder / "aclImdb"
    out = {}
    for split in ("train", "test"):
        rows = []
        for label, sentiment in enumerate(("neg", "pos")):
            sub = folder / split / sentiment
            if not sub.is_dir():
                raise HalError(f"{sub} does not exist: pass --from-csv the aclImdb folder "
                               "(holding train/pos, train/neg, test/pos, test/neg)")
            for path in sub.glob("*.txt"):
                try:
                    file_id, rating = (int(part) for part in path.stem.split("_"))
                except ValueError:
                    raise HalError(f"{path}: expected a file named <id>_<rating>.txt") from None
                rows.append((path.read_text(encoding="utf-8"), label, rating, file_id))
        if not rows:
            raise HalError(f"{folder / split} holds no .txt reviews")
        df = pd.DataFrame(rows, columns=["text", "label", "rating", "id"])
        out[split] = df.sort_values(["label", "id"], ignore_index=True)
    return out


def jigsaw_from_csv(folder: Path) -> dict[str, pd.DataFrame]:
    """Kaggle's ``train.csv``; the labelled ``test.csv`` + ``test_labels.csv`` become the test split
    when present (rows marked -1 were never labelled and are dropped), else a seeded stratified
    90/10 split of train.csv is used."""
    train = _jigsaw_table(_need_file(folder / "train.csv"))
    if (folder / "test.csv").is_file() and (folder / "test_labels.csv").is_file():
        comments = _read(folder / "test.csv", ["id", "comment_text"])
        labels = _read(folder / "test_labels.csv", ["id", *JIGSAW_LABELS])
        merged = comments.merge(labels, on="id", how="inner")
        merged = merged[(merged[JIGSAW_LABELS] != -1).all(axis=1)]
        test = _jigsaw_table(merged)
    else:
        from sklearn.model_selection import train_test_split

        train, test = train_test_split(train, test_size=JIGSAW_TEST_FRACTION,
                                       stratify=train["label"], random_state=SPLIT_SEED)
    return {"train": train.sort_values("id", ignore_index=True),
            "test": test.sort_values("id", ignore_index=True)}


def _jigsaw_table(source: Path | pd.DataFrame) -> pd.DataFrame:
    raw = _read(source, ["id", "comment_text", *JIGSAW_LABELS]) if isinstance(source, Path) else source
    # comment_text is not cast: a missing one must stay missing, for write() to report it.
    df = pd.DataFrame({"id": raw["id"].astype(str), "text": raw["comment_text"]})
    for name in JIGSAW_LABELS:
        values = pd.to_numeric(raw[name], errors="coerce")
        if not values.isin([0, 1]).all():
            raise HalError(f"Jigsaw label column {name!r} must hold only 0 and 1")
        df[name] = values.astype("int64")
    df["label"] = df[JIGSAW_LABELS].max(axis=1)  # "any toxic label"
    return df


def _read(path: Path, columns: list[str]) -> pd.DataFrame:
    try:
        # Only empty fields are missing: a comment reading "NA" is text.
        df = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except Exception as exc:
        raise HalError(f"cannot read {path}: {_first_line(exc)}") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise HalError(f"{path} has no column {', '.join(map(repr, missing))} "
                       f"(columns: {', '.join(map(str, df.columns))})")
    return df


def _need_file(path: Path) -> Path:
    if not path.is_file():
        raise HalError(f"{path} does not exist: pass --from-csv the folder holding the original "
                       "files (see data/README.md)")
    return path


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def write(name: str, splits: dict[str, pd.DataFrame], out: Path) -> list[Path]:
    """Write ``out/<name>/{train,test}.parquet`` after checking texts and labels."""
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for split, df in splits.items():
        empty = df["text"].isna() | (df["text"].astype(str).str.strip() == "")
        if empty.any():
            raise HalError(f"{name} {split}: {int(empty.sum())} row(s) have an empty text (first "
                           f"at row {int(empty.to_numpy().argmax())}): check the source files")
        path = folder / f"{split}.parquet"
        df.to_parquet(path, index=False, compression="zstd")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code (2 on bad input)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=["ag_news", "imdb", "jigsaw", "banking77"])
    parser.add_argument("--from-csv", metavar="DIR", type=Path,
                        help="folder with the original files (for imdb: the aclImdb folder)")
    parser.add_argument("--out", metavar="DIR", type=Path, default=Path(__file__).resolve().parent,
                        help="where <name>/ is written (default: this data/ folder)")
    args = parser.parse_args(argv)
    try:
        if args.from_csv is None:
            splits = from_hub(args.name)
        else:
            folder = args.from_csv.expanduser()
            if not folder.is_dir():
                raise HalError(f"--from-csv {str(folder)!r} is not a directory")
            readers = {"ag_news": ag_news_from_csv, "imdb": imdb_from_folder,
                       "jigsaw": jigsaw_from_csv, "banking77": banking77_from_csv}
            splits = readers[args.name](folder)
        paths = write(args.name, splits, args.out.expanduser())
    except HalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for path, (split, df) in zip(paths, splits.items()):
        counts = df["label"].value_counts().sort_index().to_dict()
        print(f"{path}: {len(df)} rows, label counts {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
