"""learning_curves.png: validation macro-F1 vs round and vs cumulative training cost, baselines
and the recommended hybrid with its switch marked."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from analysis.aggregate import BASELINES, HYBRID
from analysis.figures.common import (CUMULATIVE_LABELS, OTHER_STYLE, STRATEGY_STYLE, axes_grid, layout, save,
                                     split_facets)


def plot_learning_curves(rounds: pd.DataFrame, table: pd.DataFrame, keys: Sequence[str], path: Path,
                         score: str, cost: str = "total_train_samples") -> str | None:
    """Validation macro-F1 vs round and vs cumulative training cost (mean ± std band over seeds);
    one row per facet (dataset, learner, query size). Every baseline configuration is drawn, and
    the recommended hybrid of the facet (``table["recommended"]``: best validation ``score``
    among the hybrids that switched) with a dotted line where it decided to switch. A facet whose
    hybrids never switched says so: there the hybrid is the retrain curve.
    ``rounds`` must carry ``config_id``; ``table`` comes from ``report.mark_front``."""
    if rounds.empty or "val_f1" not in rounds.columns:
        return "learning_curves.png: no per-round records"
    x_cost = "cum_train_samples" if cost == "total_train_samples" else "cum_train_time_s"
    facet_keys = [k for k in ("dataset", "learner", "query_size") if k in keys]
    panels = split_facets(table, facet_keys)
    fig, grid = axes_grid(len(panels) * 2, ncols=2, size=(6.2, 4.2))
    for row_i, (title, part) in enumerate(panels):
        ax_round, ax_cost = grid[2 * row_i], grid[2 * row_i + 1]
        chosen = part[part["strategy"].isin(BASELINES)]
        hybrid = part[part["recommended"]] if "recommended" in part.columns else part.iloc[:0]
        for cfg in pd.concat([chosen, hybrid]).itertuples():
            runs = rounds[rounds["config_id"] == cfg.config_id]
            if runs.empty:
                continue
            curve = runs.groupby("round").agg(f1=("val_f1", "mean"), sd=("val_f1", "std"),
                                              c=(x_cost, "mean"), n=("val_f1", "count"))
            colour, marker = STRATEGY_STYLE.get(cfg.strategy, OTHER_STYLE)
            label = f"{cfg.config} (n={int(curve['n'].max())})"
            if cfg.strategy == HYBRID:
                label = f"{cfg.config}, recommended (n={int(curve['n'].max())})"
            # Until it switches the hybrid is the retrain run: drawn wider and beneath, so the
            # retrain line stays visible on top of the shared prefix.
            width, depth = (2.6, 1.5) if cfg.strategy == HYBRID else (1.4, 2.5)
            for ax, x in ((ax_round, curve.index.to_numpy()), (ax_cost, curve["c"].to_numpy())):
                ax.plot(x, curve["f1"], "-", color=colour, marker=marker, markevery=max(1, len(x) // 8),
                        markersize=4, lw=width, label=label, zorder=depth)
                band = curve["sd"].fillna(0).to_numpy()
                ax.fill_between(x, curve["f1"] - band, curve["f1"] + band, color=colour, alpha=0.15, lw=0)
            if cfg.strategy == HYBRID:
                _mark_switch(ax_round, ax_cost, runs, curve, colour)
        ax_round.set_xlabel("AL round")
        ax_cost.set_xlabel(f"{CUMULATIVE_LABELS.get(cost, cost)}, mean over seeds")
        for ax in (ax_round, ax_cost):
            ax.set_ylabel("validation macro-F1")
            ax.grid(alpha=0.3)
        prefix = f"{title}: " if title else ""
        if hybrid.empty and (part["strategy"] == HYBRID).any():
            prefix += "no hybrid switched (hybrid = retrain); "
        ax_round.set_title(f"{prefix}val F1 vs round", fontsize=10)
        ax_cost.set_title(f"{prefix}val F1 vs training cost", fontsize=10)
        ax_round.legend(fontsize=7, loc="lower right")
    what = "final validation macro-F1" if score == "final_val_f1" else "validation AULC"
    fig.suptitle(f"Learning curves (mean ± 1 std over seeds). Hybrid: the recommended one = best {what}\n"
                 "among the hybrids that switched; dotted line: the round after which it decided to switch",
                 fontsize=11)
    layout(fig)
    return save(fig, path)


def _mark_switch(ax_round, ax_cost, runs: pd.DataFrame, curve: pd.DataFrame, colour: str) -> None:
    """A dotted vertical line at each distinct round after which a seed of the hybrid switched."""
    switched = runs[runs["switched"] == 1] if "switched" in runs.columns else runs.iloc[:0]
    rounds = sorted(switched.groupby("trial")["round"].min().unique())
    for i, r in enumerate(rounds):
        label = f"switch decided after round {', '.join(str(int(x)) for x in rounds)}" if i == 0 else None
        ax_round.axvline(r, color=colour, ls=":", lw=1.2, label=label)
        if r in curve.index:
            ax_cost.axvline(curve.loc[r, "c"], color=colour, ls=":", lw=1.2)
