"""What a sweep trained against what its configurations cost as independent runs:
``<sweep>/sweep_summary.json`` and the closing line about it.

Counted from the files, so a sweep resumed any number of times is counted whole: every finished
configuration's summary says what it costs alone (``total_train_*``) and what its trials trained
themselves (``computed_train_*``); a trajectory that is not a configuration leaves its records in
its group's folder.
"""

from __future__ import annotations

import json
from typing import Any

from hal.core.records import RoundRecord
from hal.sweep import prefix
from hal.sweep.manifest import Manifest, Outcome
from hal.sweep.plan import TRAJECTORY
from hal.sweep.storage import Storage

SWEEP_SUMMARY = "sweep_summary.json"
# On a GPU the trajectory's switch rounds are replayed as computed, but kernels are not
# bit-for-bit deterministic: say what "equal" means.
EQUALITY = {"cpu": "records equal to independent runs field by field, wall-clock fields aside",
            "cuda": "records equal to independent runs up to GPU nondeterminism; switch rounds and the "
                    "shared prefix come from the trajectory"}


def sweep_summary(storage: Storage, manifest: Manifest, outcome: Outcome, shared_prefix: bool,
                  device: str = "cpu") -> dict[str, Any]:
    """The sweep's spend and who shared what, from its files (see the module docstring)."""
    configs = outcome.finished
    computed_samples = sum(int(s.get("computed_train_samples") or 0) for s in configs.values())
    computed_time = sum(float(s.get("computed_train_time_s") or 0.0) for s in configs.values())
    groups: dict[str, dict[str, Any]] = {}
    for name, s in sorted(configs.items()):
        share = s.get("shared_prefix") or {}
        if s.get("plan") == TRAJECTORY:
            groups.setdefault(s.get("group"), {"configurations": {}})["trajectory"] = name
        elif share.get("group"):
            groups.setdefault(share["group"], {"configurations": {}})["configurations"][name] = {
                "switch_round": share.get("switch_round"), "tail_from": share.get("tail_from")}
    root = storage.path(prefix.PREFIX_DIR)
    for group in storage.list_dir(root):
        entry = groups.setdefault(group, {"configurations": {}})
        if "trajectory" in entry:  # the retrain baseline: counted with the configurations
            continue
        last = _last_record(storage, f"{root}/{group}/{prefix.TRAJECTORY_RECORDS}")
        if last is not None:
            entry["trajectory"] = "(not a configuration)"
            computed_samples += last.cum_train_samples
            computed_time += last.cum_train_time_s
    independent_samples = sum(int(s.get("total_train_samples") or 0) for s in configs.values())
    return {
        "sweep": manifest.name, "kind": manifest.kind, "shared_prefix": shared_prefix,
        "configurations": len(configs), "missing": outcome.missing,
        "computed_train_samples": computed_samples,
        "independent_train_samples": independent_samples,
        "computed_train_time_s": computed_time,
        "independent_train_time_s": sum(float(s.get("total_train_time_s") or 0.0) for s in configs.values()),
        "computed_fraction": computed_samples / independent_samples if independent_samples else None,
        "equality": EQUALITY["cuda" if device.startswith("cuda") else "cpu"],
        "groups": groups,
    }


def write_sweep_summary(storage: Storage, summary: dict[str, Any]) -> None:
    """Write ``<sweep>/sweep_summary.json``."""
    storage.write_text(storage.path(SWEEP_SUMMARY), json.dumps(summary, indent=2, default=str) + "\n")


def _last_record(storage: Storage, path: str) -> RoundRecord | None:
    try:
        lines = [line for line in storage.read_text(path).splitlines() if line.strip()]
        return RoundRecord.from_dict(json.loads(lines[-1])) if lines else None
    except (OSError, ValueError, TypeError):
        return None


def spend_line(summary: dict[str, Any]) -> str:
    """One line on what the sweep trained against independent runs of its configurations."""
    computed, independent = summary["computed_train_samples"], summary["independent_train_samples"]
    if not summary["shared_prefix"] or not independent:
        return f"trained {computed:,} samples ({summary['computed_train_time_s']:.1f} s of training)"
    return (f"shared prefixes: trained {computed:,} samples ({summary['computed_train_time_s']:.1f} s) "
            f"where independent runs of the same {summary['configurations']} configurations train "
            f"{independent:,} ({summary['independent_train_time_s']:.1f} s): "
            f"{computed / independent:.1%} of the samples")
