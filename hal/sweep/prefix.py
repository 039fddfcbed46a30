"""Shared-prefix sweeps: one retrain *trajectory* per group of hybrid configurations.

Until it switches, a hybrid run is the retrain run with the same settings and seed (same queries,
weights and records). So the hybrids of a sweep whose retrain rounds are the same
(``hal.core.identity.prefix_key``: they differ only in their switch rule or warm-start settings)
form a *group*: one trajectory trial trains the retrain rounds, replays every member's switch rule
on its signal series after each round and keeps a *fork* checkpoint at each round where some member
switches. Each member then needs only its warm-started tail, started from its fork; members with
the same switch round and warm-start settings have identical runs, so one computes the tail and the
others copy its records. Every member still gets the complete files an independent run writes.

This module is the plain logic (no Ray): grouping, rule replay, and the group's files under
``<sweep>/_prefix/<group>/`` on the sweep's storage. ``hal.sweep.prefix_search`` turns it into
Tune trials.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

from hal.core.checkpoint import CHECKPOINT_FILE
from hal.core.config import RunConfig, make_config
from hal.core.identity import RULE_KEYS, WARM_START_KEYS, prefix_key
from hal.core.records import RECORDS_FILE, RoundRecord, records_text
from hal.core.switch import SwitchTrigger, new_trigger, replay
from hal.sweep.plan import NEVER
from hal.sweep.storage import Storage

HYBRID, RETRAIN = "hybrid", "retrain"
PREFIX_DIR = "_prefix"  # under the sweep folder: fork checkpoints and trajectory records
TRAJECTORY_RECORDS = "trajectory.jsonl"


@dataclass
class Member:
    """One hybrid configuration of a group: its trial name and run settings."""

    name: str
    run: dict[str, Any]


@dataclass
class Group:
    """Hybrids whose retrain rounds are the same, and the trajectory they share.

    ``trajectory`` is the run the trajectory trains (strategy ``retrain``); ``baseline`` is True
    when that run is also a ``retrain`` configuration of the sweep (then it runs every round and
    writes the user-facing files); otherwise it stops once every member has switched.
    """

    key: str
    name: str
    trajectory: dict[str, Any]
    baseline: bool
    members: list[Member] = field(default_factory=list)


def group_id(run: dict[str, Any]) -> str:
    """A short id shared by the runs that train the same retrain rounds."""
    return hashlib.sha1(repr(prefix_key(run)).encode()).hexdigest()[:10]


def trajectory_run(run: dict[str, Any]) -> dict[str, Any]:
    """The retrain run a hybrid's prefix is."""
    return {**{k: v for k, v in run.items() if k not in (*RULE_KEYS, *WARM_START_KEYS)}, "strategy": RETRAIN}


def plan_groups(runs: list[dict[str, Any]], name_of: Callable[[dict[str, Any]], str]
                ) -> tuple[list[Group], list[dict[str, Any]]]:
    """Split a sweep's trial runs into prefix-sharing groups and runs that train on their own.

    A ``retrain`` run becomes the trajectory of the hybrids with its prefix; ``finetune`` and
    ``new_only`` runs, and retrain runs without hybrids, stay independent trials.
    """
    groups: dict[str, Group] = {}
    for run in runs:
        if run.get("strategy") == HYBRID:
            key = group_id(run)
            if key not in groups:
                trajectory = trajectory_run(run)
                groups[key] = Group(key, "trajectory_" + name_of(trajectory).removeprefix("retrain_"),
                                    trajectory, baseline=False)
            groups[key].members.append(Member(name_of(run), run))
    independent = []
    for run in runs:
        if run.get("strategy") == HYBRID:
            continue
        group = groups.get(group_id(run)) if run.get("strategy") == RETRAIN else None
        if group is not None and not group.baseline:
            group.trajectory, group.baseline, group.name = run, True, name_of(run)
        else:
            independent.append(run)
    return list(groups.values()), independent


def member_trigger(run: dict[str, Any]) -> SwitchTrigger:
    """A fresh switch trigger with the member's rule settings."""
    return new_trigger(make_config(run).resolved())


def switch_rounds(members: list[tuple[str, dict[str, Any] | RunConfig]], records: list[RoundRecord]
                  ) -> dict[str, int | None]:
    """Each member's switch round on a trajectory's records so far (None: not switched yet).
    ``members`` give run settings, or resolved configs (cheaper when asked every round)."""
    return {name: replay(new_trigger(run) if isinstance(run, RunConfig) else member_trigger(run),
                         records).switch_round for name, run in members}


def tail_key(run: dict[str, Any], switch_round: int | None) -> tuple:
    """Members with equal keys run identical tails: the same fork and the same warm rounds."""
    settings = make_config(run).resolved().to_dict()
    return (switch_round, tuple((k, repr(settings[k])) for k in WARM_START_KEYS))


# --- files under <sweep>/_prefix/<group>/ -----------------------------------------------------


def group_path(prefix_dir: str, group: str) -> str:
    """A group's folder: its forks and its trajectory's records."""
    return f"{prefix_dir.rstrip('/')}/{group}"


def fork_path(prefix_dir: str, group: str, round_index: int) -> str:
    """Where the fork checkpoint after ``round_index`` lives."""
    return f"{group_path(prefix_dir, group)}/fork_{round_index:04d}/{CHECKPOINT_FILE}"


def save_fork(storage: Storage, prefix_dir: str, group: str, round_index: int, ckpt: dict[str, Any]) -> None:
    """Keep the trajectory's state after ``round_index`` for the tails that switch there."""
    storage.save_torch(fork_path(prefix_dir, group, round_index), ckpt)


def load_fork(storage: Storage, prefix_dir: str, group: str, round_index: int) -> dict[str, Any]:
    """The fork checkpoint after ``round_index``. Raises ``OSError`` when it is missing and
    another exception when it is damaged: either way the caller runs the prefix again."""
    return storage.load_torch(fork_path(prefix_dir, group, round_index))


def drop_fork(storage: Storage, prefix_dir: str, group: str, round_index: int) -> None:
    """Delete a fork checkpoint no tail needs any more."""
    storage.delete_dir(fork_path(prefix_dir, group, round_index).rsplit("/", 1)[0])


def write_trajectory(storage: Storage, prefix_dir: str, group: str, records: list[RoundRecord]) -> None:
    """The trajectory's records so far (members that never switch copy them)."""
    storage.write_text(f"{group_path(prefix_dir, group)}/{TRAJECTORY_RECORDS}", records_text(records))


def source_records_path(prefix_dir: str, group: str, source: str, sweep_path: str) -> str:
    """Where a copy finds the records it takes: the trajectory's, or a sibling tail's trial files."""
    if source == NEVER:
        return f"{group_path(prefix_dir, group)}/{TRAJECTORY_RECORDS}"
    return f"{sweep_path.rstrip('/')}/{source}/{RECORDS_FILE}"
