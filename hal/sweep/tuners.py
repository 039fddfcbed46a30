"""The Ray Tune ``Tuner`` of a sweep: a searcher that hands out trial plans (``hal.sweep.plan``),
the trainable with its resources, and the run settings; the data prepared once on the driver.

Every sweep goes through a searcher of ``hal.sweep.prefix_search``: a grid with shared prefixes
(``PrefixSearcher``), a grid of independent runs (the same searcher without groups), or sampled
configurations (``SampledPrefixSearcher``, with or without shared prefixes). Tune may start as many
trials at once as the cluster has slots for (``max_concurrent_trials``): with a searcher and no
such limit it would keep only one trial pending at a time and start trials one by one.
"""

from __future__ import annotations

import os
from typing import Any

from ray import tune

from hal.core.config import make_config
from hal.core.loop import check_sizes
from hal.data.inputs import prepare, prepare_key
from hal.sweep import prefix
from hal.sweep.naming import trial_label, trial_name
from hal.sweep.plan import COPY, ORPHAN, TrialPlan
from hal.sweep.prefix_search import PrefixSearcher, SampledPrefixSearcher
from hal.sweep.progress import TrialLines
from hal.sweep.ray_session import start_or_join, trial_slots
from hal.sweep.spec import SweepSpec, experiment_path, storage_uri
from hal.sweep.storage import Storage, open_storage
from hal.sweep.trainable import run_trial


def sweep_storage(spec: SweepSpec) -> Storage:
    """The sweep's folder on its storage (a local or shared folder, or an object store)."""
    return open_storage(experiment_path(spec))


def prefix_dir(storage: Storage) -> str:
    """Where shared-prefix groups keep their forks and trajectory records."""
    return storage.path(prefix.PREFIX_DIR)


def grid_searcher(runs: list[dict[str, Any]], share_prefix: bool, storage: Storage) -> PrefixSearcher:
    """The searcher of a grid sweep: hybrids grouped by shared prefix, or every run on its own."""
    groups, independent = prefix.plan_groups(runs, trial_name) if share_prefix else ([], runs)
    return PrefixSearcher(groups, independent, storage, prefix_dir(storage), trial_name)


def sampled_searcher(spec: SweepSpec, sampler: Any, base: dict[str, Any], num_samples: int, share_prefix: bool,
                     storage: Storage, metric: Any, mode: Any, done: list[TrialPlan] | None = None
                     ) -> SampledPrefixSearcher:
    """The searcher of a sampled sweep (e.g. Optuna over ε, k, the query size and strategy)."""
    choices: dict[str, list[Any]] = {"query_size": list(spec.query_size)}
    if spec.query_strategy is not None:
        choices["query_strategy"] = list(spec.query_strategy)
    return SampledPrefixSearcher(sampler, base, choices, num_samples, storage, prefix_dir(storage),
                                 trial_name, metric=metric, mode=mode, done=done, share_prefix=share_prefix)


def drop_prefix_dir(storage: Storage) -> None:
    """Delete a finished sweep's remaining fork checkpoints and trajectory records."""
    storage.delete_dir(prefix_dir(storage))


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


def trainable(shared: dict[tuple, Any], spec: SweepSpec) -> Any:
    """``run_trial`` with the prepared inputs and each trial's resources: copies and orphans train
    nothing, so they never hold a GPU."""
    def resources(config: dict[str, Any]) -> dict[str, float]:
        idle = TrialPlan.from_config(config).role in (COPY, ORPHAN)
        return {"cpu": spec.cpus_per_trial, "gpu": 0 if idle else spec.gpus_per_trial}

    return tune.with_resources(tune.with_parameters(run_trial, prepared=shared), resources)


def tune_env() -> None:
    # Ray's own TensorBoard logger is left out (the trials write their own per-round scalars), and
    # keeping one checkpoint per trial forces a millisecond state snapshot per round: no warning.
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    # The legacy reporter at verbose=0 prints nothing: no config box, no "View detailed results";
    # the sweep prints its own line per configuration.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")


def build_tuner(spec: SweepSpec, searcher: Any, total: int, shared: dict[tuple, Any], configurations: int,
                done_before: frozenset[str] = frozenset(), extra: dict[str, Any] | None = None,
                callbacks: list | None = None) -> tune.Tuner:
    """The sweep's ``Tuner``: ``total`` trials proposed by ``searcher`` for ``configurations``
    configurations (``done_before`` of them finished by an earlier run of the sweep), as many at
    once as the cluster has slots for (or ``--max-concurrent``). ``extra`` goes into every trial
    config (test hooks)."""
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    tune_env()
    concurrent = spec.max_concurrent or trial_slots(spec.cpus_per_trial, spec.gpus_per_trial)
    if concurrent is None:  # autoscaling: no cap, but more than Tune's one pending trial
        os.environ.setdefault("TUNE_MAX_PENDING_TRIALS_PG", "32")
    tune_config = tune.TuneConfig(search_alg=searcher, num_samples=total, max_concurrent_trials=concurrent,
                                  reuse_actors=True, trial_dirname_creator=trial_label,
                                  trial_name_creator=trial_label)
    run_config = tune.RunConfig(
        name=spec.name,
        storage_path=storage_uri(spec.storage_path),
        failure_config=tune.FailureConfig(max_failures=spec.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        callbacks=[JsonLoggerCallback(), CSVLoggerCallback(), TrialLines(configurations, done_before),
                   *(callbacks or [])],
        verbose=0,
    )
    return tune.Tuner(trainable(shared, spec), param_space=dict(extra or {}), tune_config=tune_config,
                      run_config=run_config)


def grid_tuner(spec: SweepSpec, runs: list[dict[str, Any]], shared: dict[tuple, Any], share_prefix: bool = False,
               extra: dict[str, Any] | None = None, callbacks: list | None = None) -> tune.Tuner:
    """The ``Tuner`` of a grid sweep, without the manifest and closing work of a sweep script
    (benchmarks and tests drive Tune directly)."""
    searcher = grid_searcher(runs, share_prefix, sweep_storage(spec))
    return build_tuner(spec, searcher, searcher.total, shared, len(runs), extra=extra, callbacks=callbacks)
