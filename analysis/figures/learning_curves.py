"""learning_curves.png: validation macro-F1 vs round and vs cumulative training cost, baselines
and the recommended hybrid with its switch marked."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from analysis.aggregate import BASELINES, HYBRID
from analysis.figures.common import (CUMULATIVE_LABELS, OTHER_STYLE, STRATEGY_STYLE, axes_grid, cap,
                                     integer_ticks, log_if_wide, save, split_facets)

MAX_ROWS = 4  # facets (dataset, learner, query size) drawn; more are named in the title
# Log cost axis when the curves' final costs differ by more than this: new_only ends at a tenth of
# retrain's cost and is a wall at the left of a linear axis. (Every cumulative curve spans more
# than 20x from round 0 on; a lone curve stays linear, where the rounds after the switch show.)
FINAL_COST_RATIO = 5.0


def plot_learning_curves(rounds: pd.DataFrame, table: pd.DataFrame, keys: Sequence[str], path: Path,
                         score: str, cost: str = "total_train_samples") -> str | None:
    """Validation macro-F1 vs round and vs cumulative training cost (mean ± std band over seeds);
    one row per facet (dataset, learner, query size), at most ``MAX_ROWS``. Every baseline
    configuration is drawn, and the recommended hybrid of the facet (``table["recommended"]``:
    best validation ``score`` among the hybrids that switched) with a dotted line where each seed
    decided to switch: at its round, and at that seed's own cumulative cost then. The cost axis is
    logarithmic when the curves' final costs differ by more than ``FINAL_COST_RATIO`` (new_only
    beside retrain). A facet whose hybrids
    never switched says so: there the hybrid is the retrain curve.
    ``rounds`` must carry ``config_id``; ``table`` comes from ``report.mark_front``."""
    if rounds.empty or "val_f1" not in rounds.columns:
        return "learning_curves.png: no per-round records"
    x_cost = "cum_train_samples" if cost == "total_train_samples" else "cum_train_time_s"
    facet_keys = [k for k in ("dataset", "learner", "query_size", "query_strategy") if k in keys]
    # Not binned: each row holds the baselines and the recommended hybrid of one query size.
    panels, left_out = cap(split_facets(table, facet_keys, bin_numeric=False), MAX_ROWS, "facets")
    fig, grid = axes_grid(len(panels) * 2, ncols=2, size=(6.0, 3.9))
    for row_i, (title, part) in enumerate(panels):
        ax_round, ax_cost = grid[2 * row_i], grid[2 * row_i + 1]
        chosen = part[part["strategy"].isin(BASELINES)]
        hybrid = part[part["recommended"]] if "recommended" in part.columns else part.iloc[:0]
        finals = []
        for cfg in pd.concat([chosen, hybrid]).itertuples():
            runs = rounds[rounds["config_id"] == cfg.config_id]
            if runs.empty:
                continue
            curve = runs.groupby("round").agg(f1=("val_f1", "mean"), sd=("val_f1", "std"),
                                              c=(x_cost, "mean"), n=("val_f1", "count"))
            finals.append(curve["c"].iloc[-1])
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
                _mark_switch(ax_round, ax_cost, runs, x_cost, colour)
        integer_ticks(ax_round.xaxis)
        log_cost = log_if_wide(ax_cost, finals, ratio=FINAL_COST_RATIO)
        ax_round.set_xlabel("AL round")
        ax_cost.set_xlabel(f"{CUMULATIVE_LABELS.get(cost, cost)}, mean over seeds" + (" (log)" if log_cost else ""))
        for ax in (ax_round, ax_cost):
            ax.set_ylabel("validation macro-F1")
            ax.grid(alpha=0.3)
        prefix = f"{title}: " if title else ""
        if hybrid.empty and (part["strategy"] == HYBRID).any():
            prefix += "no hybrid switched (hybrid = retrain); "
        ax_round.set_title(f"{prefix}val F1 vs round", fontsize=10)
        ax_cost.set_title(f"{prefix}val F1 vs training cost", fontsize=10)
        if ax_round.get_legend_handles_labels()[0]:
            ax_round.legend(fontsize=7, loc="lower right")
        else:  # e.g. one hybrid run that never switched: nothing of this facet to draw
            for ax in (ax_round, ax_cost):
                ax.text(0.5, 0.5, "no baseline and no switched hybrid to draw", ha="center", va="center",
                        transform=ax.transAxes, fontsize=9, color="0.4")
    what = "final validation macro-F1" if score == "final_val_f1" else "validation AULC"
    extra = f"; {left_out}" if left_out else ""
    fig.suptitle(f"Learning curves (mean ± 1 std over seeds). Hybrid: the recommended one = best {what}\n"
                 f"among the hybrids that switched; dotted lines: where each seed decided to switch{extra}",
                 fontsize=10)
    return save(fig, path)


def _mark_switch(ax_round, ax_cost, runs: pd.DataFrame, x_cost: str, colour: str) -> None:
    """A dotted vertical line at each distinct round after which a seed of the hybrid switched,
    and on the cost axis at that seed's own cumulative cost then (seeds that switched earlier
    have spent less by that round: the seed mean would put the line where no seed switched)."""
    switched = runs[runs["switched"] == 1] if "switched" in runs.columns else runs.iloc[:0]
    if switched.empty:
        return
    at = switched.sort_values("round").groupby("trial").first()
    rounds = sorted(at["round"].unique())
    label = f"switch decided after round {', '.join(str(int(r)) for r in rounds)}"
    for i, r in enumerate(rounds):
        ax_round.axvline(r, color=colour, ls=":", lw=1.2, label=label if i == 0 else None)
    for c in sorted(at[x_cost].dropna().unique()):
        ax_cost.axvline(c, color=colour, ls=":", lw=1.2)
