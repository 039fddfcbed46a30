"""A line per finished or failed trial while a sweep runs (Ray's own tables are turned off)."""

from __future__ import annotations

import time

from ray import tune

from hal.sweep.ranking import final_val_f1, fmt, num


class TrialLines(tune.Callback):
    """Prints one line when a trial finishes or fails (Ray's own tables are turned off)."""

    def __init__(self, total: int | None = None) -> None:
        self.start = time.time()
        self.finished = 0
        self.total = total

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self.finished += 1
        m = trial.last_result or {}
        # Validation first (it is what the sweep ranks on); test F1 is the outcome.
        print(f"[{time.time() - self.start:6.0f}s] {self.finished}/{self.total or len(trials)} "
              f"{str(trial):40s} val F1 {fmt(final_val_f1(m), '.4f')}  "
              f"test F1 {fmt(num(m.get('final_test_f1')), '.4f')} (outcome)  "
              f"{fmt(num(m.get('total_train_samples')), ',.0f')} samples  "
              f"train {fmt(num(m.get('total_train_time_s')), '.1f')}s", flush=True)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        print(f"[{time.time() - self.start:6.0f}s] trial {trial} failed "
              f"(see {trial.path}/error.txt)", flush=True)
