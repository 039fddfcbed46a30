"""Training strategies and the hybrid's switch trigger (exact semantics in DESIGN.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass

RETRAIN, FINETUNE, NEW_ONLY = "retrain", "finetune", "new_only"


@dataclass
class SwitchTrigger:
    """Counts consecutive rounds with |ΔF1| < ε; switches (one way) once the count reaches k."""

    epsilon: float
    k: int
    count: int = 0
    switch_round: int | None = None

    @property
    def switched(self) -> bool:
        return self.switch_round is not None

    def update(self, round_index: int, delta_f1: float | None) -> bool:
        """Feed the ΔF1 measured after round ``round_index``; return whether the run has switched.

        Round 0 (no ΔF1) never counts. A ΔF1 of exactly ε does not count as stable.
        """
        if self.switched:
            return True
        if round_index == 0 or delta_f1 is None or math.isnan(delta_f1):
            return False
        self.count = self.count + 1 if abs(delta_f1) < self.epsilon else 0
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
