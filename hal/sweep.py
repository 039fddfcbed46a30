"""The sweep builder shared by the scripts in ``sweeps/``: a YAML spec + flags -> trial configs ->
a Ray Tune ``Tuner`` (grid or a searcher), run on a local or existing Ray cluster."""

from __future__ import annotations

import itertools
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import ray
from ray import tune

from hal.config import STRATEGIES, load_yaml, make_config
from hal.errors import HalError

SPEC_KEYS = ("name", "run", "grid", "resources", "max_failures", "storage_path")
GRID_KEYS = ("strategies", "epsilon", "k", "query_size", "seed")
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


def trial_name(run: dict[str, Any]) -> str:
    """Short, readable trial folder name."""
    if run.get("strategy") == "hybrid":
        head = f"hybrid_eps{run.get('epsilon')}_k{run.get('k')}"
    else:
        head = str(run.get("strategy"))
    return f"{head}_q{run.get('query_size')}_s{run.get('seed')}"


def prepare_shared(runs: list[dict[str, Any]]) -> dict[tuple, Any]:
    """Load each distinct dataset and compute each learner's inputs once, on the driver; check that
    every trial's pool is big enough before any trial starts."""
    from hal.loop import check_sizes
    from hal.prepare import prepare, prepare_key

    shared: dict[tuple, Any] = {}
    for run in runs:
        cfg = make_config(run).resolved()
        key = prepare_key(cfg)
        if key not in shared:
            print(f"preparing {cfg.dataset} for the {cfg.learner} learner (once for the sweep) ...", flush=True)
            shared[key] = prepare(cfg)
        check_sizes(cfg, shared[key].corpus)
    return shared


def init_ray(address: str | None) -> None:
    """Join ``address`` (a running cluster) or start a local Ray with this machine's CPUs/GPUs."""
    if ray.is_initialized():
        return
    if address:
        _check_reachable(address)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    try:
        if address:
            ray.init(address=address, log_to_driver=True)
        else:
            ray.init(include_dashboard=False, log_to_driver=True)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"--address {address}" if address else "a local Ray instance"
        first = str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else type(exc).__name__
        raise HalError(f"could not start or join {where}: {first}. Check that the cluster is up "
                       "(`ray status`) or drop --address to run locally") from None


def _check_reachable(address: str) -> None:
    """Fail in seconds, not minutes, when ``address`` names a host:port nobody listens on (Ray
    itself retries for a long time)."""
    import socket

    hostport = address.split("://", 1)[-1]
    if address == "auto" or ":" not in hostport:
        return
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            pass
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise HalError(f"could not start or join --address {address}: {reason}. Check that the cluster "
                       "is up (`ray status`) or drop --address to run locally") from None


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


def _trainable(shared: dict[tuple, Any], spec: SweepSpec):
    from hal.trainable import run_trial

    resources = {"cpu": spec.cpus_per_trial, "gpu": spec.gpus_per_trial}
    return tune.with_resources(tune.with_parameters(run_trial, prepared=shared), resources)


def _tune_env() -> None:
    # Ray's own TensorBoard logger is left out (the trials write their own per-round scalars), and
    # keeping one checkpoint per trial forces a millisecond state snapshot per round: no warning.
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")


def _run_config(spec: SweepSpec, callbacks: list) -> Any:
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    _tune_env()
    return tune.RunConfig(
        name=spec.name,
        storage_path=storage_uri(spec.storage_path),
        failure_config=tune.FailureConfig(max_failures=spec.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        callbacks=[JsonLoggerCallback(), CSVLoggerCallback(), *callbacks],
        verbose=0,
    )


def experiment_path(spec: SweepSpec) -> str:
    base = storage_uri(spec.storage_path)
    return f"{base.rstrip('/')}/{spec.name}"


def build_grid_tuner(spec: SweepSpec, runs: list[dict[str, Any]], shared: dict[tuple, Any],
                     extra: dict[str, Any] | None = None) -> Any:
    """A grid ``Tuner`` with one trial per entry of ``runs``."""
    param_space = {"run": tune.grid_search(runs), **(extra or {})}
    tune_config = tune.TuneConfig(
        max_concurrent_trials=spec.max_concurrent or None,
        reuse_actors=True,
        trial_dirname_creator=lambda trial: f"{trial_name(trial.config['run'])}_{trial.trial_id}",
        trial_name_creator=lambda trial: trial_name(trial.config["run"]),
    )
    return tune.Tuner(_trainable(shared, spec), param_space=param_space, tune_config=tune_config,
                      run_config=_run_config(spec, [TrialLines(len(runs))]))


def build_search_tuner(spec: SweepSpec, param_space: dict[str, Any], shared: dict[tuple, Any],
                       search_alg: Any, num_samples: int) -> Any:
    """A ``Tuner`` whose trials a searcher (e.g. OptunaSearch) proposes."""
    tune_config = tune.TuneConfig(search_alg=search_alg, num_samples=num_samples,
                                  max_concurrent_trials=spec.max_concurrent or None, reuse_actors=True)
    return tune.Tuner(_trainable(shared, spec), param_space=param_space, tune_config=tune_config,
                      run_config=_run_config(spec, [TrialLines(num_samples)]))


def restore_tuner(spec: SweepSpec, shared: dict[tuple, Any]) -> Any:
    """Continue an interrupted sweep: unfinished and errored trials resume from their latest
    checkpoints; finished trials are kept as they are."""
    _tune_env()
    path = experiment_path(spec)
    if not tune.Tuner.can_restore(path):
        raise HalError(f"--resume: no sweep named {spec.name!r} to continue under {spec.storage_path}: "
                       "check --name and --storage-path")
    return tune.Tuner.restore(path, trainable=_trainable(shared, spec), resume_unfinished=True,
                              resume_errored=True, restart_errored=False)


def summarize_results(result_grid: Any, top: int = 5) -> list[str]:
    """Lines for the end of a sweep: errors, the best hybrid settings and the baselines."""
    rows, errors = [], 0
    for result in result_grid:
        if result.error is not None:
            errors += 1
            continue
        metrics = result.metrics or {}
        run = dict(result.config.get("run", {}))
        run.update({k: v for k, v in result.config.items() if k != "run"})
        rows.append((run, metrics))
    lines = [f"{len(rows)} trials finished, {errors} errored"]
    done = [(r, m) for r, m in rows if _num(m.get("final_test_f1")) is not None]
    done.sort(key=lambda rm: (-rm[1]["final_test_f1"], rm[1].get("total_train_samples", 0)))
    for label, subset in (("best hybrid", [x for x in done if x[0].get("strategy") == "hybrid"][:top]),
                          ("baselines", [x for x in done if x[0].get("strategy") != "hybrid"][:top])):
        if subset:
            lines.append(f"{label} (by final test macro-F1):")
            lines += [f"  {trial_name(r):38s} test F1 {m['final_test_f1']:.4f}  "
                      f"train {m.get('total_train_time_s', math.nan):7.1f}s  "
                      f"{int(m.get('total_train_samples', 0)):>9d} samples" for r, m in subset]
    return lines


def closing_lines(spec: SweepSpec, result_grid: Any, report_flags: str = "") -> str:
    """What a sweep script prints at the end: outcome, best settings, where to look next."""
    path = experiment_path(spec)
    return "\n".join([*summarize_results(result_grid), "",
                      f"results: {path}", f"watch:   tensorboard --logdir {path}",
                      f"next:    python -m analysis.report {path}{report_flags}"])


def _num(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


class TrialLines(tune.Callback):
    """Prints one line when a trial finishes or fails (Ray's own tables are turned off)."""

    def __init__(self, total: int | None = None) -> None:
        self.start = time.time()
        self.finished = 0
        self.total = total

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self.finished += 1
        m = trial.last_result or {}
        print(f"[{time.time() - self.start:6.0f}s] {self.finished}/{self.total or len(trials)} "
              f"{str(trial):40s} test F1 {m.get('final_test_f1', math.nan):.4f}  "
              f"train {m.get('total_train_time_s', math.nan):.1f}s", flush=True)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        print(f"[{time.time() - self.start:6.0f}s] trial {trial} failed "
              f"(see {trial.path}/error.txt)", flush=True)


RUN_FLAGS = ("rounds", "dataset", "data_dir", "learner", "model")
RESOURCE_FLAGS = ("cpus_per_trial", "gpus_per_trial", "max_concurrent", "address", "storage_path", "name",
                  "max_failures")


def add_sweep_flags(parser: Any) -> None:
    """Flags every sweep script shares: what to run on, and where and how to run it."""
    parser.add_argument("--rounds", type=int, help="rounds per run (round 0 included)")
    parser.add_argument("--dataset", help="synthetic, ag_news, imdb, jigsaw or a directory of train/test files")
    parser.add_argument("--data-dir", help="directory holding <dataset>/train.parquet and test.parquet")
    parser.add_argument("--learner", help="tfidf | embedding | transformer")
    parser.add_argument("--model", help="transformer checkpoint or encoder (hub name or local path)")
    parser.add_argument("--cpus-per-trial", type=float, help="CPUs reserved per trial")
    parser.add_argument("--gpus-per-trial", type=float, help="GPUs per trial; 0.25 packs four trials on a GPU")
    parser.add_argument("--max-concurrent", type=int, help="cap on trials running at once (0 = no cap)")
    parser.add_argument("--address", help="join a running Ray cluster (e.g. auto); default: start a local one")
    parser.add_argument("--storage-path",
                        help="results root: local dir, shared file system or URI (default results/)")
    parser.add_argument("--name", help="sweep name = folder under the storage path")
    parser.add_argument("--max-failures", type=int, help="retries per trial, each from its latest round checkpoint")


def apply_sweep_flags(spec: SweepSpec, args: Any) -> SweepSpec:
    """The flags of ``add_sweep_flags`` that were given, on top of ``spec``."""
    for key in RUN_FLAGS:
        if getattr(args, key) is not None:
            spec.run[key] = getattr(args, key)
    for key in RESOURCE_FLAGS:
        if getattr(args, key) is not None:
            setattr(spec, key, getattr(args, key))
    return spec


def parse_list(text: str | None, kind: Callable[[str], Any], flag: str) -> list[Any] | None:
    """``"0.01,0.02"`` -> ``[0.01, 0.02]``; a bad item is a ``HalError`` naming the flag."""
    if text is None:
        return None
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise HalError(f"{flag} is empty: give comma-separated values")
    try:
        return [kind(item) for item in items]
    except ValueError:
        raise HalError(f"{flag} {text!r}: expected comma-separated {kind.__name__} values") from None

