"""The cost/score Pareto front, as DESIGN.md defines it.

A point is on the front when no other point has cost <= and score >= with at least one of the
two strictly better. Exact duplicates therefore do not dominate each other. Points with a NaN
cost or score are never on the front and dominate nothing.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd


def pareto_mask(cost: Sequence[float] | np.ndarray, score: Sequence[float] | np.ndarray) -> np.ndarray:
    """Boolean array: True where the point (low cost good, high score good) is non-dominated.

    O(n log n): walk the points in increasing cost, one group of equal cost at a time. A point is
    dominated exactly when a cheaper point scores >= it, or an equally cheap point scores > it.
    """
    cost = np.asarray(cost, dtype=float)
    score = np.asarray(score, dtype=float)
    if cost.shape != score.shape or cost.ndim != 1:
        raise ValueError(f"cost and score must be 1-D and of equal length, got {cost.shape} and {score.shape}")
    mask = np.zeros(len(cost), dtype=bool)
    valid = np.flatnonzero(~(np.isnan(cost) | np.isnan(score)))
    if len(valid) == 0:
        return mask
    order = valid[np.argsort(cost[valid], kind="stable")]
    best_cheaper: float | None = None  # best score among strictly cheaper points seen so far
    start = 0
    while start < len(order):
        stop = start
        while stop < len(order) and cost[order[stop]] == cost[order[start]]:
            stop += 1
        group = order[start:stop]
        group_best = score[group].max()
        for i in group:
            mask[i] = (best_cheaper is None or score[i] > best_cheaper) and score[i] == group_best
        best_cheaper = group_best if best_cheaper is None else max(best_cheaper, group_best)
        start = stop
    return mask


def front_by_group(table: pd.DataFrame, cost: str, score: str, by: Sequence[str] = ("dataset",)) -> pd.Series:
    """``pareto_mask`` of ``table[cost]`` vs ``table[score]`` computed separately within each group
    of ``by`` (default: per dataset), as a boolean Series aligned with ``table``."""
    out = pd.Series(False, index=table.index)
    by = [b for b in by if b in table.columns]
    groups = table.groupby(by, dropna=False, sort=False) if by else [(None, table)]
    for _, part in groups:
        out.loc[part.index] = pareto_mask(part[cost].to_numpy(dtype=float), part[score].to_numpy(dtype=float))
    return out


def equal_work_cost(table: pd.DataFrame, cost: str, work: str, by: Sequence[str] = ("dataset",)) -> pd.Series:
    """``table[cost]`` with every set of rows that did the same ``work`` (equal values, e.g. equal
    training samples) given the mean cost of the set, within each group of ``by``.

    Seconds are noisy on a shared machine; two configurations that processed exactly the same
    samples did the same work, so a front on seconds must not rank them by that noise.
    """
    by = [b for b in by if b in table.columns]
    values = pd.to_numeric(table[cost], errors="coerce").astype(float)
    keys = [*(table[b].astype(str) for b in by), pd.to_numeric(table[work], errors="coerce")]
    pooled = values.groupby(keys, dropna=False, sort=False).transform("mean")
    # A row without a work value cannot be pooled with anything: it keeps its own cost.
    return pooled.where(keys[-1].notna(), values)
