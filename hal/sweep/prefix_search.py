"""The Tune ``Searcher`` that runs a sweep with shared prefixes (``hal.sweep.prefix``).

It first proposes one trajectory trial per group and every independent baseline. A trajectory
reports its members' switch rounds with each round; as soon as a switch round is known (the fork
is already on disk), the searcher proposes that member's tail, so tails run while trajectories go
on. Members with the same switch round wait for the first one's tail and then copy its records;
members that never switch copy the trajectory once it has finished. Tune creates, schedules,
retries, checkpoints and restores all these trials; this class only decides what comes next.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from typing import Any

from ray.tune.search import Searcher

from hal.core.records import read_records
from hal.core.switch import replay
from hal.sweep import prefix


@dataclass
class _GroupState:
    group: prefix.Group
    switches: dict[str, int | None] = field(default_factory=dict)
    trajectory_done: bool = False
    failed: bool = False
    scheduled: set[str] = field(default_factory=set)  # members proposed so far
    tail_of: dict[int, str] = field(default_factory=dict)  # switch round -> member training it
    tails_done: set[int] = field(default_factory=set)
    waiting: dict[int, list[str]] = field(default_factory=dict)  # switch round -> copies to propose


class _SavedSearcher(Searcher):
    """A searcher whose whole state is its attributes: Tune saves it with every experiment
    snapshot and restores it on ``--resume``."""

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as handle:
            pickle.dump(self.__dict__, handle)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as handle:
            self.__dict__.update(pickle.load(handle))


class PrefixSearcher(_SavedSearcher):
    """Proposes trajectories, independent runs, tails and copies (see the module docstring).

    ``make_config(role, run, **fields)`` builds a trial config; ``prefix_dir`` holds the forks.
    """

    def __init__(self, groups: list[prefix.Group], independent: list[dict[str, Any]], prefix_dir: str,
                 name_of) -> None:
        super().__init__()
        self.prefix_dir = prefix_dir
        self.name_of = name_of
        self.groups = {g.key: _GroupState(g) for g in groups}
        self.queue: list[dict[str, Any]] = [self._trajectory(g) for g in groups]
        self.queue += [{"run": run, "name": name_of(run)} for run in independent]
        self.live: dict[str, dict[str, Any]] = {}  # trial id -> its config
        self.not_run: list[str] = []
        # How many trials the sweep will have (trajectories that are not baselines count too).
        self.total = len(self.queue) + sum(len(g.members) for g in groups)

    def _trajectory(self, group: prefix.Group) -> dict[str, Any]:
        return {"run": group.trajectory, "name": group.name, "role": "trajectory", "group": group.key,
                "baseline": group.baseline, "prefix_dir": self.prefix_dir,
                "members": [[m.name, m.run] for m in group.members]}

    def _member(self, state: _GroupState, name: str, fork: int | None, source: str | None) -> dict[str, Any]:
        run = next(m.run for m in state.group.members if m.name == name)
        state.scheduled.add(name)
        return {"run": run, "name": name, "role": "member", "group": state.group.key, "fork": fork,
                "source": source, "prefix_dir": self.prefix_dir}

    # --- Searcher API --------------------------------------------------------------------------

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.queue:
            config = self.queue.pop(0)
            self.live[trial_id] = config
            return config
        if any(self._outstanding(s) for s in self.groups.values()):
            return None  # wait for a trajectory or tail to tell what comes next
        return Searcher.FINISHED

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        config = self.live.get(trial_id)
        if config is not None and config.get("role") == "trajectory":
            self._learn(self.groups[config["group"]], result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:
        config = self.live.pop(trial_id, None)
        if config is None or config.get("role") not in ("trajectory", "member"):
            return
        state = self.groups[config["group"]]
        if config["role"] == "trajectory":
            if error:
                state.failed = True
                self.not_run += [m.name for m in state.group.members if m.name not in state.scheduled]
                return
            self._learn(state, result or {})
            state.trajectory_done = True
            never = [m.name for m in state.group.members
                     if state.switches.get(m.name) is None and m.name not in state.scheduled]
            self.queue += [self._member(state, name, None, prefix.NEVER) for name in never]
        elif config["source"] is None:
            fork = config["fork"]
            waiting = state.waiting.pop(fork, [])
            if error and waiting:  # let the next member with this switch round train the tail
                self.queue.append(self._member(state, waiting[0], fork, None))
                state.tail_of[fork] = waiting[0]
                state.waiting[fork] = waiting[1:]
                return
            state.tails_done.add(fork)
            if not error:
                prefix.drop_fork(self.prefix_dir, state.group.key, fork)
            self.queue += [self._member(state, name, fork, None if error else config["name"])
                           for name in waiting]

    def _learn(self, state: _GroupState, result: dict[str, Any]) -> None:
        """Propose the tails whose switch rounds the trajectory has just reported."""
        text = result.get("prefix_switches")
        if not isinstance(text, str):
            return
        state.switches = json.loads(text)
        for member in state.group.members:
            fork = state.switches.get(member.name)
            if fork is None or member.name in state.scheduled:
                continue
            if fork not in state.tail_of:
                state.tail_of[fork] = member.name
                self.queue.append(self._member(state, member.name, fork, None))
            elif fork in state.tails_done:
                self.queue.append(self._member(state, member.name, fork, state.tail_of[fork]))
            else:
                state.scheduled.add(member.name)
                state.waiting.setdefault(fork, []).append(member.name)

    def _outstanding(self, state: _GroupState) -> bool:
        if state.waiting:  # copies wait for a running tail, even when the trajectory failed
            return True
        return not state.failed and (len(state.scheduled) < len(state.group.members)
                                     or not state.trajectory_done)

    def shared_by_group(self) -> list[dict[str, Any]]:
        """Per group: its trajectory, and which member trained or copied each switch round."""
        out = []
        for state in self.groups.values():
            rounds: dict[str, list[str]] = {}
            for member in state.group.members:
                fork = state.switches.get(member.name)
                rounds.setdefault(prefix.NEVER if fork is None else str(fork), []).append(member.name)
            out.append({"trajectory": state.group.name, "retrain_baseline": state.group.baseline,
                        "members": len(state.group.members),
                        "by_switch_round": {r: {"tail": state.tail_of.get(int(r)) if r != prefix.NEVER else None,
                                                "configurations": names} for r, names in rounds.items()},
                        "failed": state.failed})
        return out


class SampledPrefixSearcher(_SavedSearcher):
    """Shared prefixes for a searcher that samples switch rules (e.g. ``OptunaSearch`` over ε, k
    and the query size): one full retrain trajectory per query size runs first and keeps a fork
    after *every* round (a sampled rule may switch anywhere); each sampled configuration then
    costs only its tail, or nothing when an earlier sample switched at the same round or when it
    never switches. ``sampler`` sees only the sampled trials and their results.

    ``base`` is the run settings every trial shares; ``query_sizes`` the sampler's choices.
    """

    def __init__(self, sampler: Searcher, base: dict[str, Any], query_sizes: list[int], prefix_dir: str,
                 name_of, metric: Any = None, mode: Any = None) -> None:
        super().__init__(metric=metric, mode=mode)
        self.sampler = sampler
        self.base = base
        self.prefix_dir = prefix_dir
        self.name_of = name_of
        self.trajectories: dict[str, dict[str, Any]] = {}
        for q in query_sizes:
            run = {**base, "query_size": q, "strategy": prefix.RETRAIN}
            key = prefix.group_key({**run, "strategy": prefix.HYBRID})
            self.trajectories[key] = {"run": run, "name": "trajectory_" + name_of(run).removeprefix("retrain_"),
                                      "role": "trajectory", "group": key, "baseline": False,
                                      "keep_every_fork": True, "prefix_dir": prefix_dir, "members": []}
        self.queue = list(self.trajectories.values())
        self.records: dict[str, list] = {}  # group -> the finished trajectory's records
        self.live: dict[str, dict[str, Any]] = {}
        self.tails: dict[tuple[str, int | None], str] = {}  # (group, switch round) -> trial that has it
        self.failed = False

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return self.sampler.set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.queue:
            config = self.queue.pop(0)
            self.live[trial_id] = config
            return config
        if self.failed:
            return Searcher.FINISHED
        if len(self.records) < len(self.trajectories):
            return None  # sampled rules need the whole trajectory
        sampled = self.sampler.suggest(trial_id)
        if not isinstance(sampled, dict):
            return sampled
        run = {**self.base, **sampled, "strategy": prefix.HYBRID}
        group = prefix.group_key(run)
        fork = replay(prefix.member_trigger(run), self.records[group]).switch_round
        source = prefix.NEVER if fork is None else self.tails.get((group, fork))
        name = f"{self.name_of(run)}_{trial_id}"
        config = {**sampled, "run": run, "name": name, "role": "member", "group": group, "fork": fork,
                  "source": source, "prefix_dir": self.prefix_dir}
        self.live[trial_id] = config
        return config

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if self.live.get(trial_id, {}).get("role") == "member":
            self.sampler.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:
        config = self.live.pop(trial_id, None)
        if config is None:
            return
        if config["role"] == "trajectory":
            if error:
                self.failed = True
                return
            path = prefix.group_dir(self.prefix_dir, config["group"]) / prefix.TRAJECTORY_RECORDS
            self.records[config["group"]] = read_records(path)
            return
        if not error and config["source"] is None:
            self.tails.setdefault((config["group"], config["fork"]), config["name"])
        self.sampler.on_trial_complete(trial_id, result=result, error=error)
