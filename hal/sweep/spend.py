"""What a sweep trained against what its configurations cost as independent runs:
``<sweep>/sweep_summary.json`` and the closing line about it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hal.core.files import atomic_write_text
from hal.sweep import prefix
from hal.sweep.naming import trial_name
from hal.sweep.ranking import num
from hal.sweep.spec import SweepSpec, experiment_path

SWEEP_SUMMARY = "sweep_summary.json"


def write_sweep_summary(spec: SweepSpec, result_grid: Any, shared_prefix: bool) -> dict[str, Any]:
    """Write ``<sweep>/sweep_summary.json``: what the sweep trained (``computed_*``) against what
    its configurations would cost as independent runs (``independent_*``), and per group which
    trials shared a trajectory and tails. Returns it."""
    trials, groups = [], {}
    for result in result_grid:
        config, metrics = result.config, result.metrics or {}
        name = config.get("name") or trial_name(config.get("run", {}))
        role = config.get("role", "run")
        trials.append({"name": name, "role": role, "baseline": bool(config.get("baseline")),
                       "error": result.error is not None,
                       **{key: num(metrics.get(key)) for key in ("total_train_samples", "total_train_time_s",
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
