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


def trial_label(trial: Any) -> str:
    """A trial's name in Tune and its folder: the sweep's own name for it, so that a trial created
    again after the driver died (Tune's snapshot did not have it yet) finds its folder and
    checkpoint and continues there. Never fails, whatever the restored config holds."""
    config = getattr(trial, "config", None) or {}
    if config.get("name"):
        return str(config["name"])
    if isinstance(config.get("run"), dict):
        return trial_name(config["run"])
    return f"trial_{trial.trial_id}"


def searched_trial_label(trial: Any) -> str:
    """Searchers may propose equal settings twice: their folders carry the trial id (or the name
    a shared-prefix searcher gave them, which does)."""
    config = getattr(trial, "config", None) or {}
    if config.get("name"):
        return str(config["name"])
    run = {**config.get("run", {}), **{k: v for k, v in config.items() if k != "run"}}
    return f"{trial_name(run)}_{trial.trial_id}"


def sampled_prefix_searcher(spec: SweepSpec, sampler: Any, base: dict[str, Any], metric: Any, mode: Any) -> Any:
    """Wrap a searcher that samples switch rules so that samples share retrain trajectories."""
    from hal import prefix
    from hal.prefix_search import SampledPrefixSearcher

    if "://" in spec.storage_path:
        raise HalError("shared prefixes keep fork checkpoints on a file system that every node can "
                       f"reach; --storage-path {spec.storage_path} is not one: use a shared directory "
                       "or pass --no-share-prefix")
    return SampledPrefixSearcher(sampler, base, list(spec.query_size),
                                 str(Path(experiment_path(spec)) / prefix.PREFIX_DIR), trial_name,
                                 metric=metric, mode=mode)


def drop_prefix_dir(spec: SweepSpec) -> None:
    """Delete a finished search's fork checkpoints (one per round and query size)."""
    import shutil

    from hal import prefix

    shutil.rmtree(Path(experiment_path(spec)) / prefix.PREFIX_DIR, ignore_errors=True)


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
    """Join ``address`` or start a local Ray watched for leftovers: see ``hal.ray_session``."""
    from hal.ray_session import start_or_join

    start_or_join(address)


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
        trial_dirname_creator=trial_label,
        trial_name_creator=trial_label,
    )
    return tune.Tuner(_trainable(shared, spec), param_space=param_space, tune_config=tune_config,
                      run_config=_run_config(spec, [TrialLines(len(runs))]))


def build_shared_tuner(spec: SweepSpec, runs: list[dict[str, Any]], shared: dict[tuple, Any],
                       extra: dict[str, Any] | None = None) -> Any:
    """A ``Tuner`` that runs ``runs`` with shared retrain prefixes (``hal.prefix``): one
    trajectory per group of hybrids, each hybrid's tail from its fork, equal runs copied."""
    from hal import prefix
    from hal.prefix_search import PrefixSearcher

    if "://" in spec.storage_path:
        raise HalError("shared prefixes keep fork checkpoints on a file system that every node can "
                       f"reach; --storage-path {spec.storage_path} is not one: use a shared directory "
                       "or pass --no-share-prefix")
    groups, independent = prefix.plan_groups(runs, trial_name)
    searcher = PrefixSearcher(groups, independent, str(Path(experiment_path(spec)) / prefix.PREFIX_DIR),
                              trial_name)
    tune_config = tune.TuneConfig(search_alg=searcher, num_samples=searcher.total,
                                  max_concurrent_trials=spec.max_concurrent or None, reuse_actors=True,
                                  trial_dirname_creator=trial_label, trial_name_creator=trial_label)
    return tune.Tuner(_trainable(shared, spec), param_space=dict(extra or {}), tune_config=tune_config,
                      run_config=_run_config(spec, [TrialLines(searcher.total)]))


def build_search_tuner(spec: SweepSpec, param_space: dict[str, Any], shared: dict[tuple, Any],
                       search_alg: Any, num_samples: int) -> Any:
    """A ``Tuner`` whose trials a searcher (e.g. OptunaSearch) proposes."""
    tune_config = tune.TuneConfig(search_alg=search_alg, num_samples=num_samples,
                                  max_concurrent_trials=spec.max_concurrent or None, reuse_actors=True,
                                  trial_dirname_creator=searched_trial_label)
    return tune.Tuner(_trainable(shared, spec), param_space=param_space, tune_config=tune_config,
                      run_config=_run_config(spec, [TrialLines(num_samples)]))


def killed_before_first_snapshot(spec: SweepSpec) -> bool:
    """Whether the sweep's folder exists but Tune never saved its state there (its driver died
    first): there is nothing to restore, and starting again in place loses nothing."""
    path = experiment_path(spec)
    # Tune writes tuner.pkl at once but its trials' state only with the first snapshot.
    return "://" not in path and Path(path).is_dir() and not list(Path(path).glob("experiment_state-*.json"))


def restore_tuner(spec: SweepSpec, shared: dict[tuple, Any]) -> Any:
    """Continue an interrupted sweep: unfinished and errored trials resume from their latest
    checkpoints; finished trials are kept as they are."""
    _tune_env()
    path = experiment_path(spec)
    from hal.ray_session import check_restore_permissions

    check_restore_permissions(path, storage_uri(spec.storage_path))
    if not tune.Tuner.can_restore(path):
        raise HalError(f"--resume: no sweep named {spec.name!r} to continue under {spec.storage_path}: "
                       "check --name and --storage-path")
    return tune.Tuner.restore(path, trainable=_trainable(shared, spec), resume_unfinished=True,
                              resume_errored=True, restart_errored=False)


def summarize_results(result_grid: Any, top: int = 5) -> list[str]:
    """Lines for the end of a sweep: errors, then the hybrid settings and the baselines ranked by
    their seed-mean final *validation* F1 (``rank_configurations``); test F1 is the outcome."""
    rows, errors = [], 0
    for result in result_grid:
        if result.error is not None:
            errors += 1
            continue
        metrics = result.metrics or {}
        run = dict(result.config.get("run", {}))
        run.update({k: v for k, v in result.config.items() if k != "run"})
        rows.append((run, metrics))
    return [f"{len(rows)} trials finished, {errors} errored", *rank_configurations(rows, top)]


# Settings that do not make a configuration: replicates, where files live, test hooks.
NOT_CONFIG = ("seed", "data_seed", "data_dir", "cache_dir", "fail_at_round")


def rank_configurations(rows: list[tuple[dict[str, Any], dict[str, Any]]], top: int = 5) -> list[str]:
    """Rank configurations (run settings without the seed) by mean final validation F1 over their
    seeds, ties to fewer training samples; one list for the hybrid, one for the baselines.

    ``rows`` are (run settings, last reported metrics) of finished trials. The final validation
    F1 is ``final_val_f1`` or, as the trainable reports it, the last round's ``val_f1``. The test
    F1 is printed as the outcome and never read for the ranking. A hybrid setting that switched
    in no seed is the retrain run: it is counted, not ranked.
    """
    groups: dict[tuple, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for run, metrics in rows:
        if _final_val_f1(metrics) is not None:
            groups.setdefault(_config_key(run), []).append((run, metrics))
    ranked = []
    for members in groups.values():
        mean = lambda key: _mean([_num(m.get(key)) for _, m in members])  # noqa: E731
        never = all(_num(m.get("switch_round")) is None for _, m in members)
        ranked.append({"run": members[0][0], "n": len(members), "val": _mean([_final_val_f1(m) for _, m in members]),
                       "test": mean("final_test_f1"), "samples": mean("total_train_samples"),
                       "time": mean("total_train_time_s"), "never": never})
    ranked.sort(key=lambda c: (-c["val"], c["samples"] if c["samples"] is not None else math.inf))
    hybrids = [c for c in ranked if c["run"].get("strategy") == "hybrid"]
    switched = [c for c in hybrids if not c["never"]]
    lines = []
    for label, subset in (("hybrid settings", switched[:top]),
                          ("baselines", [c for c in ranked if c["run"].get("strategy") != "hybrid"][:top])):
        if subset:
            lines.append(f"{label}, ranked by mean final validation F1 over seeds "
                         "(test F1 is the outcome, not used to rank):")
            lines += [f"  {_config_name(c['run']):28s} val F1 {c['val']:.4f} ({c['n']} seed{'s' * (c['n'] > 1)})  "
                      f"test F1 {_fmt(c['test'], '.4f')}  {_fmt(c['samples'], ',.0f'):>9s} samples"
                      + ("" if c["time"] is None else f"  {c['time']:.1f}s") for c in subset]
        if label == "hybrid settings" and len(hybrids) > len(switched):
            lines.append(f"  {len(hybrids) - len(switched)} hybrid setting(s) never switched in any seed: "
                         "= retrain, not ranked")
    return lines


def _final_val_f1(metrics: dict[str, Any]) -> float | None:
    value = _num(metrics.get("final_val_f1"))
    return value if value is not None else _num(metrics.get("val_f1"))


def _config_key(run: dict[str, Any]) -> tuple:
    # ε and k mean nothing to a baseline; the monitor does (agreement's stop set and holdout's
    # held-back examples change which examples a retrain run may query)
    unused = ("epsilon", "k") if run.get("strategy") != "hybrid" else ()
    return tuple(sorted((k, str(v)) for k, v in run.items() if k not in NOT_CONFIG and k not in unused))


def _config_name(run: dict[str, Any]) -> str:
    if run.get("strategy") == "hybrid":
        return f"hybrid ε={run.get('epsilon')} k={run.get('k')} q={run.get('query_size')}"
    return f"{run.get('strategy')} q={run.get('query_size')}"


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


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
        # Validation first (it is what the sweep ranks on); test F1 is the outcome.
        print(f"[{time.time() - self.start:6.0f}s] {self.finished}/{self.total or len(trials)} "
              f"{str(trial):40s} val F1 {_fmt(_final_val_f1(m), '.4f')}  "
              f"test F1 {_fmt(_num(m.get('final_test_f1')), '.4f')} (outcome)  "
              f"{_fmt(_num(m.get('total_train_samples')), ',.0f')} samples  "
              f"train {_fmt(_num(m.get('total_train_time_s')), '.1f')}s", flush=True)

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
                        help="results root: local dir, shared file system or URI (default results/); "
                             "--resume unpickles Tune's state from here, so keep it writable only by "
                             "you (a sweep folder group/others can write is refused)")
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



SWEEP_SUMMARY = "sweep_summary.json"


def configuration_results(result_grid: Any) -> list[Any]:
    """The results that are user configurations: a shared-prefix trajectory that is not also the
    retrain baseline only served its group."""
    return [r for r in result_grid
            if not (r.config.get("role") == "trajectory" and not r.config.get("baseline"))]


def write_sweep_summary(spec: SweepSpec, result_grid: Any, shared_prefix: bool) -> dict[str, Any]:
    """Write ``<sweep>/sweep_summary.json``: what the sweep trained (``computed_*``) against what
    its configurations would cost as independent runs (``independent_*``), and per group which
    trials shared a trajectory and tails. Returns it."""
    import json

    from hal import prefix
    from hal.records import atomic_write_text

    trials, groups = [], {}
    for result in result_grid:
        config, metrics = result.config, result.metrics or {}
        name = config.get("name") or trial_name(config.get("run", {}))
        role = config.get("role", "run")
        trials.append({"name": name, "role": role, "baseline": bool(config.get("baseline")),
                       "error": result.error is not None,
                       **{key: _num(metrics.get(key)) for key in ("total_train_samples", "total_train_time_s",
                                                                  "computed_train_samples",
                                                                  "computed_train_time_s")}})
        if role in ("trajectory", "member"):
            group = groups.setdefault(config["group"], {"trajectory": None, "configurations": {}})
            if role == "trajectory":
                group["trajectory"] = name
                group["retrain_baseline"] = bool(config.get("baseline"))
            else:
                group["configurations"][name] = {
                    "switch_round": config.get("fork"),
                    "trained_tail": config.get("source") is None and config.get("fork") is not None,
                    "copied_from": config.get("source")}
    summary = {"sweep": spec.name, "shared_prefix": shared_prefix, **prefix.sweep_spend(trials),
               "trials": len(trials), "errored": sum(t["error"] for t in trials), "groups": groups,
               "per_trial": sorted(trials, key=lambda t: t["name"])}
    summary["computed_fraction"] = (summary["computed_train_samples"] / summary["independent_train_samples"]
                                    if summary["independent_train_samples"] else None)
    path = Path(experiment_path(spec)) / SWEEP_SUMMARY
    if "://" not in spec.storage_path:
        atomic_write_text(path, json.dumps(summary, indent=2) + "\n")
    return summary


def spend_line(summary: dict[str, Any]) -> str:
    """One line on what the sweep trained against independent runs of its configurations."""
    computed, independent = summary["computed_train_samples"], summary["independent_train_samples"]
    if not summary["shared_prefix"] or not independent:
        return f"trained {computed:,} samples ({summary['computed_train_time_s']:.1f} s of training)"
    return (f"shared prefixes: trained {computed:,} samples ({summary['computed_train_time_s']:.1f} s) "
            f"where independent runs of the same {summary['configurations']} configurations train "
            f"{independent:,} ({summary['independent_train_time_s']:.1f} s): "
            f"{computed / independent:.1%} of the samples")
