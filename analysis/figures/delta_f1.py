"""delta_f1.png: the hybrid's switch signal per round (ΔF1 on the monitor set, or 1 − κ for the
agreement monitor), against the ±ε band of its switch rule."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from analysis.aggregate import HYBRID, WARM_START_KEYS
from analysis.figures.common import (OKABE_ITO, axes_grid, bottom_legend, layout, line_handle, marker_handle,
                                     missing, patch_handle, save, split_facets)


def plot_delta_f1(rounds: pd.DataFrame, trials: pd.DataFrame, keys: Sequence[str], path: Path) -> str | None:
    """The switch signal (the records' ``signal``: ΔF1 on the monitor set, 1 − κ for the agreement
    monitor) per round for every hybrid run: one column per ε (with the ±ε band),
    one row per query size (and other facet keys), lines coloured by k, and the round after which
    each run decided to switch marked."""
    hybrid = rounds[rounds["strategy"] == HYBRID] if "strategy" in rounds.columns else rounds.iloc[:0]
    if hybrid.empty or "signal" not in hybrid.columns or hybrid["signal"].notna().sum() == 0:
        return "delta_f1.png: no hybrid runs with switch-signal values"
    hybrid = hybrid.merge(trials[["trial", "switch_round"]], on="trial", how="left")
    # Warm-start settings act only after the switch: ΔF1 before it is the same for all of them.
    facet_keys = [k for k in keys if k not in ("strategy", "epsilon", "k", *WARM_START_KEYS)]
    facets = split_facets(hybrid, facet_keys)
    epsilons = sorted(hybrid["epsilon"].dropna().unique())
    k_values = sorted(hybrid["k"].dropna().unique())
    k_colour = {k: OKABE_ITO[i % len(OKABE_ITO)] for i, k in enumerate(k_values)}
    ncols = len(epsilons)
    fig, axes = axes_grid(len(facets) * ncols, ncols=ncols, size=(4.6, 3.4))
    clipped = False
    for f_i, (title, part) in enumerate(facets):
        for e_i, eps in enumerate(epsilons):
            ax = axes[f_i * ncols + e_i]
            ax.axhspan(-eps, eps, color="0.85", zorder=0)
            ax.axhline(0, color="0.5", lw=0.6)
            runs = part[part["epsilon"] == eps]
            for _, run in runs.groupby("trial", sort=True):
                run = run.sort_values("round")
                colour = k_colour.get(run["k"].iloc[0], "black")
                ax.plot(run["round"], run["signal"], "-", color=colour, lw=0.9, alpha=0.75)
                switch = run["switch_round"].iloc[0]
                if not missing(switch):
                    at = run[run["round"] == switch]["signal"]
                    if len(at):
                        ax.plot([switch], [at.iloc[0]], "X", color=colour, markeredgecolor="black",
                                markersize=8, zorder=5)
            # The first rounds jump by far more than ε; scaled to them, the band would be a hairline.
            # Show a few ε (or the bulk of the values) and let the early jumps leave the frame.
            deltas = runs["signal"].abs().dropna()
            limit = max(3 * eps, float(deltas.quantile(0.8)) if len(deltas) else 0.0, 1e-3) * 1.15
            clipped |= bool(len(deltas) and deltas.max() > limit)
            ax.set_ylim(-limit, limit)
            ax.set_xlabel("AL round")
            ax.set_ylabel(_signal_name(runs))
            prefix = f"{title}, " if title else ""
            ax.set_title(f"{prefix}ε = {eps:g}", fontsize=10)
            ax.grid(alpha=0.3)
    handles = [line_handle(k_colour[k], f"k = {k:g}") for k in k_values]
    handles.append(marker_handle("X", "white", "switch decided", edge="black"))
    handles.append(patch_handle("0.85", "±ε band"))
    bottom = bottom_legend(fig, handles)
    extra = "; y axis cut: the large jumps of the first rounds run off the top" if clipped else ""
    fig.suptitle(f"{_signal_name(hybrid)} per round of every hybrid run (one line per run){extra}", fontsize=11)
    layout(fig, bottom=bottom)
    return save(fig, path)


def _signal_name(runs: pd.DataFrame) -> str:
    """What the signal is for these runs' monitors."""
    monitors = set(runs["monitor"].dropna()) if "monitor" in runs.columns else set()
    if monitors == {"agreement"}:
        return "1 − κ on the stop set"
    if "agreement" in monitors:
        return "switch signal (ΔF1; 1 − κ for agreement)"
    return "ΔF1 on monitor set"
