"""Names of trials: their folders under the sweep, their labels in Tune and in printed lines."""

from __future__ import annotations

from typing import Any


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


def config_name(run: dict[str, Any]) -> str:
    if run.get("strategy") == "hybrid":
        return f"hybrid ε={run.get('epsilon')} k={run.get('k')} q={run.get('query_size')}"
    return f"{run.get('strategy')} q={run.get('query_size')}"
