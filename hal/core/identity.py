"""What makes two runs the same configuration, and what makes them share their retrain rounds.
The one place that decides it: shared-prefix planning, the sweep's ranking, analysis and the
benchmarks all ask here.

A *configuration* is a run's settings without its replicate and file locations (seed, data seed,
data and cache folders) and without the settings it never uses (ε and k of a baseline, the
warm-start settings of ``retrain``, a monitor's own knobs under another monitor). Runs that differ
only in those are replicates of one configuration.
"""

from __future__ import annotations

from typing import Any, Mapping

from hal.core.config import RunConfig, make_config

# Replicates and where files live: never part of a configuration.
REPLICATE_KEYS = ("seed", "data_seed")
PATH_KEYS = ("data_dir", "cache_dir")
NOT_CONFIG = (*REPLICATE_KEYS, *PATH_KEYS)
# Settings that only decide *when* a hybrid switches: they never change its retrain rounds.
RULE_KEYS = ("epsilon", "k", "switch_rule", "switch_window")
# Settings only warm-started rounds use.
WARM_START_KEYS = ("finetune_epochs", "finetune_lr", "replay_fraction", "shrink", "perturb")
# A monitor's own knobs (the monitor itself always counts: holdout and agreement change which
# examples any strategy may query or train on).
MONITOR_KEYS = {"holdout": ("holdout_fraction",), "agreement": ("stop_set_size",)}


def unused_settings(strategy: str | None, monitor: str | None, stop_set: str | None = None) -> set[str]:
    """The settings a run with this strategy, monitor and stop-set setting never reads."""
    unused: set[str] = set()
    if strategy != "hybrid":
        unused.update(RULE_KEYS)
    if strategy == "retrain":
        unused.update(WARM_START_KEYS)
    for name, keys in MONITOR_KEYS.items():
        if monitor != name:
            unused.update(keys)
    if stop_set == "shared":  # every run holds the stop set out: its size counts for any monitor
        unused.discard("stop_set_size")
    if monitor == "agreement":  # holds its stop set out whatever ``stop_set`` says
        unused.add("stop_set")
    return unused


def settings_of(run: RunConfig | Mapping[str, Any]) -> dict[str, Any]:
    """Every setting of a run, defaults resolved (a run dict holds only what it overrides)."""
    cfg = run if isinstance(run, RunConfig) else make_config(dict(run))
    return cfg.resolved().to_dict()


def config_key(run: RunConfig | Mapping[str, Any]) -> tuple:
    """The configuration a run belongs to, as a hashable key: equal for replicates (other seeds)
    and for runs that differ only in settings they do not use."""
    settings = settings_of(run)
    skip = set(NOT_CONFIG) | unused_settings(settings["strategy"], settings["monitor"],
                                             settings.get("stop_set"))
    return tuple(sorted((k, repr(v)) for k, v in settings.items() if k not in skip))


def prefix_key(run: RunConfig | Mapping[str, Any]) -> tuple:
    """What decides a run's retrain rounds: a hybrid (until it switches) and the retrain run with
    equal keys train the same rounds. Everything but the strategy, the switch rule, the
    warm-start settings and the file locations; the seed counts."""
    settings = settings_of(run)
    skip = {"strategy", *RULE_KEYS, *WARM_START_KEYS, *PATH_KEYS}
    return tuple(sorted((k, repr(v)) for k, v in settings.items() if k not in skip))
