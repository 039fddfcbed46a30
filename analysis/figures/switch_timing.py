"""switch_timing.png: the round after which each hybrid run switched, against its (ε, k), per
query size; runs that never switched sit in a 'never' row at the top."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from analysis.aggregate import HYBRID, WARM_START_KEYS
from analysis.figures.common import (MARKERS, MAX_PANELS, OKABE_ITO, axes_grid, bottom_legend, cap, levels,
                                     log_if_wide, marker_handle, number_labels, save, split_facets)

MAX_PAIRS = 12  # (ε, k) pairs drawn one column each; a continuous search is a scatter over ε
MAX_K_COLOURS = 6
BOX_MIN = 5  # a box summarises five values or more; fewer are shown as they are
NO_SIZE = "no query size"


def plot_switch_timing(trials: pd.DataFrame, keys: Sequence[str], path: Path) -> str | None:
    """switch_round of every hybrid run. A grid of at most ``MAX_PAIRS`` (ε, k) pairs gets one
    column per pair, the query sizes side by side in it (points, with a box from ``BOX_MIN``
    runs); a larger or continuous search is a scatter of switch round against ε (log axis for a
    wide range), coloured by k, one marker per query size. Never-switched runs are drawn in the
    'never' row, so every run is a point."""
    hybrid = trials[trials["strategy"] == HYBRID] if "strategy" in trials.columns else trials.iloc[:0]
    if hybrid.empty:
        return "switch_timing.png: no hybrid runs"
    if hybrid["switch_round"].notna().sum() == 0:
        return "switch_timing.png: no hybrid run switched"
    hybrid = hybrid.assign(_q=_size_labels(hybrid))
    sizes = sorted(hybrid["_q"].unique(), key=_size_order(hybrid))
    # The switch round does not depend on the warm-start settings (they act only after it).
    facet_keys = [k for k in keys if k not in ("strategy", "epsilon", "k", "query_size", *WARM_START_KEYS)]
    facets, left_out = cap(split_facets(hybrid, facet_keys), MAX_PANELS, "facets")
    pairs = sorted({(e, k) for e, k in zip(hybrid["epsilon"], hybrid["k"])})
    grid = len(pairs) <= MAX_PAIRS
    never_y = float(hybrid["switch_round"].max()) + 2.0  # the 'never' row, above every switch
    size = (min(14.0, max(6.0, 0.95 * len(pairs) + 2)), 4.2) if grid else (9.0, 4.6)
    fig, axes = axes_grid(len(facets), ncols=1, size=size)
    rng = np.random.default_rng(0)  # jitter only; fixed so reruns give identical images
    if grid:
        q_colour = {q: OKABE_ITO[i % len(OKABE_ITO)] for i, q in enumerate(sizes)}
        for ax, (title, part) in zip(axes, facets):
            _draw_grid(ax, part, pairs, sizes, q_colour, never_y, rng)
            ax.set_title(f"{title + ': ' if title else ''}when the hybrid switched to fine-tuning", fontsize=10)
        handles = [marker_handle("o", q_colour[q], q) for q in sizes]
        handles.append(marker_handle("o", "white", "never switched (in the 'never' row)", edge="0.3"))
    else:
        k_levels = levels(hybrid["k"], MAX_K_COLOURS)
        k_colour = [OKABE_ITO[i % len(OKABE_ITO)] for i in range(len(k_levels.labels))]
        q_marker = {q: MARKERS[i % len(MARKERS)] for i, q in enumerate(sizes)}
        for ax, (title, part) in zip(axes, facets):
            _draw_scatter(ax, part, k_levels, k_colour, q_marker, never_y, rng)
            ax.set_title(f"{title + ': ' if title else ''}when the hybrid switched to fine-tuning "
                         f"({len(pairs)} (ε, k) pairs)", fontsize=10)
        handles = [marker_handle("o", k_colour[i], f"k = {label}") for i, label in enumerate(k_levels.labels)]
        if len(sizes) > 1 or sizes != [NO_SIZE]:
            handles += [marker_handle(q_marker[q], "0.5", q) for q in sizes]
        handles.append(marker_handle("o", "white", "never switched (hollow, 'never' row)", edge="0.3"))
    ticks = [t for t in MaxNLocator(nbins=6, integer=True).tick_values(0, never_y - 2) if 0 <= t < never_y - 1]
    for ax in axes:
        ax.set_yticks([*ticks, never_y], [*(f"{t:g}" for t in ticks), "never"])
        ax.axhspan(never_y - 0.8, never_y + 0.8, color="0.93", zorder=0, lw=0)
        ax.set_ylim(-0.8, never_y + 0.9)
        ax.set_ylabel("switch round (decided after it)")
        ax.grid(axis="y", alpha=0.3)
    bottom_legend(fig, handles)
    if left_out:
        fig.suptitle(left_out, fontsize=9)
    return save(fig, path)


def _size_labels(hybrid: pd.DataFrame) -> pd.Series:
    """The query-size group of each run: 'q=16', or ``NO_SIZE`` for a run without one (drawn,
    not just counted)."""
    if "query_size" not in hybrid.columns:
        return pd.Series(NO_SIZE, index=hybrid.index)
    sizes = hybrid["query_size"]
    numeric = pd.to_numeric(sizes, errors="coerce")
    axis = levels(numeric, MAX_K_COLOURS)
    return numeric.map(lambda v: NO_SIZE if pd.isna(v) else f"q={axis.labels[axis.of(v)]}")


def _size_order(hybrid: pd.DataFrame):
    first = {}
    if "query_size" in hybrid.columns:
        numeric = pd.to_numeric(hybrid["query_size"], errors="coerce")
        for label, value in zip(hybrid["_q"], numeric):
            first[label] = min(first.get(label, np.inf), np.inf if pd.isna(value) else value)
    return lambda label: (first.get(label, np.inf), label)


def _draw_grid(ax, part: pd.DataFrame, pairs: list, sizes: list, q_colour: dict, never_y: float, rng) -> None:
    """One column per (ε, k) pair, the query sizes side by side in it."""
    width = 0.8 / max(1, len(sizes))
    for p_i, (eps, k) in enumerate(pairs):
        cell = part[(part["epsilon"] == eps) & (part["k"] == k)]
        for q_i, q in enumerate(sizes):
            sub = cell[cell["_q"] == q]
            x = p_i + (q_i - (len(sizes) - 1) / 2) * width
            values = sub["switch_round"].dropna().to_numpy(dtype=float)
            if len(values) >= BOX_MIN:
                ax.boxplot([values], positions=[x], widths=width * 0.8, showfliers=False, patch_artist=True,
                           boxprops={"facecolor": q_colour[q], "alpha": 0.3}, medianprops={"color": "black"})
            elif len(values) >= 3:  # a median tick; two values are shown as they are, not summarised
                ax.plot([x - width * 0.35, x + width * 0.35], [np.median(values)] * 2, color="black", lw=1.2)
            jitter = rng.uniform(-width / 3, width / 3, len(sub))
            switched = sub["switch_round"].notna().to_numpy()
            ys = np.where(switched, sub["switch_round"].fillna(0).to_numpy(dtype=float),
                          never_y + rng.uniform(-0.4, 0.4, len(sub)))
            ax.scatter((x + jitter)[switched], ys[switched], s=20, color=q_colour[q], edgecolors="black",
                       linewidths=0.4, zorder=3)
            ax.scatter((x + jitter)[~switched], ys[~switched], s=20, facecolors="white", edgecolors=q_colour[q],
                       linewidths=1.2, zorder=3)
    texts_e = number_labels(e for e, _ in pairs)
    texts_k = number_labels(k for _, k in pairs)
    ax.set_xticks(range(len(pairs)), [f"ε={texts_e[e]}\nk={texts_k[k]}" for e, k in pairs], fontsize=8)
    ax.set_xlim(-0.6, len(pairs) - 0.4)
    ax.set_xlabel("switch trigger (ε, k)")


def _draw_scatter(ax, part: pd.DataFrame, k_levels, k_colour: list, q_marker: dict, never_y: float, rng) -> None:
    """Switch round against ε, coloured by k, one marker per query size."""
    switched = part["switch_round"].notna()
    ys = part["switch_round"].where(switched, never_y).to_numpy(dtype=float)
    ys = ys + np.where(switched, 0.0, rng.uniform(-0.35, 0.35, len(part)))  # never-row points stay apart
    for q, marker in q_marker.items():
        for code, colour in enumerate(k_colour):
            mask = ((part["_q"] == q) & (k_levels.codes(part["k"]) == code)).to_numpy()
            for hit, face in ((mask & switched.to_numpy(), colour), (mask & ~switched.to_numpy(), "white")):
                if hit.any():
                    ax.scatter(part["epsilon"].to_numpy(dtype=float)[hit], ys[hit], marker=marker, s=30,
                               facecolors=face, edgecolors=colour if face == "white" else "black",
                               linewidths=1.1 if face == "white" else 0.4, zorder=3)
    log_if_wide(ax, part["epsilon"], ratio=5.0)
    ax.set_xlabel("ε (switch threshold)")
