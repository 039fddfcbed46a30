"""Shared-prefix sweeps: one retrain *trajectory* per group of hybrid configurations.

Until it switches, a hybrid run is the retrain run with the same settings and seed (same queries,
weights and records). So the hybrids of a sweep that differ only in their switch-rule settings
(ε, k, ...) form a *group*: one trajectory trial trains the retrain rounds, replays every member's
switch rule on its monitor series after each round and keeps a *fork* checkpoint at each round
where some member switches. Each member then needs only its warm-started tail, started from its
fork; members with the same switch round have identical runs, so one computes the tail and the
others copy its records. Every member still gets the complete files an independent run writes.

This module is the plain logic (no Ray): grouping, rule replay, fork files, re-flagging the prefix
records, and the sweep's spend. ``hal.sweep.prefix_search`` turns it into Tune trials.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hal.core.checkpoint import CHECKPOINT_FILE
from hal.core.config import make_config
from hal.core.errors import HalError
from hal.core.files import atomic_write_text
from hal.core.records import RECORDS_FILE, RoundRecord, read_records, records_text
from hal.core.switch import SwitchTrigger, new_trigger, replay

HYBRID, RETRAIN = "hybrid", "retrain"
# Settings that only decide *when* a hybrid switches: they never change its retrain rounds.
RULE_KEYS = ("epsilon", "k", "switch_rule", "switch_window")
PREFIX_DIR = "_prefix"  # under the sweep directory: fork checkpoints and trajectory records
TRAJECTORY_RECORDS = "trajectory.jsonl"
NEVER = "never"  # switch-round key of members that never switch


@dataclass
class Member:
    """One hybrid configuration of a group: its trial name and run settings."""

    name: str
    run: dict[str, Any]


@dataclass
class Group:
    """Hybrids that differ only in their switch rule, and the trajectory they share.

    ``trajectory`` is the run the trajectory trains (strategy ``retrain``); ``baseline`` is True
    when that run is also a ``retrain`` trial of the sweep (then it runs every round and writes
    the user-facing files); otherwise it stops once every member has switched.
    """

    key: str
    name: str
    trajectory: dict[str, Any]
    baseline: bool
    members: list[Member] = field(default_factory=list)


def group_key(run: dict[str, Any]) -> str:
    """A short id shared by runs that train the same retrain rounds: every setting but the
    strategy and the switch rule."""
    skip = {"strategy", *RULE_KEYS}
    settings = {k: v for k, v in sorted(run.items()) if k not in skip}
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:10]


def plan_groups(runs: list[dict[str, Any]], name_of) -> tuple[list[Group], list[dict[str, Any]]]:
    """Split a sweep's trial runs into prefix-sharing groups and runs that train on their own.

    A ``retrain`` run becomes the trajectory of the hybrids with its settings; ``finetune`` and
    ``new_only`` runs, and retrain runs without hybrids, stay independent trials.
    """
    groups: dict[str, Group] = {}
    for run in runs:
        if run.get("strategy") == HYBRID:
            key = group_key(run)
            if key not in groups:
                trajectory = {k: v for k, v in run.items() if k not in RULE_KEYS}
                trajectory["strategy"] = RETRAIN
                groups[key] = Group(key, "trajectory_" + name_of(trajectory).removeprefix("retrain_"),
                                    trajectory, baseline=False)
            groups[key].members.append(Member(name_of(run), run))
    independent = []
    for run in runs:
        if run.get("strategy") == HYBRID:
            continue
        group = groups.get(group_key(run)) if run.get("strategy") == RETRAIN else None
        if group is not None and not group.baseline:
            group.trajectory, group.baseline, group.name = run, True, name_of(run)
        else:
            independent.append(run)
    return list(groups.values()), independent


def member_trigger(run: dict[str, Any]) -> SwitchTrigger:
    """A fresh switch trigger with the member's rule settings."""
    return new_trigger(make_config(run).resolved())


def switch_rounds(members: list[Member], records: list[RoundRecord]) -> dict[str, int | None]:
    """Each member's switch round on a trajectory's records so far (None: not switched yet)."""
    return {m.name: replay(member_trigger(m.run), records).switch_round for m in members}


def reflag(records: list[RoundRecord], switch_round: int | None) -> list[RoundRecord]:
    """The trajectory's records as the hybrid that switched after ``switch_round`` wrote them:
    identical but for ``switched``, 1 from the round the switch was decided."""
    return [dataclasses.replace(r, switched=int(switch_round is not None and r.round >= switch_round))
            for r in records]


# --- files under <sweep>/_prefix/<group>/ -----------------------------------------------------


def group_dir(prefix_dir: str | Path, group: str) -> Path:
    return Path(prefix_dir) / group


def fork_dir(prefix_dir: str | Path, group: str, round_index: int) -> Path:
    """Where the fork checkpoint after ``round_index`` lives (``checkpoint.pt`` inside)."""
    return group_dir(prefix_dir, group) / f"fork_{round_index:04d}"


def load_fork(prefix_dir: str | Path, group: str, round_index: int) -> dict[str, Any]:
    """The fork checkpoint after ``round_index``; a missing one is a ``HalError`` naming it."""
    path = fork_dir(prefix_dir, group, round_index) / CHECKPOINT_FILE
    if not path.is_file():
        raise HalError(f"fork checkpoint {path} (round {round_index} of trajectory {group}) is missing: "
                       "it was deleted or the storage path is not shared; rerun the sweep with "
                       "--no-share-prefix or under a new --name")
    return torch.load(path, weights_only=True)


def drop_fork(prefix_dir: str | Path, group: str, round_index: int) -> None:
    """Delete a fork checkpoint no tail needs any more."""
    shutil.rmtree(fork_dir(prefix_dir, group, round_index), ignore_errors=True)


def write_trajectory(prefix_dir: str | Path, group: str, records: list[RoundRecord]) -> None:
    """The trajectory's records so far (members that never switch copy them)."""
    atomic_write_text(group_dir(prefix_dir, group) / TRAJECTORY_RECORDS, records_text(records))


def read_source_records(prefix_dir: str | Path, group: str, source: str, sweep_dir: Path) -> list[RoundRecord]:
    """The complete records a copy takes: the trajectory's, or a sibling member's trial files."""
    path = (group_dir(prefix_dir, group) / TRAJECTORY_RECORDS if source == NEVER
            else sweep_dir / source / RECORDS_FILE)
    if not path.is_file():
        raise HalError(f"records {path} to share are missing: rerun the sweep with --no-share-prefix "
                       "or under a new --name")
    return [RoundRecord.from_dict(r) for r in read_records(path)]


# --- what the sweep spent -----------------------------------------------------------------------


def sweep_spend(trials: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over a sweep's trials from their last reported results.

    Each entry carries ``name``, ``role``, ``total_train_samples``/``total_train_time_s`` (what the
    configuration costs alone) and ``computed_train_samples``/``computed_train_time_s`` (what this
    trial trained itself). Trajectories that are not user configurations count only as computed.
    """
    configs = [t for t in trials if t.get("role") != "trajectory" or t.get("baseline")]
    return {
        "configurations": len(configs),
        "computed_train_samples": int(sum(t.get("computed_train_samples") or 0 for t in trials)),
        "independent_train_samples": int(sum(t.get("total_train_samples") or 0 for t in configs)),
        "computed_train_time_s": float(sum(t.get("computed_train_time_s") or 0.0 for t in trials)),
        "independent_train_time_s": float(sum(t.get("total_train_time_s") or 0.0 for t in configs)),
    }


# Settings a fork's trajectory and the member continuing it must share (all but the strategy,
# the switch rule and what only warm-started rounds use).
WARM_START_KEYS = ("finetune_epochs", "finetune_lr", "replay_fraction", "shrink", "perturb")


def start_from_fork(loop, ckpt: dict[str, Any], round_index: int, name: str) -> None:
    """Put ``loop`` (a member's loop) in the state of the trajectory after ``round_index``, with
    the prefix records flagged as the member's own; ``HalError`` if the fork does not fit."""
    own = loop.cfg.to_dict()
    skip = {"strategy", *RULE_KEYS, *WARM_START_KEYS}
    differ = sorted(k for k, v in ckpt["config"].items() if k not in skip and own.get(k) != v)
    if differ or ckpt["next_round"] != round_index + 1:
        raise HalError(f"fork after round {round_index} does not belong to {name} "
                       f"(differs in {', '.join(differ) or 'round'}): rerun with --no-share-prefix")
    loop.restore(ckpt, check_config=False)
    records = loop.state.records
    trigger = replay(new_trigger(loop.cfg), records)
    if trigger.switch_round != round_index:
        raise HalError(f"{name} switches after round {trigger.switch_round}, not {round_index}, on the "
                       "fork's records: rerun with --no-share-prefix")
    loop.state.trigger = trigger
    loop.state.records = reflag(records, round_index)
