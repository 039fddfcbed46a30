"""switch_timing.png: the round after which the hybrid switched, per (ε, k) and query size."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from analysis.aggregate import HYBRID, WARM_START_KEYS
from analysis.figures.common import OKABE_ITO, axes_grid, bottom_legend, layout, marker_handle, save, split_facets


def plot_switch_timing(trials: pd.DataFrame, keys: Sequence[str], path: Path) -> str | None:
    """Distribution of switch_round over (ε, k): box + points per query size; how many runs never
    switched is written above each group."""
    hybrid = trials[trials["strategy"] == HYBRID] if "strategy" in trials.columns else trials.iloc[:0]
    if hybrid.empty:
        return "switch_timing.png: no hybrid runs"
    if hybrid["switch_round"].notna().sum() == 0:
        return "switch_timing.png: no hybrid run switched"
    # The switch round does not depend on the warm-start settings (they act only after it).
    facet_keys = [k for k in keys if k not in ("strategy", "epsilon", "k", "query_size", *WARM_START_KEYS)]
    facets = split_facets(hybrid, facet_keys)
    pairs = sorted({(e, k) for e, k in zip(hybrid["epsilon"], hybrid["k"])})
    sizes = sorted(hybrid["query_size"].dropna().unique()) if "query_size" in hybrid.columns else [None]
    q_colour = {q: OKABE_ITO[i % len(OKABE_ITO)] for i, q in enumerate(sizes)}
    width = 0.8 / max(1, len(sizes))
    fig, axes = axes_grid(len(facets), ncols=1, size=(min(14.0, max(6.0, 0.9 * len(pairs) + 2)), 4.6))
    rng = np.random.default_rng(0)  # jitter only; fixed so reruns give identical images
    for ax, (title, part) in zip(axes, facets):
        top = float(part["switch_round"].max()) if part["switch_round"].notna().any() else 1.0
        for p_i, (eps, k) in enumerate(pairs):
            cell = part[(part["epsilon"] == eps) & (part["k"] == k)]
            never, total = int(cell["switch_round"].isna().sum()), len(cell)
            for q_i, q in enumerate(sizes):
                sub = cell if q is None else cell[cell["query_size"] == q]
                values = sub["switch_round"].dropna().to_numpy(dtype=float)
                x = p_i + (q_i - (len(sizes) - 1) / 2) * width
                if len(values) >= 2:
                    ax.boxplot([values], positions=[x], widths=width * 0.8, showfliers=False,
                               patch_artist=True, boxprops={"facecolor": q_colour[q], "alpha": 0.3},
                               medianprops={"color": "black"})
                if len(values):
                    ax.scatter(x + rng.uniform(-width / 4, width / 4, len(values)), values, s=18,
                               color=q_colour[q], edgecolors="black", linewidths=0.4, zorder=3)
            if total:
                ax.text(p_i, top + 1.0, f"never: {never}/{total}", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(pairs)), [f"ε={e:g}\nk={k:g}" for e, k in pairs], fontsize=8)
        ax.set_ylim(-0.5, top + 3)
        ax.set_xlim(-0.6, len(pairs) - 0.4)
        ax.set_xlabel("switch trigger (ε, k)")
        ax.set_ylabel("switch round (decided after it)")
        ax.set_title(f"{title + ': ' if title else ''}when the hybrid switched to fine-tuning", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    if sizes != [None]:
        handles = [marker_handle("o", q_colour[q], f"query size {q:g}") for q in sizes]
        layout(fig, bottom=bottom_legend(fig, handles), title=False)
    else:
        layout(fig, title=False)
    return save(fig, path)
