"""The hybrid's switch trigger: when the monitor's per-round signal has been stable for k rounds,
the run switches (one way) from retraining to fine-tuning. Exact semantics in DESIGN.md."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from hal.core.records import switch_signal

if TYPE_CHECKING:  # annotations only: the config module imports this one
    from hal.core.config import RunConfig
    from hal.core.records import RoundRecord

# How the trigger turns the monitor's per-round signal into "stable": ``abs`` is DESIGN.md's
# literal rule (|signal| < ε); ``mean`` smooths first (|mean of the last ``window`` signals| < ε).
SWITCH_RULES = ("abs", "mean")
# The switch threshold ε has each monitor's own scale: ΔF1 for `val` and `holdout`, 1 − Cohen's κ
# between consecutive models' predictions on the stop set for `agreement`. 0.3 (with k = 2) ranked
# first on validation scores of bench/when_retraining_pays.py (docs/benchmark.md): models retrained
# from scratch keep disagreeing on 3-15% of the stop set, so the stopping literature's κ ≥ 0.99
# would never switch.
DEFAULT_EPSILONS = {"val": 0.02, "holdout": 0.02, "agreement": 0.3}


@dataclass
class SwitchTrigger:
    """Counts consecutive stable rounds; switches (one way) once the count reaches k.

    A round is stable when ``rule`` says so about the signal fed after it (ΔF1 for the ``val`` and
    ``holdout`` monitors, 1 − κ for ``agreement``):

    - ``abs``: |signal| < ε (DESIGN.md's literal rule);
    - ``mean``: |mean of the last ``window`` signals| < ε, only once ``window`` signals have been
      seen. For ΔF1 the mean telescopes to (F1ₜ − F1ₜ₋w) / w, the curve's average slope, so a curve
      still rising by more than ε per round never counts, however noisy its single steps; for
      1 − κ it is Bloodgood & Vijay-Shanker's (2009) average agreement over a window.

    The state is a deterministic function of the values fed so far and the fields below, and stays
    a plain dataclass (checkpointed with ``dataclasses.asdict``, rebuilt with ``SwitchTrigger(**d)``).
    """

    epsilon: float
    k: int
    count: int = 0
    switch_round: int | None = None
    rule: str = "abs"
    window: int = 3
    history: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.rule not in SWITCH_RULES:
            raise ValueError(f"unknown switch rule {self.rule!r}: choose one of {', '.join(SWITCH_RULES)}")

    @property
    def switched(self) -> bool:
        return self.switch_round is not None

    def update(self, round_index: int, signal: float | None) -> bool:
        """Feed the signal measured after round ``round_index``; return whether the run has switched.

        Round 0 (no signal) never counts, nor does a missing (None/NaN) signal. A signal of exactly
        ε does not count as stable.
        """
        if self.switched:
            return True
        if round_index == 0 or signal is None or math.isnan(signal):
            return False
        if self.rule == "abs":
            stable = abs(signal) < self.epsilon
        else:
            self.history = (self.history + [float(signal)])[-self.window:]
            stable = len(self.history) >= self.window and abs(sum(self.history) / self.window) < self.epsilon
        self.count = self.count + 1 if stable else 0
        if self.count >= self.k:
            self.switch_round = round_index
        return self.switched


def new_trigger(cfg: "RunConfig") -> SwitchTrigger:
    """The hybrid's switch trigger as ``cfg`` sets it up (the one place that builds it)."""
    epsilon = cfg.epsilon if cfg.epsilon is not None else DEFAULT_EPSILONS[cfg.monitor]  # unresolved cfg
    return SwitchTrigger(epsilon, cfg.k, rule=cfg.switch_rule, window=cfg.switch_window)


def replay(trigger: SwitchTrigger, records: Iterable["RoundRecord | dict[str, Any]"]) -> SwitchTrigger:
    """Feed a run's monitor series through ``trigger`` round by round (as the loop does)."""
    for record in records:
        r = record if isinstance(record, dict) else record.to_dict()
        trigger.update(r["round"], switch_signal(r))
    return trigger


def reflag(records: list["RoundRecord"], switch_round: int | None) -> list["RoundRecord"]:
    """A retrain run's records as the hybrid that switched after ``switch_round`` wrote them:
    identical but for ``switched``, 1 from the round the switch was decided."""
    return [dataclasses.replace(r, switched=int(switch_round is not None and r.round >= switch_round))
            for r in records]
