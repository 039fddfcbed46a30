"""What a sweep runs and where: ``SweepSpec`` from a sweep YAML (``name``, ``run``, ``grid``,
``resources``, ...), the run settings of every trial, and the sweep's folder on the storage path."""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hal.core.config import KIND_NAMES, STRATEGIES, convert, has_control_character, make_config
from hal.core.errors import HalError, shown
from hal.core.query.registry import check_strategy
from hal.core.yaml_input import load_yaml

SPEC_KEYS = ("name", "run", "grid", "resources", "max_failures", "storage_path")
GRID_KEYS = ("strategies", "epsilon", "k", "query_size", "query_strategy", "seed")
RESOURCE_KEYS = ("cpus_per_trial", "gpus_per_trial", "max_concurrent")
PATH_KEYS = ("dataset", "data_dir", "cache_dir")

# The type of every value a sweep YAML or flag sets, read by ``hal.core.config.convert``: the same
# rule as a run key ("1e-9" is a number, ``true`` never is, a list is never one value).
GRID_TYPES = {"strategies": "str", "epsilon": "float", "k": "int", "query_size": "int",
              "query_strategy": "str", "seed": "int"}
SETTING_TYPES = {"name": "str", "storage_path": "str", "address": "str", "cpus_per_trial": "float",
                 "gpus_per_trial": "float", "max_concurrent": "int", "max_failures": "int"}
EXAMPLES = {"name": "demo_2", "storage_path": "results", "address": "auto", "cpus_per_trial": "1",
            "gpus_per_trial": "0.25", "max_concurrent": "4", "max_failures": "1",
            "strategies": "hybrid, retrain", "epsilon": "0.01, 0.02", "k": "1, 2",
            "query_size": "16, 32", "query_strategy": "entropy, badge", "seed": "0, 1"}
GRID_FLAGS = {"strategies": "--strategies", "epsilon": "--epsilons", "k": "--ks",
              "query_size": "--query-sizes", "query_strategy": "--query-strategies", "seed": "--seeds"}
MAX_NAME_BYTES = 100  # a folder name, with room for suffixes (``_optuna``) under the 255-byte limit
RESOURCE_UNIT = 0.0001  # Ray rounds resource amounts to this; a smaller request would be 0


@dataclass
class SweepSpec:
    """What to sweep and where to run it."""

    name: str = "sweep"
    run: dict[str, Any] = field(default_factory=dict)
    strategies: list[str] = field(default_factory=lambda: list(STRATEGIES))
    epsilon: list[float] = field(default_factory=lambda: [0.01])
    k: list[int] = field(default_factory=lambda: [2])
    query_size: list[int] = field(default_factory=lambda: [32])
    # None: every trial queries with the run settings' strategy (``run: query_strategy:``)
    query_strategy: list[str] | None = None
    seed: list[int] = field(default_factory=lambda: [0])
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int = 0
    max_failures: int = 1
    storage_path: str = "results"
    address: str | None = None

    def validate(self) -> "SweepSpec":
        """Check every value and normalise its type (``"2"`` -> 2); the first problem is a
        one-line ``HalError``. Nothing is started or created."""
        for key, kind in SETTING_TYPES.items():
            if not (key == "address" and self.address is None):
                setattr(self, key, setting(key, getattr(self, key), kind))
        if not isinstance(self.run, dict):
            raise HalError(f"run must be a mapping of run settings, got {shown(self.run)}")
        for key, kind in GRID_TYPES.items():
            if not (key == "query_strategy" and self.query_strategy is None):
                setattr(self, key, grid_values(key, getattr(self, key), kind))
        for name in self.query_strategy or []:
            check_strategy(name)
        for strategy in self.strategies:
            if strategy not in STRATEGIES:
                raise HalError(f"unknown strategy {shown(strategy)} in the grid: choose from {', '.join(STRATEGIES)}")
        for key in ("cpus_per_trial", "gpus_per_trial"):
            if not math.isfinite(getattr(self, key)):
                raise HalError(f"{key} must be a finite number, got {getattr(self, key)}")
        if self.cpus_per_trial <= 0:
            raise HalError(f"cpus_per_trial must be > 0, got {self.cpus_per_trial:g}")
        if self.gpus_per_trial < 0:
            raise HalError(f"gpus_per_trial must be >= 0, got {self.gpus_per_trial:g}")
        for key in ("cpus_per_trial", "gpus_per_trial"):
            if 0 < getattr(self, key) < RESOURCE_UNIT:
                raise HalError(f"{key} must be 0 or at least {RESOURCE_UNIT:g} (Ray's smallest "
                               f"unit), got {getattr(self, key):g}: write a larger fraction")
        if self.gpus_per_trial > 1 and not float(self.gpus_per_trial).is_integer():
            raise HalError(f"gpus_per_trial above 1 must be a whole number, got {self.gpus_per_trial:g}")
        if self.max_concurrent < 0:
            raise HalError(f"max_concurrent must be >= 0 (0 = as many as resources allow), got {self.max_concurrent}")
        if self.max_failures < 0:
            raise HalError(f"max_failures must be >= 0, got {self.max_failures}")
        check_name(self.name)
        for key in ("storage_path", "address"):
            value = getattr(self, key)
            if value is not None and (not value.strip() or has_control_character(value)):
                raise HalError(f"{key} {shown(value)} is empty or holds a control character: pass "
                               f"--{key.replace('_', '-')} {EXAMPLES[key]}")
        return self


def setting(key: str, value: Any, kind: str, where: str = "") -> Any:
    """One sweep setting (``SETTING_TYPES``) converted to ``kind``; else a one-line ``HalError``."""
    try:
        return convert(value, kind)
    except (TypeError, ValueError, OverflowError):
        raise HalError(f"{key}{where} expects {KIND_NAMES[kind]}, got {shown(value)}: write "
                       f"{key}: {EXAMPLES[key]}") from None


def grid_values(key: str, values: Any, kind: str) -> list[Any]:
    """The values of one grid axis converted to ``kind``: each a single value, none twice (0.01
    and 0.010 are the same number), at least one."""
    if values is None:
        values = []
    if not isinstance(values, (list, tuple)):
        raise HalError(f"the grid of {key!r} must be a list, got {shown(values)}: write "
                       f"{key}: [{EXAMPLES[key]}]")
    out: list[Any] = []
    for value in values:
        try:
            item = convert(value, kind)
        except (TypeError, ValueError, OverflowError):
            raise HalError(f"the grid of {key!r} holds {shown(value)}, not {KIND_NAMES[kind]}: "
                           f"write {key}: [{EXAMPLES[key]}]") from None
        if item in out:
            raise HalError(f"the grid of {key!r} repeats {shown(item)} ({GRID_FLAGS[key]} or "
                           f"grid: {key}: in the sweep YAML): give each value once, a repeat would "
                           "run the same configurations twice")
        out.append(item)
    if not out:
        raise HalError(f"the grid of {key!r} is empty: give at least one value")
    return out


def check_name(name: str) -> str:
    """``name`` if it can be the sweep's folder: one path component that is not '.' or '..', no
    control characters, no surrounding spaces, at most ``MAX_NAME_BYTES`` bytes of UTF-8."""
    problem = None
    if not name.strip():
        problem = "is empty"
    elif name in (".", ".."):
        problem = "is not a folder name"
    elif "/" in name or "\\" in name:
        problem = "holds a path separator (/ or \\)"
    elif has_control_character(name):
        problem = "holds a control character"
    elif name != name.strip():
        problem = "starts or ends with a space"
    else:
        try:
            if len(name.encode("utf-8")) > MAX_NAME_BYTES:
                problem = f"is longer than {MAX_NAME_BYTES} bytes"
        except UnicodeEncodeError:  # undecodable bytes in argv arrive as lone surrogates
            problem = "is not valid text"
    if problem:
        raise HalError(f"sweep name {shown(name)} {problem}: pass --name (or name: in the sweep "
                       f"YAML) with a plain folder name such as {EXAMPLES['name']}")
    return name


def load_spec(path: str | os.PathLike | None) -> SweepSpec:
    """A ``SweepSpec`` from a sweep YAML (``name``, ``run``, ``grid``, ``resources``, ...)."""
    spec = SweepSpec()
    if path is None:
        return spec
    data = load_yaml(path)
    where = f" in {shown(str(path), 200)}"
    _known(data, SPEC_KEYS, where)
    # Converted here, not only in validate(): scripts build on the name first (``<name>_optuna``).
    spec.name = setting("name", data.get("name", Path(path).stem), "str", where)
    spec.run = _mapping(data, "run", "run settings (dataset: synthetic, ...)", where)
    grid = _mapping(data, "grid", "lists of values (epsilon: [0.01, 0.02], ...)", where)
    _known(grid, GRID_KEYS, f" under 'grid'{where}")
    for key, value in grid.items():
        setattr(spec, key, value if isinstance(value, list) or value is None else [value])
    resources = _mapping(data, "resources", "resources per trial (cpus_per_trial: 1, ...)", where)
    _known(resources, RESOURCE_KEYS, f" under 'resources'{where}")
    top = {key: data[key] for key in ("max_failures", "storage_path") if key in data}
    for key, value in {**resources, **top}.items():
        setattr(spec, key, setting(key, value, SETTING_TYPES[key], where))
    return spec


def _mapping(data: dict, key: str, what: str, where: str) -> dict[str, Any]:
    """``data[key]`` if it is a mapping (absent or empty: ``{}``); else a one-line ``HalError``."""
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise HalError(f"{key!r}{where} must be a mapping of {what}, got {shown(value)}")
    return value


def _known(data: dict, allowed: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(data) - set(allowed), key=str)
    if unknown:
        raise HalError(f"unknown key {shown(unknown[0])}{where}: valid keys are {', '.join(allowed)}")


def trial_overrides(spec: SweepSpec) -> list[dict[str, Any]]:
    """The run settings of every trial: hybrid over ε × k × query size × query strategy × seed,
    and each baseline over query size × query strategy × seed (ε and k mean nothing to them).
    Each is validated."""
    trials = []
    query_strategies = spec.query_strategy or [None]
    for strategy in spec.strategies:
        eps_k = itertools.product(spec.epsilon, spec.k) if strategy == "hybrid" else [(None, None)]
        for (eps, k), q, qs, seed in itertools.product(list(eps_k), spec.query_size, query_strategies, spec.seed):
            run = {**spec.run, "strategy": strategy, "query_size": q, "seed": seed}
            if qs is not None:
                run["query_strategy"] = qs
            if eps is not None:
                run.update(epsilon=eps, k=k)
            trials.append(checked_run(run))
    return trials


def checked_run(run: dict[str, Any]) -> dict[str, Any]:
    """``run`` validated (fails before Ray starts), with every path pinned to an absolute one:
    trials run in their own directories."""
    cfg = make_config(run).resolved()
    pinned = {key: getattr(cfg, key) for key in PATH_KEYS if run.get(key) is not None or key == "cache_dir"}
    return {**run, **pinned}


def storage_uri(storage_path: str) -> str:
    """Absolute local path (trials run in their own directories) or an unchanged URI."""
    if "://" in storage_path:
        return storage_path
    path = Path(storage_path).expanduser().resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HalError(f"--storage-path {storage_path} cannot be created ({exc.strerror})") from None
    return str(path)


def experiment_path(spec: SweepSpec) -> str:
    base = storage_uri(spec.storage_path)
    return f"{base.rstrip('/')}/{spec.name}"
