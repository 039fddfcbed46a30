"""Every knob of one active-learning run, in one validated dataclass.

Loadable from YAML, overridable from the command line (``--query-size 16``) or a sweep's param
space (``{"query_size": 16}``). Validation happens up front so a bad value fails before any work.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from hal.errors import HalError

STRATEGIES = ("retrain", "finetune", "new_only", "hybrid")
LEARNERS = ("tfidf", "embedding", "transformer")
QUERY_STRATEGIES = ("random", "entropy", "margin", "least_confidence")
MONITORS = ("val", "holdout")
DEVICES = ("auto", "cpu", "cuda")
NAMED_DATASETS = ("synthetic", "ag_news", "imdb", "jigsaw")

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
    epsilon: float = 0.02
    k: int = 2
    monitor: str = "val"
    holdout_fraction: float = 0.2
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
        if out.lr is None:
            out.lr = DEFAULT_LRS.get(out.learner, 1e-2)
        if out.finetune_lr is None:
            out.finetune_lr = out.lr
        if out.finetune_epochs is None:
            out.finetune_epochs = HYBRID_FINETUNE_EPOCHS if out.strategy == "hybrid" else out.epochs
        if Path(out.dataset).expanduser().is_dir():  # trials run in their own directories
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
        _one_of("query_strategy", self.query_strategy, QUERY_STRATEGIES)
        _one_of("monitor", self.monitor, MONITORS)
        _one_of("device", self.device, DEVICES)
        if not self.dataset:
            raise HalError("dataset is empty: pass --dataset NAME (one of "
                           f"{', '.join(NAMED_DATASETS)}) or a directory with train/test files")
        _check(self.epsilon >= 0, f"epsilon must be >= 0, got {self.epsilon}")
        _check(self.k >= 1, f"k must be >= 1, got {self.k}")
        _check(self.query_size >= 1, f"query_size must be >= 1, got {self.query_size}")
        _check(self.initial_size >= 1, f"initial_size must be >= 1, got {self.initial_size}")
        _check(self.rounds >= 1, f"rounds must be >= 1, got {self.rounds}")
        _check(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        _check(self.finetune_epochs is None or self.finetune_epochs >= 1,
               f"finetune_epochs must be >= 1, got {self.finetune_epochs}")
        _check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        _check(self.max_length >= 8, f"max_length must be >= 8, got {self.max_length}")
        for name in ("lr", "finetune_lr"):
            value = getattr(self, name)
            _check(value is None or value > 0, f"{name} must be > 0, got {value}")
        _check(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        _check(self.early_stop_patience >= 0,
               f"early_stop_patience must be >= 0 (0 = off), got {self.early_stop_patience}")
        _check(self.shrink >= 0 and self.perturb >= 0,
               f"shrink and perturb must be >= 0, got {self.shrink} and {self.perturb}")
        _check(0 <= self.replay_fraction <= 1,
               f"replay_fraction must be in [0, 1], got {self.replay_fraction}")
        _check(0 < self.holdout_fraction < 1,
               f"holdout_fraction must be in (0, 1), got {self.holdout_fraction}")
        if self.monitor == "holdout":
            _check(round(self.query_size * self.holdout_fraction) >= 1,
                   f"query_size {self.query_size} x holdout_fraction {self.holdout_fraction} "
                   "holds back no example: raise --query-size or --holdout-fraction")
        _check(self.pool_subset >= 0, f"pool_subset must be >= 0 (0 = whole pool), got {self.pool_subset}")
        _check(0 < self.val_size < 1 or (self.val_size >= 1 and float(self.val_size).is_integer()),
               f"val_size must be a fraction in (0, 1) or a whole count, got {self.val_size}")
        _check(self.hidden_size >= 0, f"hidden_size must be >= 0 (0 = linear head), got {self.hidden_size}")
        _check(self.tfidf_max_features >= 1,
               f"tfidf_max_features must be >= 1, got {self.tfidf_max_features}")
        _check(self.synthetic_classes >= 2, f"synthetic_classes must be >= 2, got {self.synthetic_classes}")
        _check(self.synthetic_size >= 50, f"synthetic_size must be >= 50, got {self.synthetic_size}")
        _check(self.synthetic_imbalance >= 1,
               f"synthetic_imbalance (largest/smallest class) must be >= 1, got {self.synthetic_imbalance}")
        _check(0 <= self.synthetic_noise < 0.5,
               f"synthetic_noise must be in [0, 0.5), got {self.synthetic_noise}")
        if self.multilabel and self.dataset != "jigsaw":
            raise HalError("multilabel is only available for --dataset jigsaw")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (what summaries and sweeps record)."""
        return dataclasses.asdict(self)


def _one_of(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise HalError(f"unknown {name} {value!r}: choose one of {', '.join(allowed)}")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise HalError(message)


FIELD_TYPES = {f.name: f.type for f in fields(RunConfig)}


def coerce(name: str, value: Any) -> Any:
    """Convert ``value`` (from YAML, a CLI string or a Tune sample) to the field's type."""
    if name not in FIELD_TYPES:
        raise HalError(f"unknown config key {name!r}: valid keys are {', '.join(FIELD_TYPES)}")
    kind = FIELD_TYPES[name]
    if value is None:
        if "None" in kind:
            return None
        raise HalError(f"config key {name!r} cannot be empty")
    base = kind.replace(" | None", "")
    try:
        if base == "bool":
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                return lowered in ("true", "1", "yes")
            return bool(value)
        if base == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
                raise ValueError(value)
            return int(value)
        if base == "float":
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise HalError(f"config key {name!r} expects {base}, got {value!r}") from None


def make_config(overrides: Mapping[str, Any] | None = None, base: RunConfig | None = None) -> RunConfig:
    """``base`` (default: all defaults) with ``overrides`` applied, coerced and validated."""
    cfg = dataclasses.replace(base) if base is not None else RunConfig()
    for name, value in (overrides or {}).items():
        setattr(cfg, name, coerce(name, value))
    return cfg.validate()


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML mapping; a missing or malformed file is a ``HalError``."""
    p = Path(path)
    if not p.is_file():
        raise HalError(f"config file {str(p)!r} does not exist: check the --config path")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" at line {line + 1}" if line is not None else ""
        raise HalError(f"config file {str(p)!r} is not valid YAML{where}: fix its syntax") from None
    if not isinstance(data, dict):
        raise HalError(f"config file {str(p)!r} must hold a mapping of keys to values")
    return data


def config_from_yaml(path: str | os.PathLike, overrides: Mapping[str, Any] | None = None) -> RunConfig:
    """A ``RunConfig`` from a YAML file of run keys, then ``overrides`` on top."""
    data = load_yaml(path)
    merged = {**data, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    return make_config(merged)
