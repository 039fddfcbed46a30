"""A line per finished or failed configuration while a sweep runs (Ray's own tables are off)."""

from __future__ import annotations

import time
from typing import Any

from ray import tune

from hal.sweep.naming import config_name
from hal.sweep.plan import TrialPlan, has_plan
from hal.sweep.ranking import final_val_f1, fmt, num


class TrialLines(tune.Callback):
    """Prints one line when a configuration finishes or fails, counting ``done_before``
    configurations a resumed sweep had finished already (their trials only report again)."""

    def __init__(self, total: int, done_before: frozenset[str] = frozenset()) -> None:
        self.start = time.time()
        self.total = total
        self.done_before = done_before
        self.finished = len(done_before)

    def _plan(self, trial: Any) -> TrialPlan | None:
        config = getattr(trial, "config", None)
        return TrialPlan.from_config(config) if has_plan(config) else None

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        plan = self._plan(trial)
        if plan is None or not plan.is_configuration or plan.name in self.done_before:
            return
        self.finished += 1
        m = trial.last_result or {}
        before = f" ({len(self.done_before)} finished before)" if self.done_before else ""
        # Validation first (it is what the sweep ranks on); test F1 is the outcome.
        print(f"[{time.time() - self.start:6.0f}s] {self.finished}/{self.total}{before} "
              f"{config_name(plan.run):32s} val F1 {fmt(final_val_f1(m), '.4f')}  "
              f"test F1 {fmt(num(m.get('final_test_f1')), '.4f')} (outcome)  "
              f"{fmt(num(m.get('total_train_samples')), ',.0f')} samples  "
              f"train {fmt(num(m.get('total_train_time_s')), '.1f')}s  [{plan.name}]", flush=True)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        plan = self._plan(trial)
        name = plan.name if plan else str(trial)
        print(f"[{time.time() - self.start:6.0f}s] {name} failed (see {trial.path}/error.txt)", flush=True)
