"""Names of trials and configurations: trial folders under the sweep, labels in Tune and in
printed lines (ε and friends shown to the digits that tell them apart)."""

from __future__ import annotations

from typing import Any

from hal.core.config import RunConfig
from hal.sweep.plan import TrialPlan, has_plan

DEFAULT_QUERY = RunConfig.query_strategy


def short(value: Any, digits: int = 4) -> str:
    """A number as few digits as tell it (0.014177183625535023 -> 0.01418, 0.01 -> 0.01)."""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def query_part(run: dict[str, Any], sep: str) -> str:
    """The run's query strategy, when it is not the default (entropy): folder names of sweeps over
    entropy alone stay as they were."""
    name = run.get("query_strategy") or DEFAULT_QUERY
    return "" if name == DEFAULT_QUERY else f"{sep}{name}"


def trial_name(run: dict[str, Any]) -> str:
    """Short, readable trial folder name of a grid configuration (unique within a grid)."""
    if run.get("strategy") == "hybrid":
        head = f"hybrid_eps{run.get('epsilon')}_k{run.get('k')}"
    else:
        head = str(run.get("strategy"))
    return f"{head}_q{run.get('query_size')}{query_part(run, '_')}_s{run.get('seed')}"


def trial_label(trial: Any) -> str:
    """A trial's name in Tune and its folder: the plan's name, so that a trial created again by
    ``--resume`` finds its folder and checkpoint and continues there. Never fails."""
    config = getattr(trial, "config", None) or {}
    if has_plan(config):
        return TrialPlan.from_config(config).name
    return f"trial_{trial.trial_id}"


def config_name(run: dict[str, Any]) -> str:
    """How a configuration is named in printed lines, e.g. ``hybrid ε=0.01418 k=2 q=32``."""
    if run.get("strategy") == "hybrid":
        return f"hybrid ε={short(run.get('epsilon'))} k={run.get('k')} q={run.get('query_size')}{query_part(run, ' ')}"
    return f"{run.get('strategy')} q={run.get('query_size')}{query_part(run, ' ')}"
