"""What a sweep runs and where: ``SweepSpec`` from a sweep YAML (``name``, ``run``, ``grid``,
``resources``, ...), the run settings of every trial, and the sweep's folder on the storage path."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hal.core.config import STRATEGIES, make_config
from hal.core.errors import HalError
from hal.core.yaml_input import load_yaml

SPEC_KEYS = ("name", "run", "grid", "resources", "max_failures", "storage_path")

SPEC_KEYS = ("name", "run", "grid", "resources", "max_failures", "storage_path")
GRID_KEYS = ("strategies", "epsilon", "k", "query_size", "seed")

GRID_KEYS = ("strategies", "epsilon", "k", "query_size", "seed")
RESOURCE_KEYS = ("cpus_per_trial", "gpus_per_trial", "max_concurrent")

RESOURCE_KEYS = ("cpus_per_trial", "gpus_per_trial", "max_concurrent")
PATH_KEYS = ("dataset", "data_dir", "cache_dir")


@dataclass
class SweepSpec:
    """What to sweep and where to run it."""

    name: str = "sweep"
    run: dict[str, Any] = field(default_factory=dict)
    strategies: list[str] = field(default_factory=lambda: list(STRATEGIES))
    epsilon: list[float] = field(default_factory=lambda: [0.01])
    k: list[int] = field(default_factory=lambda: [2])
    query_size: list[int] = field(default_factory=lambda: [32])
    seed: list[int] = field(default_factory=lambda: [0])
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int = 0
    max_failures: int = 1
    storage_path: str = "results"
    address: str | None = None

    def validate(self) -> "SweepSpec":
        for key in GRID_KEYS:
            if not getattr(self, key):
                raise HalError(f"the grid of {key!r} is empty: give at least one value")
        for strategy in self.strategies:
            if strategy not in STRATEGIES:
                raise HalError(f"unknown strategy {strategy!r} in the grid: choose from {', '.join(STRATEGIES)}")
        if self.cpus_per_trial <= 0:
            raise HalError(f"cpus_per_trial must be > 0, got {self.cpus_per_trial}")
        if self.gpus_per_trial < 0:
            raise HalError(f"gpus_per_trial must be >= 0, got {self.gpus_per_trial}")
        if self.gpus_per_trial > 1 and not float(self.gpus_per_trial).is_integer():
            raise HalError(f"gpus_per_trial above 1 must be a whole number, got {self.gpus_per_trial}")
        if self.max_concurrent < 0:
            raise HalError(f"max_concurrent must be >= 0 (0 = as many as resources allow), got {self.max_concurrent}")
        if self.max_failures < 0:
            raise HalError(f"max_failures must be >= 0, got {self.max_failures}")
        if not self.name or "/" in self.name:
            raise HalError(f"sweep name {self.name!r} must be a non-empty folder name without '/'")
        return self


def load_spec(path: str | os.PathLike | None) -> SweepSpec:
    """A ``SweepSpec`` from a sweep YAML (``name``, ``run``, ``grid``, ``resources``, ...)."""
    spec = SweepSpec()
    if path is None:
        return spec
    data = load_yaml(path)
    _known(data, SPEC_KEYS, f"in {path}")
    spec.name = str(data.get("name", Path(path).stem))
    run = data.get("run") or {}
    if not isinstance(run, dict):
        raise HalError(f"'run' in {path} must be a mapping of run settings")
    spec.run = run
    grid = data.get("grid") or {}
    _known(grid, GRID_KEYS, f"under 'grid' in {path}")
    for key, value in grid.items():
        setattr(spec, key, value if isinstance(value, list) else [value])
    resources = data.get("resources") or {}
    _known(resources, RESOURCE_KEYS, f"under 'resources' in {path}")
    for key, value in resources.items():
        setattr(spec, key, value)
    for key in ("max_failures", "storage_path"):
        if key in data:
            setattr(spec, key, data[key])
    return spec


def _known(data: dict, allowed: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise HalError(f"unknown key {unknown[0]!r} {where}: valid keys are {', '.join(allowed)}")


def trial_overrides(spec: SweepSpec) -> list[dict[str, Any]]:
    """The run settings of every trial: hybrid over ε × k × query size × seed, and each baseline
    over query size × seed (ε and k mean nothing to them). Each is validated."""
    trials = []
    for strategy in spec.strategies:
        eps_k = itertools.product(spec.epsilon, spec.k) if strategy == "hybrid" else [(None, None)]
        for (eps, k), q, seed in itertools.product(list(eps_k), spec.query_size, spec.seed):
            run = {**spec.run, "strategy": strategy, "query_size": q, "seed": seed}
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
