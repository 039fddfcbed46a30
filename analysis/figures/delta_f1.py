"""delta_f1.png: the hybrid's switch signal per round (the records' ``signal``: ΔF1 on the monitor
set, or 1 − κ for the agreement monitor), against the ±ε band of its switch rule."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from analysis.aggregate import HYBRID, WARM_START_KEYS
from analysis.figures.common import (MAX_PANELS, OKABE_ITO, axes_grid, bottom_legend, cap, integer_ticks,
                                     levels, line_handle, marker_handle, missing, patch_handle, save,
                                     signal_name, split_facets)

MAX_EPSILON_COLUMNS = 4  # more distinct ε are binned into this many columns
MAX_K_COLOURS = 6  # more distinct k are binned into this many colours
BAND, INNER_BAND = "0.88", "0.76"


def plot_delta_f1(rounds: pd.DataFrame, trials: pd.DataFrame, keys: Sequence[str], path: Path) -> str | None:
    """The switch signal per round of every hybrid run, one line per run coloured by k, the round
    after which the run decided to switch marked, against the ±ε band.

    One column per ε, or per range of ε when the sweep has more than ``MAX_EPSILON_COLUMNS``
    distinct values (a continuous search): such a panel shades ±(its largest ε) light and
    ±(its smallest ε) darker. One row per query size (and other facet keys), at most
    ``MAX_PANELS`` panels in all."""
    hybrid = rounds[rounds["strategy"] == HYBRID] if "strategy" in rounds.columns else rounds.iloc[:0]
    if hybrid.empty or "signal" not in hybrid.columns or hybrid["signal"].notna().sum() == 0:
        return "delta_f1.png: no hybrid runs with switch-signal values"
    hybrid = hybrid.merge(trials[["trial", "switch_round"]], on="trial", how="left")
    # Warm-start settings act only after the switch: the signal before it is the same for all of them.
    facet_keys = [k for k in keys if k not in ("strategy", "epsilon", "k", *WARM_START_KEYS)]
    eps_levels = levels(hybrid["epsilon"], MAX_EPSILON_COLUMNS)
    k_levels = levels(hybrid["k"], MAX_K_COLOURS)
    k_colour = [OKABE_ITO[i % len(OKABE_ITO)] for i in range(len(k_levels.labels))]
    ncols = max(1, len(eps_levels.labels))
    facets, left_out = cap(split_facets(hybrid, facet_keys), max(1, MAX_PANELS // ncols), "facets")
    fig, axes = axes_grid(len(facets) * ncols, ncols=ncols, size=(4.0, 2.9))
    name = signal_name(hybrid["monitor"].dropna()) if "monitor" in hybrid.columns else signal_name([])
    clipped = False
    for f_i, (title, part) in enumerate(facets):
        eps_code = eps_levels.codes(part["epsilon"])
        for e_i in range(ncols):
            ax = axes[f_i * ncols + e_i]
            low, high = eps_levels.lows[e_i], eps_levels.highs[e_i]
            ax.axhspan(-high, high, color=BAND, zorder=0, lw=0)
            if low < high:
                ax.axhspan(-low, low, color=INNER_BAND, zorder=0, lw=0)
            ax.axhline(0, color="0.5", lw=0.6)
            runs = part[eps_code == e_i]
            for _, run in runs.groupby("trial", sort=True):
                run = run.sort_values("round")
                colour = k_colour[k_levels.of(run["k"].iloc[0])] if not missing(run["k"].iloc[0]) else "black"
                ax.plot(run["round"], run["signal"], "-", color=colour, lw=0.9, alpha=0.7)
                switch = run["switch_round"].iloc[0]
                if not missing(switch):
                    at = run[run["round"] == switch]["signal"]
                    if len(at):
                        ax.plot([switch], [at.iloc[0]], "X", color=colour, markeredgecolor="black",
                                markersize=7, zorder=5)
            # The first rounds jump by far more than ε; scaled to them, the band would be a hairline.
            # Show a few ε (or the bulk of the values) and let the early jumps leave the frame.
            signals = runs["signal"].abs().dropna()
            limit = max(3 * high, float(signals.quantile(0.8)) if len(signals) else 0.0, 1e-3) * 1.15
            clipped |= bool(len(signals) and signals.max() > limit)
            ax.set_ylim(-limit, limit)
            integer_ticks(ax.xaxis)
            ax.set_xlabel("AL round")
            ax.set_ylabel(signal_name(runs["monitor"].dropna()) if "monitor" in runs.columns else name,
                          fontsize=8)
            prefix = f"{title}, " if title else ""
            count = runs["trial"].nunique()
            ax.set_title(f"{prefix}ε = {eps_levels.labels[e_i]}"
                         + (f" ({count} run{'s' * (count != 1)})" if eps_levels.binned else ""), fontsize=9)
            ax.grid(alpha=0.3)
    handles = [line_handle(k_colour[i], f"k = {label}") for i, label in enumerate(k_levels.labels)]
    handles.append(marker_handle("X", "white", "switch decided", edge="black"))
    if eps_levels.binned:
        handles.append(patch_handle(BAND, "±ε, largest ε of the panel"))
        handles.append(patch_handle(INNER_BAND, "±ε, smallest ε of the panel"))
    else:
        handles.append(patch_handle(BAND, "±ε band"))
    bottom_legend(fig, handles, ncol=min(len(handles), 5))
    notes = ["one line per run"]
    if eps_levels.binned:
        notes.append(f"{hybrid['epsilon'].nunique()} distinct ε in {ncols} ranges")
    if clipped:
        notes.append("y axis cut: the large jumps of the first rounds run off the frame")
    if "switch_rule" in hybrid.columns and (hybrid["switch_rule"] == "mean").any():
        notes.append("switch_rule=mean thresholds the mean of the last rounds, not one round")
    if left_out:
        notes.append(left_out)
    fig.suptitle(f"{name} per round of every hybrid run\n" + "; ".join(notes), fontsize=10)
    return save(fig, path)
