"""What a trial is asked to do: the typed plan a searcher hands to the trainable through Tune's
trial config, and the one way to put it there and read it back.

Roles:

* ``run``: an independent run of its configuration (every trial of ``--no-share-prefix``).
* ``trajectory``: the retrain rounds a group of hybrids shares (``hal.sweep.prefix``). It keeps a
  fork checkpoint where members switch and reports their switch rounds; it is a configuration of
  the sweep itself only when it is also the grid's ``retrain`` baseline (``baseline``).
* ``tail``: a hybrid that starts from the fork after its switch round and trains its warm rounds.
* ``copy``: a hybrid whose run equals another's (``source``: a tail with the same switch round, or
  the trajectory when it never switches); it trains nothing and builds no learner.
* ``orphan``: a hybrid whose trajectory failed for good: it reports that as its error; started
  again by ``--resume`` it runs on its own (see ``hal.sweep.trainable``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from hal.core.config import FIELD_TYPES

RUN, TRAJECTORY, TAIL, COPY, ORPHAN = "run", "trajectory", "tail", "copy", "orphan"
ROLES = (RUN, TRAJECTORY, TAIL, COPY, ORPHAN)
PLAN_KEY = "hal_plan"  # the plan's key in a Tune trial config
PLAN_FILE = "plan.json"  # in each trial folder: the trial's plan (what --resume reads)
NEVER = "never"  # ``source`` of a copy of a member that never switches: the trajectory's records


@dataclass(frozen=True)
class TrialPlan:
    """One trial: its role, its folder name, the run settings of its configuration and, for the
    shared-prefix roles, where its prefix comes from."""

    role: str
    name: str
    run: dict[str, Any]
    group: str | None = None       # the shared trajectory's id (hal.sweep.prefix.group_id)
    prefix_dir: str | None = None  # where the group's forks live, a path on the sweep's storage
    fork: int | None = None        # tail, copy, orphan: the switch round (None: never switches)
    source: str | None = None      # copy: the trial whose records it takes, or NEVER
    members: tuple[tuple[str, dict[str, Any]], ...] = ()  # trajectory: (name, run) of each member
    baseline: bool = False         # trajectory: it is also the grid's retrain configuration
    every_fork: bool = False       # trajectory: a fork after every round (sampled switch rules)
    cause: str | None = None       # orphan: why the trajectory failed
    sample: str | None = None      # a searcher's own id for a sampled configuration

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown trial role {self.role!r}")

    @property
    def is_configuration(self) -> bool:
        """Whether the trial stands for a configuration of the sweep (a trajectory serves its
        group, unless it is also the retrain baseline)."""
        return self.role != TRAJECTORY or self.baseline

    def to_config(self) -> dict[str, Any]:
        """The Tune trial config that carries this plan (JSON-able: Tune saves it)."""
        plan = dataclasses.asdict(self)
        plan["members"] = [list(m) for m in self.members]
        return {PLAN_KEY: plan}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "TrialPlan":
        """The plan in a Tune trial config. Run settings a searcher sampled at the top level (e.g.
        ε and k from Optuna) override the plan's; other top-level keys are not run settings."""
        plan = dict(config[PLAN_KEY])
        plan["members"] = tuple((name, dict(run)) for name, run in plan.get("members", ()))
        sampled = {k: v for k, v in config.items() if k in FIELD_TYPES}
        plan["run"] = {**plan["run"], **sampled}
        return cls(**plan)

    def replace(self, **changes: Any) -> "TrialPlan":
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)


def has_plan(config: dict[str, Any] | None) -> bool:
    """Whether a Tune trial config carries a HAL plan."""
    return bool(config) and PLAN_KEY in config

