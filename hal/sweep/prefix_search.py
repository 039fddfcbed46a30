"""The Tune ``Searcher``s that run sweeps with shared prefixes (``hal.sweep.prefix``).

``PrefixSearcher`` (a grid) first proposes one trajectory trial per group and the independent
runs. A trajectory reports its members' switch rounds with each round; as soon as a switch round
is known (its fork is already saved), the searcher proposes that member's tail, so tails run while
trajectories go on. Members whose tail equals an earlier one (same switch round and warm-start
settings) wait for it and then copy its records; members that never switch copy the trajectory's
once it has finished. ``SampledPrefixSearcher`` does the same for configurations an inner searcher
(Optuna) samples. Tune creates, schedules, retries and checkpoints all these trials; these classes
only decide what comes next, in this order: copies (they train nothing), trajectories and tails
(the critical path), then the independent runs.

Over 300 lines: the two searchers share their base class, plan queue and failure handling.
"""

from __future__ import annotations

import heapq
import itertools
import json
import pickle
from dataclasses import dataclass, field
from typing import Any, Callable

from ray.tune.search import Searcher

from hal.core.switch import replay
from hal.sweep import prefix
from hal.sweep.naming import short
from hal.sweep.plan import COPY, NEVER, ORPHAN, RUN, TAIL, TRAJECTORY, TrialPlan
from hal.sweep.storage import Storage

PRIORITY = {COPY: 0, ORPHAN: 0, TRAJECTORY: 1, TAIL: 2, RUN: 3}
FAILURE_FILE = "failure.txt"  # in a group's folder: why its trajectory failed for good


class _PlanQueue:
    """Plans in priority order, first come first served within a role."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, TrialPlan]] = []
        self._seq = itertools.count()

    def push(self, plan: TrialPlan) -> None:
        heapq.heappush(self._heap, (PRIORITY[plan.role], next(self._seq), plan))

    def pop(self) -> TrialPlan | None:
        return heapq.heappop(self._heap)[2] if self._heap else None

    def __len__(self) -> int:
        return len(self._heap)

    def plans(self) -> list[TrialPlan]:
        """The queued plans, in no particular order."""
        return [entry[2] for entry in self._heap]


def trajectory_failure(storage: Storage, plan: TrialPlan) -> str:
    """The cause a failed trajectory left in its group's folder (or a generic one)."""
    try:
        return storage.read_text(f"{prefix.group_path(plan.prefix_dir, plan.group)}/{FAILURE_FILE}").strip()
    except (OSError, UnicodeDecodeError):
        return "its error is in the trajectory trial's error.txt"


class _Searcher(Searcher):
    """What both searchers share: the plans handed out, by Tune trial id."""

    def __init__(self, storage: Storage, prefix_dir: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.storage = storage
        self.prefix_dir = prefix_dir
        self.queue = _PlanQueue()
        self.live: dict[str, TrialPlan] = {}

    def _hand_out(self, trial_id: str) -> dict[str, Any] | None:
        plan = self.queue.pop()
        if plan is None:
            return None
        self.live[trial_id] = plan
        return plan.to_config()

    def _orphan(self, plan: TrialPlan, cause: str, trajectory: str) -> TrialPlan:
        return plan.replace(role=ORPHAN, cause=f"its shared trajectory {trajectory} failed: {cause}")

    # Tune saves a searcher with each experiment snapshot; HAL's --resume rebuilds the sweep from
    # its manifest instead of unpickling this (see hal.sweep.session).
    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as handle:
            pickle.dump({}, handle)

    def restore(self, checkpoint_path: str) -> None:
        pass


@dataclass
class _GroupState:
    group: prefix.Group
    switches: dict[str, int | None] = field(default_factory=dict)
    trajectory_done: bool = False
    failed: bool = False
    scheduled: set[str] = field(default_factory=set)  # members proposed (or waiting) so far
    tails: dict[tuple, str] = field(default_factory=dict)  # tail key -> member training it
    tails_done: set[tuple] = field(default_factory=set)
    waiting: dict[tuple, list[str]] = field(default_factory=dict)  # tail key -> copies to propose
    running_tails: dict[int, int] = field(default_factory=dict)  # fork round -> tails not done


class PrefixSearcher(_Searcher):
    """Proposes trajectories, independent runs, tails and copies (see the module docstring). On
    ``--resume`` every plan is proposed again: a trial whose folder holds a finished run reports
    its records and trains nothing (``hal.sweep.trainable``)."""

    def __init__(self, groups: list[prefix.Group], independent: list[dict[str, Any]], storage: Storage,
                 prefix_dir: str, name_of: Callable[[dict[str, Any]], str]) -> None:
        super().__init__(storage, prefix_dir)
        self.name_of = name_of
        self.groups = {g.key: _GroupState(g) for g in groups}
        for g in groups:
            self.queue.push(TrialPlan(TRAJECTORY, g.name, g.trajectory, group=g.key, prefix_dir=prefix_dir,
                                      members=tuple((m.name, m.run) for m in g.members), baseline=g.baseline))
        for run in independent:
            self.queue.push(TrialPlan(RUN, name_of(run), run))
        # Every trial the sweep will have (trajectories that are not baselines count too).
        self.total = len(self.queue) + sum(len(g.members) for g in groups)

    def _member(self, state: _GroupState, name: str, role: str, fork: int | None, source: str | None = None
                ) -> TrialPlan:
        run = next(m.run for m in state.group.members if m.name == name)
        state.scheduled.add(name)
        if role == TAIL:
            state.running_tails[fork] = state.running_tails.get(fork, 0) + 1
        return TrialPlan(role, name, run, group=state.group.key, prefix_dir=self.prefix_dir, fork=fork,
                         source=source)

    # --- Searcher API --------------------------------------------------------------------------

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        config = self._hand_out(trial_id)
        if config is not None:
            return config
        if any(self._outstanding(s) for s in self.groups.values()):
            return None  # wait for a trajectory or tail to tell what comes next
        return Searcher.FINISHED

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        plan = self.live.get(trial_id)
        if plan is not None and plan.role == TRAJECTORY:
            self._learn(self.groups[plan.group], result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:
        plan = self.live.pop(trial_id, None)
        if plan is None or plan.group not in self.groups:
            return
        state = self.groups[plan.group]
        if plan.role == TRAJECTORY:
            if error:
                self._trajectory_failed(state, plan)
                return
            self._learn(state, result or {})
            state.trajectory_done = True
            for member in state.group.members:
                if state.switches.get(member.name) is None and member.name not in state.scheduled:
                    self.queue.push(self._member(state, member.name, COPY, None, NEVER))
        elif plan.role == TAIL:
            key = prefix.tail_key(plan.run, plan.fork)
            waiting = state.waiting.pop(key, [])
            state.running_tails[plan.fork] -= 1
            if error and waiting:  # the next member with this tail trains it
                state.tails[key] = waiting[0]
                state.waiting[key] = waiting[1:]
                self.queue.push(self._member(state, waiting[0], TAIL, plan.fork))
                return
            if error:
                del state.tails[key]
            else:
                state.tails_done.add(key)
            if not state.running_tails[plan.fork]:
                prefix.drop_fork(self.storage, self.prefix_dir, state.group.key, plan.fork)
            for name in waiting:
                self.queue.push(self._member(state, name, COPY, plan.fork, plan.name))

    def _trajectory_failed(self, state: _GroupState, plan: TrialPlan) -> None:
        """Every member without a tail yet becomes an errored trial that names the trajectory."""
        state.failed = True
        cause = trajectory_failure(self.storage, plan)
        for member in state.group.members:
            if member.name not in state.scheduled:
                self.queue.push(self._orphan(self._member(state, member.name, ORPHAN, None), cause, plan.name))

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
            key = prefix.tail_key(member.run, fork)
            if key not in state.tails:
                state.tails[key] = member.name
                self.queue.push(self._member(state, member.name, TAIL, fork))
            elif key in state.tails_done:
                self.queue.push(self._member(state, member.name, COPY, fork, state.tails[key]))
            else:
                state.scheduled.add(member.name)
                state.waiting.setdefault(key, []).append(member.name)

    def _outstanding(self, state: _GroupState) -> bool:
        if state.waiting:  # copies wait for a running tail, even when the trajectory failed
            return True
        return not state.failed and (len(state.scheduled) < len(state.group.members)
                                     or not state.trajectory_done)

    def shared_by_group(self) -> list[dict[str, Any]]:
        """Per group: its trajectory, and which member trained or copied each tail."""
        out = []
        for state in self.groups.values():
            rounds: dict[str, list[str]] = {}
            for member in state.group.members:
                fork = state.switches.get(member.name)
                rounds.setdefault(NEVER if fork is None else str(fork), []).append(member.name)
            out.append({"trajectory": state.group.name, "retrain_baseline": state.group.baseline,
                        "members": len(state.group.members), "failed": state.failed,
                        "by_switch_round": rounds})
        return out


class SampledPrefixSearcher(_Searcher):
    """Shared prefixes for a searcher that samples switch rules (e.g. ``OptunaSearch`` over ε, k,
    the query size and the query strategy): one full retrain trajectory per choice of the sampled
    settings that change retrain rounds (``choices``: query size, query strategy) keeps a fork
    after every round (a sampled rule may switch anywhere); each sampled configuration starts as soon as its
    switch round is known, and trains only its tail, or nothing when an earlier sample ran the
    same tail or when it never switches. ``sampler`` sees only the sampled configurations.

    ``base`` is the run settings every trial shares; ``choices`` the sampler's choices of each
    such setting; ``num_samples`` how many configurations to sample. Forks are kept while samples
    may still need them: at most one per round and trajectory, until the last sample has started
    its tail.
    Without ``share_prefix`` every sample is an independent run. ``done`` are plans of
    configurations sampled by an earlier run of the sweep (``--resume``): proposed again, not
    sampled again.
    """

    MAX_WAITING = 8  # sampled configurations held back until their switch round is known

    def __init__(self, sampler: Searcher, base: dict[str, Any], choices: dict[str, list[Any]], num_samples: int,
                 storage: Storage, prefix_dir: str, name_of: Callable[[dict[str, Any]], str],
                 metric: Any = None, mode: Any = None, done: list[TrialPlan] | None = None,
                 share_prefix: bool = True) -> None:
        super().__init__(storage, prefix_dir, metric=metric, mode=mode)
        self.sampler = sampler
        self.num_samples = num_samples
        self.name_of = name_of
        self.share_prefix = share_prefix
        self.base = base
        self.trajectories: dict[str, TrialPlan] = {}
        for values in itertools.product(*choices.values()) if share_prefix else []:
            run = {**base, **dict(zip(choices, values)), "strategy": prefix.RETRAIN}
            key = prefix.group_id({**run, "strategy": prefix.HYBRID})
            self.trajectories[key] = TrialPlan(TRAJECTORY, "trajectory_" + name_of(run).removeprefix("retrain_"),
                                               run, group=key, prefix_dir=prefix_dir, every_fork=True)
            self.queue.push(self.trajectories[key])
        self.signals: dict[str, list[dict[str, Any]]] = {key: [] for key in self.trajectories}
        self.finished: set[str] = set()  # groups whose trajectory completed
        self.failed: dict[str, str] = {}  # group -> cause
        self.waiting: list[TrialPlan] = []  # sampled, switch round not known yet
        self.tails: dict[tuple, str] = {}  # (group, tail key) -> the sample that trains it
        self.tails_done: set[tuple] = set()
        self.copies_waiting: dict[tuple, list[TrialPlan]] = {}
        self.samples = 0
        self.forks_trimmed = False
        # configurations sampled before a --resume: proposed again, not sampled again, and not
        # told to the sampler (its study learns them from their summaries, or not at all)
        self.untold = {plan.name for plan in done or []}
        for plan in done or []:
            self.samples += 1
            if plan.role == RUN or not share_prefix:
                self.queue.push(plan.replace(role=RUN))
            else:
                self.waiting.append(plan)

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return self.sampler.set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        self._release()
        config = self._hand_out(trial_id)
        if config is not None:
            return config
        if self.samples < self.num_samples and len(self.waiting) < self.MAX_WAITING:
            sample_id = f"sample{self.samples:04d}"
            sampled = self.sampler.suggest(sample_id)
            if isinstance(sampled, dict):
                self.samples += 1
                run = {**self.base, **sampled, "strategy": prefix.HYBRID}
                name = f"{self.name_of({**run, 'epsilon': short(run['epsilon'])})}_{sample_id}"
                if self.share_prefix:
                    self.waiting.append(TrialPlan(TAIL, name, run, group=prefix.group_id(run),
                                                  prefix_dir=self.prefix_dir, sample=sample_id))
                    self._release()
                else:
                    self.queue.push(TrialPlan(RUN, name, run, sample=sample_id))
                return self._hand_out(trial_id)
            if sampled == Searcher.FINISHED:
                self.num_samples = self.samples
        busy = self.waiting or self.copies_waiting or self.live or len(self.queue)
        return None if busy or self.samples < self.num_samples else Searcher.FINISHED

    def _release(self) -> None:
        """Move each waiting sample whose switch round is now known to the queue."""
        still = []
        for plan in self.waiting:
            group = plan.group
            if group in self.failed:
                self.queue.push(self._orphan(plan.replace(role=ORPHAN), self.failed[group],
                                             self.trajectories[group].name))
                continue
            fork = replay(prefix.member_trigger(plan.run), self.signals[group]).switch_round
            if fork is None and group not in self.finished:
                still.append(plan)
                continue
            key = (group, prefix.tail_key(plan.run, fork))
            if fork is None:
                self.queue.push(plan.replace(role=COPY, fork=None, source=NEVER))
            elif key not in self.tails:
                self.tails[key] = plan.name
                self.queue.push(plan.replace(role=TAIL, fork=fork))
            elif key in self.tails_done:
                self.queue.push(plan.replace(role=COPY, fork=fork, source=self.tails[key]))
            else:
                self.copies_waiting.setdefault(key, []).append(plan.replace(role=COPY, fork=fork))
        self.waiting = still
        if (self.share_prefix and not self.forks_trimmed and self.samples >= self.num_samples
                and not self.waiting and self.finished == set(self.trajectories)):
            self._drop_unneeded_forks()
            self.forks_trimmed = True

    def _drop_unneeded_forks(self) -> None:
        """Once every sample has its switch round, only forks of pending tails are still needed."""
        needed = {(p.group, p.fork) for p in [*self.live.values(), *self.queue.plans()] if p.role == TAIL}
        for group in self.trajectories:
            for name in self.storage.list_dir(prefix.group_path(self.prefix_dir, group)):
                if name.startswith("fork_") and (group, int(name[5:])) not in needed:
                    prefix.drop_fork(self.storage, self.prefix_dir, group, int(name[5:]))

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        plan = self.live.get(trial_id)
        if plan is None:
            return
        if plan.role == TRAJECTORY:
            series = self.signals[plan.group]
            if "round" in result and len(series) == int(result["round"]):
                series.append({"round": int(result["round"]), "signal": result.get("signal")})
        elif plan.sample is not None and plan.name not in self.untold:
            self.sampler.on_trial_result(plan.sample, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:
        plan = self.live.pop(trial_id, None)
        if plan is None:
            return
        if plan.role == TRAJECTORY:
            if error:
                self.failed[plan.group] = trajectory_failure(self.storage, plan)
            else:
                self.finished.add(plan.group)
            self._release()
            return
        if plan.role == TAIL:
            key = (plan.group, prefix.tail_key(plan.run, plan.fork))
            waiting = self.copies_waiting.pop(key, [])
            if error and waiting:
                self.tails[key] = waiting[0].name
                self.queue.push(waiting[0].replace(role=TAIL))
                self.copies_waiting[key] = waiting[1:]
            else:
                self.tails_done.add(key)
                for copy in waiting:
                    self.queue.push(copy.replace(role=TAIL) if error else copy.replace(source=plan.name))
        if plan.sample is not None and plan.name not in self.untold:
            self.sampler.on_trial_complete(plan.sample, result=result, error=error)

