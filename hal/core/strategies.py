"""Training strategies: what each round of a run does (exact semantics in DESIGN.md)."""

from __future__ import annotations

RETRAIN, FINETUNE, NEW_ONLY = "retrain", "finetune", "new_only"


def round_mode(strategy: str, round_index: int, switched: bool) -> str:
    """What round ``round_index`` does: ``retrain``, ``finetune`` or ``new_only``.

    Round 0 always trains from the initial weights on the initial set.
    """
    if round_index == 0 or strategy == RETRAIN:
        return RETRAIN
    if strategy == "hybrid":
        return FINETUNE if switched else RETRAIN
    return strategy
