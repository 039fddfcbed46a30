"""heatmap_f1.png and heatmap_saving.png: the hybrid's validation score and its saving vs retrain
over ε x k."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from analysis.aggregate import COSTS, HYBRID
from analysis.figures.common import SCORE_LABELS, axes_grid, layout, save, split_facets


def plot_heatmap_f1(table: pd.DataFrame, keys: Sequence[str], path: Path,
                    score: str = "final_val_f1") -> str | None:
    """Mean validation ``score`` of the hybrid over ε (rows) x k (columns), one panel per query
    size (and other facet keys), each panel on its own colour scale so the ε/k effect inside it
    can be read; cells annotated with mean ± std, never-switched cells marked ``= retrain``."""
    what = SCORE_LABELS.get(score, score)
    return _heatmap(table, keys, path, f"{score}_mean", f"{score}_std", fmt="{:.3f}", cmap="cividis",
                    center=None, what=f"{what} (mean ± std over seeds; chooses ε, k)",
                    name="heatmap_f1.png", unit=what)


def plot_heatmap_saving(table: pd.DataFrame, keys: Sequence[str], path: Path, cost: str) -> str | None:
    """Saving of ``cost`` vs retrain in % over ε x k (positive = cheaper than retrain), each panel
    on its own colour scale. A configuration that trained on exactly retrain's samples saved
    nothing: its cell is 0, whatever seconds the clock measured."""
    short = COSTS[cost]
    col = f"saving_{short}_pct_mean"
    hybrid = table[table["strategy"] == HYBRID] if "strategy" in table.columns else table.iloc[:0]
    if hybrid.empty:
        return "heatmap_saving.png: no hybrid runs"
    if col not in table.columns or hybrid[col].notna().sum() == 0:
        return ("heatmap_saving.png: no retrain baseline with the same dataset, learner and query size "
                "to compare the hybrid with")
    if "same_samples_as_retrain" in table.columns:
        same = table["same_samples_as_retrain"].fillna(False).astype(bool)
        table = table.assign(**{col: table[col].where(~same, 0.0),
                                f"saving_{short}_pct_std": table[f"saving_{short}_pct_std"].where(~same, np.nan)})
    resource = "training time" if short == "time" else "training samples"
    return _heatmap(table, keys, path, col, f"saving_{short}_pct_std", fmt="{:.0f}%", cmap="PuOr",
                    center=0.0, what=f"saving in {resource} vs retrain, % (mean ± std over paired seeds)",
                    name="heatmap_saving.png", unit="saving vs retrain (%)")


def _heatmap(table: pd.DataFrame, keys: Sequence[str], path: Path, value: str, spread: str, fmt: str,
             cmap: str, center: float | None, what: str, name: str, unit: str) -> str | None:
    hybrid = table[table["strategy"] == HYBRID] if "strategy" in table.columns else table.iloc[:0]
    if hybrid.empty:
        return f"{name}: no hybrid runs"
    if hybrid[value].notna().sum() == 0:
        return f"{name}: no values for {value}"
    if len(hybrid[["epsilon", "k"]].drop_duplicates()) < 2:
        return f"{name}: the hybrid runs cover a single (ε, k) pair, nothing to map"
    facet_keys = [k for k in keys if k not in ("strategy", "epsilon", "k")]
    panels = split_facets(hybrid, facet_keys)
    fig, axes = axes_grid(len(panels), ncols=min(3, len(panels)), size=(4.8, 4.0))
    for ax, (title, part) in zip(axes, panels):
        grid = part.pivot_table(index="epsilon", columns="k", values=value, aggfunc="mean")
        err = part.pivot_table(index="epsilon", columns="k", values=spread, aggfunc="mean", dropna=False)
        err = err.reindex(index=grid.index, columns=grid.columns)
        never = (part.assign(_never=part.get("never_switched", False)).pivot_table(
            index="epsilon", columns="k", values="_never", aggfunc="max")
            .reindex(index=grid.index, columns=grid.columns).fillna(False).astype(bool))
        values = grid.to_numpy(dtype=float)
        # Each panel its own scale: across query sizes the F1 level differs by more than ε and k
        # move it, so one shared scale left every panel a single colour.
        panel_cmap, vmin, vmax = _colour_scale(values, cmap, center)
        image = ax.imshow(values, cmap=panel_cmap, vmin=vmin, vmax=vmax, aspect="auto")
        for (r, c), v in np.ndenumerate(values):
            if math.isnan(v):
                continue
            sd = err.to_numpy(dtype=float)[r, c]
            text = fmt.format(v) + ("" if math.isnan(sd) else "\n±" + fmt.format(sd))
            if never.to_numpy()[r, c]:
                text += "\n= retrain"
            rgba = image.cmap(image.norm(v))
            light = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2] > 0.55
            ax.text(c, r, text, ha="center", va="center", fontsize=7.5, color="black" if light else "white")
        ax.set_xticks(range(len(grid.columns)), [f"{k:g}" for k in grid.columns])
        ax.set_yticks(range(len(grid.index)), [f"{e:g}" for e in grid.index])
        ax.set_xlabel("k (consecutive rounds below ε)")
        ax.set_ylabel("ε (|ΔF1| threshold)")
        ax.set_title(title or "hybrid", fontsize=10)
        fig.colorbar(image, ax=ax, shrink=0.85).set_label(f"{unit} (this panel's scale)", fontsize=8)
    fig.suptitle(f"Hybrid: {what}\neach panel has its own colour scale; '= retrain': never switched in any seed",
                 fontsize=10)
    layout(fig)
    return save(fig, path)


def _colour_scale(values: np.ndarray, cmap: str, center: float | None) -> tuple[str, float, float]:
    """(cmap, vmin, vmax) of one panel: diverging around ``center`` only when the values straddle
    it (savings of both signs), else sequential, which resolves small differences far better."""
    vmin, vmax = float(np.nanmin(values)), float(np.nanmax(values))
    if center is not None and vmin < center < vmax:
        span = max(center - vmin, vmax - center)
        vmin, vmax = center - span, center + span
    else:
        cmap = "cividis"
    if vmin == vmax:
        vmin, vmax = vmin - 0.01 * (abs(vmin) or 1), vmax + 0.01 * (abs(vmax) or 1)
    return cmap, vmin, vmax
