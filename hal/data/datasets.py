"""Load a dataset into a ``Corpus``: named datasets, the synthetic one, or any folder of splits.

Named datasets (``ag_news``, ``imdb``, ``jigsaw``, ``banking77``) are looked for as ``<dir>/<name>/train.parquet``
and ``test.parquet`` (or ``.csv``) in, in order: ``cfg.data_dir``, ``$HAL_DATA_DIR``, the repo's
``data/``; then on the Hugging Face hub. Anything else in ``cfg.dataset`` is a directory holding
``train`` and ``test`` files with ``cfg.text_column`` / ``cfg.label_column``. Every problem with
the data is a one-line ``HalError`` that says how to fix it; nothing is dropped silently.
"""

from __future__ import annotations

import functools
import os
import stat
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hal.core.config import NAMED_DATASETS, RunConfig
from hal.core.corpus import Corpus
from hal.core.errors import HalError, shown
from hal.core.paths import path_error, readable_dir, readable_file
from hal.data.splits import assemble, build_corpus, first_line, val_size_arg
from hal.data.synthetic import label_names as synthetic_label_names
from hal.data.synthetic import make_synthetic

# The repo's own data/ folder (what data/prepare.py writes), found from the package location so
# it does not depend on the working directory (Ray Tune trials run in their own directories).
REPO_DATA_DIR = Path(__file__).resolve().parents[2] / "data"
SPLITS = ("train", "test")
SUFFIXES = (".parquet", ".csv")
JIGSAW_LABELS = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")
HUB_PROBE_TIMEOUT_S = 5.0
_CACHE_SIZE = 8  # a few corpora at once; IMDb alone holds ~65 MB of text
DATASET_FIX = ("make the dataset folder and its train/test files readable by this user "
               "(chmod), or pass another --dataset / --data-dir")


@dataclass(frozen=True)
class NamedDataset:
    """What HAL knows about a named dataset: its class names and where the hub keeps it."""

    label_names: tuple[str, ...]
    hub_repo: str | None


NAMED = {
    "ag_news": NamedDataset(("World", "Sports", "Business", "Sci/Tech"), "fancyzhx/ag_news"),
    "imdb": NamedDataset(("negative", "positive"), "stanfordnlp/imdb"),
    # Jigsaw is a Kaggle competition dataset: no copy on the hub may be downloaded freely.
    "jigsaw": NamedDataset(("non-toxic", "toxic"), None),
}
# BANKING77's 77 intents in label order (0..76): the `label_name` column of its Parquet files and
# categories.json of the authors' release (PolyAI-LDN/task-specific-datasets).
BANKING77_LABELS = (
    "card_arrival", "card_linking", "exchange_rate", "card_payment_wrong_exchange_rate",
    "extra_charge_on_statement", "pending_cash_withdrawal", "fiat_currency_support",
    "card_delivery_estimate", "automatic_top_up", "card_not_working", "exchange_via_app",
    "lost_or_stolen_card", "age_limit", "pin_blocked", "contactless_not_working",
    "top_up_by_bank_transfer_charge", "pending_top_up", "cancel_transfer", "top_up_limits",
    "wrong_amount_of_cash_received", "card_payment_fee_charged",
    "transfer_not_received_by_recipient", "supported_cards_and_currencies", "getting_virtual_card",
    "card_acceptance", "top_up_reverted", "balance_not_updated_after_cheque_or_cash_deposit",
    "card_payment_not_recognised", "edit_personal_details", "why_verify_identity",
    "unable_to_verify_identity", "get_physical_card", "visa_or_mastercard", "topping_up_by_card",
    "disposable_card_limits", "compromised_card", "atm_support",
    "direct_debit_payment_not_recognised", "passcode_forgotten", "declined_cash_withdrawal",
    "pending_card_payment", "lost_or_stolen_phone", "request_refund", "declined_transfer",
    "Refund_not_showing_up", "declined_card_payment", "pending_transfer", "terminate_account",
    "card_swallowed", "transaction_charged_twice", "verify_source_of_funds", "transfer_timing",
    "reverted_card_payment?", "change_pin", "beneficiary_not_allowed", "transfer_fee_charged",
    "receiving_money", "failed_transfer", "transfer_into_account", "verify_top_up",
    "getting_spare_card", "top_up_by_cash_or_cheque", "order_physical_card",
    "virtual_card_not_working", "wrong_exchange_rate_for_cash_withdrawal",
    "get_disposable_virtual_card", "top_up_failed", "balance_not_updated_after_bank_transfer",
    "cash_withdrawal_not_recognised", "exchange_charge", "top_up_by_card_charge",
    "activate_my_card", "cash_withdrawal_charge", "card_about_to_expire",
    "apple_pay_or_google_pay", "verify_my_identity", "country_support",
)
NAMED["banking77"] = NamedDataset(BANKING77_LABELS, "PolyAI/banking77")


def load_corpus(cfg: RunConfig) -> Corpus:
    """Load ``cfg.dataset`` as a ``Corpus`` with a seeded, stratified validation split.

    The validation split is carved from train with ``cfg.val_size`` (a fraction, or a count when
    >= 1) and ``cfg.data_seed``; ``pool`` is the rest of train. ``texts`` holds train then test.
    Corpora are cached in-process, so repeated calls return the *same* object: do not mutate it.
    """
    val_size = val_size_arg(cfg.val_size)
    if cfg.multilabel and cfg.dataset != "jigsaw":  # as RunConfig.validate, for unvalidated configs
        raise HalError("multilabel is only available for --dataset jigsaw")
    if cfg.dataset == "synthetic":
        return _synthetic_corpus(cfg.synthetic_classes, cfg.synthetic_size,
                                 float(cfg.synthetic_imbalance), float(cfg.synthetic_noise),
                                 val_size, cfg.data_seed)
    if cfg.dataset in NAMED:
        return _named_corpus(cfg, val_size)
    path = Path(cfg.dataset).expanduser()
    kind = _path_kind(path, "dataset", DATASET_FIX)
    if kind == "dir":
        readable_dir(path, "dataset folder", DATASET_FIX)
        files = _split_files(path)
        if files is None:
            raise HalError(f"dataset folder {str(path)!r} needs train and test files "
                           f"(.parquet or .csv), found {_listing(path)}")
        return _cached_files(path.resolve().name, files, _stamp(files), cfg.text_column,
                             cfg.label_column, False, val_size, cfg.data_seed, None)
    if kind == "file":
        raise HalError(f"dataset {shown(cfg.dataset, 200)} is a file: pass the directory that holds its "
                       "train and test files (.parquet or .csv)")
    raise HalError(f"unknown dataset {shown(cfg.dataset, 200)}: choose one of {', '.join(NAMED_DATASETS)}, "
                   "or pass a directory holding train and test files (.parquet or .csv)")


def search_dirs(data_dir: str | None) -> list[Path]:
    """Folders searched for ``<name>/``: ``data_dir``, ``$HAL_DATA_DIR``, the repo's ``data/``."""
    dirs = []
    for what, value in (("--data-dir", data_dir), ("HAL_DATA_DIR", os.environ.get("HAL_DATA_DIR"))):
        if value:
            fix = "point it at the folder holding <dataset>/train.parquet and <dataset>/test.parquet"
            dirs.append(readable_dir(Path(value).expanduser().absolute(), what, fix).resolve())
    dirs.append(REPO_DATA_DIR)
    return dirs


# ---------------------------------------------------------------------------------------------
# sources


def _named_corpus(cfg: RunConfig, val_size: float | int) -> Corpus:
    name = cfg.dataset
    dirs = search_dirs(cfg.data_dir)
    for base in dirs:
        folder = base / name
        if _path_kind(folder, "dataset folder", DATASET_FIX) == "dir":
            readable_dir(folder, "dataset folder", DATASET_FIX)
            files = _split_files(folder)
            if files is None:  # a half-prepared folder is a mistake to report, not to skip
                raise HalError(f"dataset folder {str(folder)!r} needs train and test files "
                               f"(.parquet or .csv), found {_listing(folder)}: "
                               f"re-run python data/prepare.py {name}")
            return _cached_files(name, files, _stamp(files), cfg.text_column, cfg.label_column,
                                 cfg.multilabel, val_size, cfg.data_seed, name)
    looked = ", ".join(str(d / name) for d in dirs)
    reason = hub_unavailable(name)
    if reason is None:
        return _cached_hub(name, cfg.multilabel, val_size, cfg.data_seed)
    if name == "jigsaw":
        fix = ("download train.csv of Kaggle's Jigsaw Toxic Comment Classification Challenge and "
               "run python data/prepare.py jigsaw --from-csv DIR, or pass --data-dir DIR holding "
               "jigsaw/train.parquet and jigsaw/test.parquet (see data/README.md)")
    else:
        fix = (f"pass --data-dir DIR holding {name}/train.parquet and {name}/test.parquet, or set "
               "HAL_DATA_DIR (see data/README.md)")
    raise HalError(f"dataset {name!r} not found locally (looked in {looked}) and {reason}: {fix}")


def hub_unavailable(name: str) -> str | None:
    """Why the hub cannot serve ``name`` right now, or ``None`` when it looks reachable."""
    repo = NAMED[name].hub_repo
    if repo is None:
        return f"{name} has no freely downloadable copy on the Hugging Face hub"
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return f"the Hugging Face hub is switched off ({var} is set)"
    # A quick probe first: datasets.load_dataset retries an unreachable hub for ~25 s.
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    try:
        request = urllib.request.Request(f"{endpoint}/api/datasets/{repo}", method="HEAD")
        urllib.request.urlopen(request, timeout=HUB_PROBE_TIMEOUT_S).close()
    except urllib.error.HTTPError:
        pass  # the server answered, so the hub is reachable; load_dataset reports the rest
    except (OSError, ValueError):
        return "the Hugging Face hub is unreachable"
    return None


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _cached_hub(name: str, multilabel: bool, val_size: float | int, seed: int) -> Corpus:
    repo = NAMED[name].hub_repo
    try:
        import datasets  # heavy import, only needed on this path

        hub = datasets.load_dataset(repo)
        train, test = hub["train"].to_pandas(), hub["test"].to_pandas()
    except Exception as exc:  # any failure here is "the hub could not serve it"
        raise HalError(f"loading {name!r} from the Hugging Face hub ({repo}) failed "
                       f"({type(exc).__name__}): pass --data-dir DIR holding {name}/train.parquet "
                       f"and {name}/test.parquet (see data/README.md)") from None
    return build_corpus(name, train, test, "text", "label", val_size, seed,
                        source=f"Hugging Face hub {repo}", where=(f"{repo} train", f"{repo} test"),
                        label_names=None if multilabel else list(NAMED[name].label_names),
                        multilabel_columns=JIGSAW_LABELS if multilabel else None)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _cached_files(name: str, files: tuple[Path, Path], stamp: tuple, text_column: str,
                  label_column: str, multilabel: bool, val_size: float | int, seed: int,
                  named: str | None) -> Corpus:
    # ``stamp`` (size and mtime of both files) is only part of the cache key: a rewritten file
    # is loaded again.
    columns = [text_column, *(JIGSAW_LABELS if multilabel else (label_column,))]
    train, test = (_read_table(path, columns) for path in files)
    return build_corpus(name, train, test, text_column, label_column, val_size, seed,
                        source=str(files[0].parent), where=tuple(str(p) for p in files),
                        label_names=list(NAMED[named].label_names) if named and not multilabel else None,
                        multilabel_columns=JIGSAW_LABELS if multilabel else None)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _synthetic_corpus(num_classes: int, size: int, imbalance: float, noise: float,
                      val_size: float | int, seed: int) -> Corpus:
    train, test = make_synthetic(num_classes, size, imbalance, noise, seed)
    names = synthetic_label_names(num_classes)
    source = (f"generated: {num_classes} classes, {size} train rows, imbalance {imbalance:g}, "
              f"noise {noise:g}, seed {seed}")
    y_train, y_test = train["label"].to_numpy(np.int64), test["label"].to_numpy(np.int64)
    return assemble("synthetic", train["text"].tolist(), test["text"].tolist(), y_train, y_test,
                     names, y_train, val_size, seed, "synthetic train", multilabel=False,
                     synthetic=True, source=source)


# ---------------------------------------------------------------------------------------------
# files


def _split_files(folder: Path) -> tuple[Path, Path] | None:
    """``(train, test)`` paths in ``folder``, Parquet before CSV; ``None`` if one is missing."""
    found = []
    for split in SPLITS:
        paths = [folder / f"{split}{suffix}" for suffix in SUFFIXES]
        existing = [p for p in paths if p.is_file()]
        if not existing:
            return None
        found.append(existing[0])
    return found[0], found[1]


def _listing(folder: Path) -> str:
    names = sorted(p.name for p in folder.iterdir())[:10]
    return ", ".join(names) if names else "nothing"


def _stamp(files: tuple[Path, Path]) -> tuple:
    return tuple((p.stat().st_size, p.stat().st_mtime_ns) for p in files)


def _read_table(path: Path, columns: list[str]) -> pd.DataFrame:
    """Read only ``columns`` of a Parquet or CSV file; a missing column names those that exist."""
    readable_file(path, "dataset file", DATASET_FIX)
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            present = [c for c in pq.read_schema(path).names if not c.startswith("__index_level_")]
        else:
            present = list(pd.read_csv(path, nrows=0).columns)
    except Exception as exc:  # a corrupt or non-table file: say which, and why
        raise HalError(f"cannot read {path}: {first_line(exc)}") from None
    missing = [c for c in dict.fromkeys(columns) if c not in present]
    if missing:
        listed = ", ".join(shown(str(c), 30).strip("'\"") for c in present[:8])
        more = f", ... ({len(present)} in all)" if len(present) > 8 else ""
        raise HalError(f"{path} has no column {', '.join(map(shown, missing[:3]))} (columns: "
                       f"{listed or 'none'}{more}): pass --text-column / --label-column")
    wanted = list(dict.fromkeys(columns))
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path, columns=wanted)
        # Only empty fields are missing: a comment reading "NA" or "null" is text, not NaN.
        return pd.read_csv(path, usecols=wanted, keep_default_na=False, na_values=[""])
    except Exception as exc:
        raise HalError(f"cannot read {path}: {first_line(exc)}") from None


def _path_kind(path: Path, what: str, fix: str) -> str | None:
    """``"dir"``, ``"file"`` or ``None`` (nothing there); a path that cannot be checked
    (permission denied, under a file) is a ``HalError`` rather than "not found"."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, ValueError):  # ValueError: a name no file can have (NUL byte)
        return None
    except OSError as exc:
        raise path_error(what, path, exc, fix) from None
    return "dir" if stat.S_ISDIR(mode) else "file"
