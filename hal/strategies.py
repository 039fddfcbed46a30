"""Training strategies and the hybrid's switch trigger (exact semantics in DESIGN.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

RETRAIN, FINETUNE, NEW_ONLY = "retrain", "finetune", "new_only"
# How the trigger turns the monitor's per-round signal into "stable": ``abs`` is DESIGN.md's
# literal rule (|signal| < ε); ``mean`` smooths first (|mean of the last ``window`` signals| < ε).
SWITCH_RULES = ("abs", "mean")


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

    def update(self, round_index: int, delta_f1: float | None) -> bool:
        """Feed the signal measured after round ``round_index``; return whether the run has switched.

        Round 0 (no signal) never counts, nor does a missing (None/NaN) signal. A signal of exactly
        ε does not count as stable.
        """
        if self.switched:
            return True
        if round_index == 0 or delta_f1 is None or math.isnan(delta_f1):
            return False
        if self.rule == "abs":
            stable = abs(delta_f1) < self.epsilon
        else:
            self.history = (self.history + [float(delta_f1)])[-self.window:]
            stable = len(self.history) >= self.window and abs(sum(self.history) / self.window) < self.epsilon
        self.count = self.count + 1 if stable else 0
        if self.count >= self.k:
            self.switch_round = round_index
        return self.switched


def round_mode(strategy: str, round_index: int, switched: bool) -> str:
    """What round ``round_index`` does: ``retrain``, ``finetune`` or ``new_only``.

    Round 0 always trains from the initial weights on the initial set.
    """
    if round_index == 0 or strategy == RETRAIN:
        return RETRAIN
    if strategy == "hybrid":
        return FINETUNE if switched else RETRAIN
    return strategy
