"""Every knob of one active-learning run, in one validated dataclass.

Loadable from YAML, overridable from the command line (``--query-size 16``) or a sweep's param
space (``{"query_size": 16}``). Validation happens up front so a bad value fails before any work.

Over 300 lines: the fields with their ranges and the checks that span fields, read together
(how text becomes a value is ``hal.core.values``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hal.core.errors import HalError, shown
from hal.core.paths import is_dir
from hal.core.query.registry import DROPOUT, check_strategy
from hal.core.query.registry import STRATEGIES as QUERY_REGISTRY
from hal.core.switch import DEFAULT_EPSILONS, SWITCH_RULES
from hal.core.values import KIND_NAMES, Range, convert, has_control_character
from hal.core.yaml_input import load_yaml

STRATEGIES = ("retrain", "finetune", "new_only", "hybrid")
LEARNERS = ("tfidf", "embedding", "transformer")
# Which examples each round labels: hal.core.query.registry holds every strategy by name.
QUERY_STRATEGIES = tuple(QUERY_REGISTRY)
MONITORS = ("val", "holdout", "agreement")
# What is trained over fixed features (``tfidf``/``embedding`` learners): ``adamw`` the torch head
# (linear, or --hidden-size MLP) for a fixed number of epochs; ``lbfgs`` a linear head by
# full-batch L-BFGS to a gradient tolerance; ``mlp`` a one-hidden-layer head by AdamW until its
# training loss is below --tol; the rest scikit-learn estimators (``hal.learners.sklearn_head``).
HEADS = ("adamw", "lbfgs", "mlp", "logreg", "linearsvc", "sgd")
SKLEARN_HEADS = ("logreg", "linearsvc", "sgd")
# Which runs hold out the unlabeled stop set: only the ``agreement`` monitor's (its own need), or
# every run (``shared``: all strategies and monitors of one seed then query the same pool).
STOP_SETS = ("agreement", "shared")
DEVICES = ("auto", "cpu", "cuda")
NAMED_DATASETS = ("synthetic", "ag_news", "imdb", "jigsaw", "banking77")

DEFAULT_MODELS = {
    "transformer": "distilbert-base-uncased",
    "embedding": "sentence-transformers/all-MiniLM-L6-v2",
}
# Learning rates that suit each backend: the seed study's 2e-5 for full fine-tuning of a
# transformer, a much larger step for a linear/MLP head over fixed features.
DEFAULT_LRS = {"transformer": 2e-5, "tfidf": 1e-2, "embedding": 1e-2}
# The hybrid's warm-started rounds default to one epoch: with all `epochs` they cost as much as
# retraining and over-fit the old examples (docs/benchmark.md measures both). `finetune` and
# `new_only` keep DESIGN.md's default, finetune_epochs = epochs.
HYBRID_FINETUNE_EPOCHS = 1

# Defaults of the heads trained to a criterion (``None`` settings; scikit-learn heads keep their
# estimator's own defaults). lbfgs: C as in scikit-learn's LogisticRegression; tol relative to the
# largest gradient entry at zero weights. mlp: tol is the training-loss target, max_iter the epoch
# cap. docs/benchmark.md measured them.
HEAD_DEFAULTS = {"lbfgs": {"C": 100.0, "tol": 1e-2, "max_iter": 500},
                 "mlp": {"tol": 0.03, "max_iter": 200}}
MLP_HIDDEN_SIZE = 512
MLP_LR = 1e-3

# Largest sizes that still fit one machine: past these a run would not fit memory or could never
# be served by a pool, so they are typos (``--batch-size 1600000``), not experiments.
MAX_COUNT = 100_000_000   # examples: initial set, query, pool subset, stop set, val count
MAX_REPEATS = 100_000     # rounds, epochs, k, windows, patience
MAX_SEED = 2**32 - 1      # what numpy/scikit-learn accept as a seed
MAX_HEAD_WEIGHTS = 500_000_000  # TF-IDF features x hidden units: 2 GB of float32, x4 with AdamW


# One row per numeric RunConfig field (tests check none is missing). ``None`` stays allowed where
# the field's type allows it (a derived default); everything else must be finite and in range.
RANGES: dict[str, Range] = {
    "val_size": Range(0, MAX_COUNT, open_low=True, note="a fraction below 1 or a whole count"),
    "data_seed": Range(0, MAX_SEED),
    "synthetic_classes": Range(2, 1000),
    "synthetic_size": Range(50, 2_000_000),
    "synthetic_imbalance": Range(1, 1000, note="largest/smallest class"),
    "synthetic_noise": Range(0, 0.5, open_high=True),
    "hidden_size": Range(0, 65_536, note="0 = linear head"),
    "dropout": Range(0, 1, open_high=True, note="0 = none"),
    "tfidf_max_features": Range(1, 10_000_000),
    "max_length": Range(8, 8192),
    "epochs": Range(1, MAX_REPEATS),
    "finetune_epochs": Range(1, MAX_REPEATS),
    "lr": Range(0, 10, open_low=True),
    "finetune_lr": Range(0, 10, open_low=True),
    "batch_size": Range(1, 65_536),
    "weight_decay": Range(0, 10),
    "early_stop_patience": Range(0, MAX_REPEATS, note="0 = off"),
    "shrink": Range(0, 1),
    "perturb": Range(0, 1),
    "replay_fraction": Range(0, 1),
    "epsilon": Range(0, 1),
    "k": Range(1, MAX_REPEATS),
    "holdout_fraction": Range(0, 1, open_low=True, open_high=True),
    "switch_window": Range(1, MAX_REPEATS),
    "stop_set_size": Range(1, MAX_COUNT),
    "C": Range(0, 1e12, open_low=True, note="inverse L2 strength, as scikit-learn's C"),
    "tol": Range(0, 1, open_low=True),
    "max_iter": Range(1, MAX_REPEATS),
    "pool_subset": Range(0, MAX_COUNT, note="0 = whole pool"),
    "initial_size": Range(1, MAX_COUNT),
    "query_size": Range(1, MAX_COUNT),
    "rounds": Range(1, MAX_REPEATS),
    "seed": Range(0, MAX_SEED),
}


@dataclass
class RunConfig:
    """One active-learning run. ``None`` means "derive the documented default" (see ``resolved``)."""

    # data
    dataset: str = "synthetic"
    data_dir: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    multilabel: bool = False
    val_size: float = 0.1
    data_seed: int = 0
    synthetic_classes: int = 4
    synthetic_size: int = 4000
    synthetic_imbalance: float = 1.0
    synthetic_noise: float = 0.05
    # learner
    learner: str = "tfidf"
    model: str | None = None
    hidden_size: int = 0
    dropout: float = 0.0  # on the hidden layer of an adamw/mlp head (MC dropout for bald)
    head: str = "adamw"
    C: float | None = None
    tol: float | None = None
    max_iter: int | None = None
    tfidf_max_features: int = 20000
    max_length: int = 128
    cache_dir: str | None = None
    device: str = "auto"
    # training
    strategy: str = "hybrid"
    epochs: int = 5
    finetune_epochs: int | None = None
    lr: float | None = None
    finetune_lr: float | None = None
    batch_size: int = 16
    weight_decay: float = 0.0
    early_stop_patience: int = 0
    shrink: float = 1.0
    perturb: float = 0.0
    replay_fraction: float = 1.0
    # hybrid switch trigger
    epsilon: float | None = None
    k: int = 2
    monitor: str = "val"
    holdout_fraction: float = 0.2
    switch_rule: str = "abs"
    switch_window: int = 3
    stop_set_size: int = 1000
    stop_set: str = "agreement"
    # active learning
    query_strategy: str = "entropy"
    pool_subset: int = 0
    initial_size: int = 200
    query_size: int = 32
    rounds: int = 40
    eval_test_every_round: bool = False
    seed: int = 0

    def resolved(self) -> "RunConfig":
        """A copy with every ``None`` default filled in for the chosen learner."""
        out = dataclasses.replace(self)
        if out.model is None and out.learner in DEFAULT_MODELS:
            out.model = DEFAULT_MODELS[out.learner]
        for name, value in HEAD_DEFAULTS.get(out.head, {}).items():
            if getattr(out, name) is None:
                setattr(out, name, value)
        if out.head == "mlp" and out.hidden_size == 0:
            out.hidden_size = MLP_HIDDEN_SIZE
        if out.lr is None:
            out.lr = MLP_LR if out.head == "mlp" else DEFAULT_LRS.get(out.learner, 1e-2)
        if out.finetune_lr is None:
            out.finetune_lr = out.lr
        if out.epsilon is None:
            out.epsilon = DEFAULT_EPSILONS[out.monitor]
        if out.finetune_epochs is None:
            out.finetune_epochs = HYBRID_FINETUNE_EPOCHS if out.strategy == "hybrid" else out.epochs
        if is_dir(out.dataset):  # trials run in their own directories
            out.dataset = str(Path(out.dataset).expanduser().resolve())
        if out.data_dir is not None:
            out.data_dir = str(Path(out.data_dir).expanduser().resolve())
        if out.cache_dir is None:
            out.cache_dir = str(Path(os.environ.get("HAL_CACHE_DIR", "~/.cache/hal")).expanduser().resolve())
        else:
            out.cache_dir = str(Path(out.cache_dir).expanduser().resolve())
        return out

    def validate(self) -> "RunConfig":
        """Raise ``HalError`` with a fixable one-line message on the first bad value."""
        _one_of("strategy", self.strategy, STRATEGIES)
        _one_of("learner", self.learner, LEARNERS)
        check_strategy(self.query_strategy)
        _one_of("monitor", self.monitor, MONITORS)
        _one_of("switch_rule", self.switch_rule, SWITCH_RULES)
        _one_of("device", self.device, DEVICES)
        _one_of("head", self.head, HEADS)
        _one_of("stop_set", self.stop_set, STOP_SETS)
        if not self.dataset:
            raise HalError("dataset is empty: pass --dataset NAME (one of "
                           f"{', '.join(NAMED_DATASETS)}) or a directory with train/test files")
        for name, kind in FIELD_TYPES.items():
            value = getattr(self, name)
            if kind.startswith("str") and isinstance(value, str) and has_control_character(value):
                raise HalError(f"{name} {shown(value)} holds a control character (NUL, newline, "
                               f"tab, ...): set --{name.replace('_', '-')} to plain text")
        for name in FIELD_TYPES:
            _check_number(name, getattr(self, name))
        if self.monitor == "holdout":
            _check(round(self.query_size * self.holdout_fraction) >= 1,
                   f"query_size {self.query_size} x holdout_fraction {self.holdout_fraction} "
                   "holds back no example: raise --query-size or --holdout-fraction")
        _check(self.val_size < 1 or float(self.val_size).is_integer(),
               f"val_size must be a fraction in (0, 1) or a whole count, got {self.val_size}")
        hidden = self.hidden_size or (MLP_HIDDEN_SIZE if self.head == "mlp" else 0)
        if self.learner == "tfidf" and hidden:
            weights = self.tfidf_max_features * hidden
            _check(weights <= MAX_HEAD_WEIGHTS,
                   f"tfidf_max_features {self.tfidf_max_features} x hidden_size {hidden} "
                   f"= {weights:,} head weights do not fit in memory (at most {MAX_HEAD_WEIGHTS:,}): "
                   "lower --tfidf-max-features or --hidden-size")
        self._check_head()
        if self.multilabel and self.dataset != "jigsaw":
            raise HalError("multilabel is only available for --dataset jigsaw")
        return self

    def _check_head(self) -> None:
        """Settings of one head given to another are typos, not experiments: refuse them."""
        if self.learner == "transformer" and self.head != "adamw":
            raise HalError(f"head {self.head!r} trains over fixed features: use --learner tfidf or "
                           "embedding (the transformer learner trains with --head adamw)")
        takes = {"C": ("lbfgs", "logreg", "linearsvc"), "tol": ("lbfgs", "mlp", *SKLEARN_HEADS),
                 "max_iter": ("lbfgs", "mlp", *SKLEARN_HEADS), "hidden_size": ("adamw", "mlp"),
                 "dropout": ("adamw", "mlp")}
        for name, heads in takes.items():
            if getattr(self, name) not in (None, 0) and self.head not in heads:
                raise HalError(f"--{name.replace('_', '-')} does not apply to --head {self.head}: "
                               f"it sets heads {', '.join(heads)}")
        if self.head == "linearsvc" and self.strategy != "retrain":
            raise HalError(f"--head linearsvc cannot warm-start (LinearSVC has no warm_start or "
                           f"partial_fit), which --strategy {self.strategy} needs: use --strategy "
                           "retrain, or --head logreg, sgd or lbfgs")
        if self.multilabel and self.head in SKLEARN_HEADS:
            raise HalError(f"--head {self.head} is single-label: drop --multilabel or use --head "
                           "lbfgs, mlp or adamw")
        self._check_dropout()

    def _check_dropout(self) -> None:
        """Dropout sits on a head's hidden layer; ``bald`` needs a learner that has some."""
        if self.dropout and self.learner == "transformer":
            raise HalError("--dropout sets the hidden layer of a head over tfidf/embedding features; the "
                           "transformer keeps its checkpoint's own dropout: drop --dropout")
        if self.dropout and self.head == "adamw" and not self.hidden_size:
            raise HalError("--dropout needs a hidden layer: add --hidden-size N (or use --head mlp)")
        if QUERY_REGISTRY[self.query_strategy].needs == DROPOUT and self.learner != "transformer" \
                and not self.dropout:
            raise HalError(f"--query-strategy {self.query_strategy} samples predictions with dropout, "
                           f"and --head {self.head} has none: use --head mlp --dropout 0.1 (or --head "
                           "adamw --hidden-size N --dropout 0.1), or --learner transformer")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (what summaries and sweeps record)."""
        return dataclasses.asdict(self)


def _one_of(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise HalError(f"unknown {name} {shown(value)}: choose one of {', '.join(allowed)}")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise HalError(message)


def _check_number(name: str, value: Any) -> None:
    """A numeric field must be a number of its type (bools are not numbers), finite, in range."""
    kind = FIELD_TYPES[name]
    base = kind.replace(" | None", "")
    if base not in ("int", "float") or (value is None and "None" in kind):
        return
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise HalError(f"{name} must be {'an integer' if base == 'int' else 'a number'}, got "
                       f"{shown(value)}: set {flag} to a number")
    if not math.isfinite(value):
        raise HalError(f"{name} must be a finite number, got {value}: set {flag} to a number in "
                       f"{RANGES.get(name, 'range')}")
    if base == "int" and not float(value).is_integer():
        raise HalError(f"{name} must be a whole number, got {shown(value)}: set {flag} to an integer")
    allowed = RANGES.get(name)
    if allowed is not None and value not in allowed:
        raise HalError(f"{name} must be in {allowed}, got {shown(value)}: set {flag} in that range")


FIELD_TYPES = {f.name: f.type for f in fields(RunConfig)}


def coerce(name: str, value: Any) -> Any:
    """Convert ``value`` (from YAML, a CLI string or a Tune sample) to the field's type."""
    if name not in FIELD_TYPES:
        raise HalError(f"unknown config key {shown(name)}: valid keys are {', '.join(FIELD_TYPES)}")
    kind = FIELD_TYPES[name]
    if value is None:
        if "None" in kind:
            return None
        raise HalError(f"config key {name!r} cannot be empty")
    base = kind.replace(" | None", "")
    try:
        return convert(value, base)
    except (TypeError, ValueError, OverflowError):
        raise HalError(f"config key {name!r} expects {KIND_NAMES[base]}, got {shown(value)}") from None


def make_config(overrides: Mapping[str, Any] | None = None, base: RunConfig | None = None) -> RunConfig:
    """``base`` (default: all defaults) with ``overrides`` applied, coerced and validated."""
    cfg = dataclasses.replace(base) if base is not None else RunConfig()
    for name, value in (overrides or {}).items():
        setattr(cfg, name, coerce(name, value))
    return cfg.validate()


def config_from_yaml(path: str | os.PathLike, overrides: Mapping[str, Any] | None = None) -> RunConfig:
    """A ``RunConfig`` from a YAML file of run keys, then ``overrides`` on top."""
    data = load_yaml(path)
    merged = {**data, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    return make_config(merged)
