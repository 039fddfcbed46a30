"""Ray Tune ``Tuner``s for a sweep: a grid of independent trials, shared retrain prefixes, or a
searcher's trials; the data prepared once on the driver; Ray started or joined."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from ray import tune

from hal.core.config import make_config
from hal.core.errors import HalError
from hal.core.loop import check_sizes
from hal.data.inputs import prepare, prepare_key
from hal.sweep import prefix
from hal.sweep.naming import searched_trial_label, trial_label, trial_name
from hal.sweep.prefix_search import PrefixSearcher, SampledPrefixSearcher
from hal.sweep.progress import TrialLines
from hal.sweep.ray_session import start_or_join
from hal.sweep.spec import SweepSpec, experiment_path, storage_uri
from hal.sweep.trainable import run_trial


def sampled_prefix_searcher(spec: SweepSpec, sampler: Any, base: dict[str, Any], metric: Any, mode: Any) -> Any:
    """Wrap a searcher that samples switch rules so that samples share retrain trajectories."""
    if "://" in spec.storage_path:
        raise HalError("shared prefixes keep fork checkpoints on a file system that every node can "
                       f"reach; --storage-path {spec.storage_path} is not one: use a shared directory "
                       "or pass --no-share-prefix")
    return SampledPrefixSearcher(sampler, base, list(spec.query_size),
                                 str(Path(experiment_path(spec)) / prefix.PREFIX_DIR), trial_name,
                                 metric=metric, mode=mode)


def drop_prefix_dir(spec: SweepSpec) -> None:
    """Delete a finished search's fork checkpoints (one per round and query size)."""
    shutil.rmtree(Path(experiment_path(spec)) / prefix.PREFIX_DIR, ignore_errors=True)


def prepare_shared(runs: list[dict[str, Any]]) -> dict[tuple, Any]:
    """Load each distinct dataset and compute each learner's inputs once, on the driver; check that
    every trial's pool is big enough before any trial starts."""
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
    """Join ``address`` or start a local Ray watched for leftovers: see ``hal.sweep.ray_session``."""
    start_or_join(address)


def trainable(shared: dict[tuple, Any], spec: SweepSpec):
    resources = {"cpu": spec.cpus_per_trial, "gpu": spec.gpus_per_trial}
    return tune.with_resources(tune.with_parameters(run_trial, prepared=shared), resources)


def tune_env() -> None:
    # Ray's own TensorBoard logger is left out (the trials write their own per-round scalars), and
    # keeping one checkpoint per trial forces a millisecond state snapshot per round: no warning.
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")


def _run_config(spec: SweepSpec, callbacks: list) -> Any:
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    tune_env()
    return tune.RunConfig(
        name=spec.name,
        storage_path=storage_uri(spec.storage_path),
        failure_config=tune.FailureConfig(max_failures=spec.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        callbacks=[JsonLoggerCallback(), CSVLoggerCallback(), *callbacks],
        verbose=0,
    )


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
    return tune.Tuner(trainable(shared, spec), param_space=param_space, tune_config=tune_config,
                      run_config=_run_config(spec, [TrialLines(len(runs))]))


def build_shared_tuner(spec: SweepSpec, runs: list[dict[str, Any]], shared: dict[tuple, Any],
                       extra: dict[str, Any] | None = None) -> Any:
    """A ``Tuner`` that runs ``runs`` with shared retrain prefixes (``hal.sweep.prefix``): one
    trajectory per group of hybrids, each hybrid's tail from its fork, equal runs copied."""
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
    return tune.Tuner(trainable(shared, spec), param_space=dict(extra or {}), tune_config=tune_config,
                      run_config=_run_config(spec, [TrialLines(searcher.total)]))


def build_search_tuner(spec: SweepSpec, param_space: dict[str, Any], shared: dict[tuple, Any],
                       search_alg: Any, num_samples: int) -> Any:
    """A ``Tuner`` whose trials a searcher (e.g. OptunaSearch) proposes."""
    tune_config = tune.TuneConfig(search_alg=search_alg, num_samples=num_samples,
                                  max_concurrent_trials=spec.max_concurrent or None, reuse_actors=True,
                                  trial_dirname_creator=searched_trial_label)
    return tune.Tuner(trainable(shared, spec), param_space=param_space, tune_config=tune_config,
                      run_config=_run_config(spec, [TrialLines(num_samples)]))
