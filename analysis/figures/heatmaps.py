"""heatmap_f1.png and heatmap_saving.png: the hybrid's validation score and its saving vs retrain
over ε x k (ranges of ε and k for a continuous search)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle

from analysis.aggregate import COSTS, HYBRID
from analysis.figures.common import SCORE_LABELS, axes_grid, cap, levels, missing, save, split_facets

MAX_EPSILON_ROWS = 6  # more distinct ε are binned into this many rows
MAX_K_COLUMNS = 6  # more distinct k are binned into this many columns
MAX_HEATMAP_PANELS = 9
RETRAIN_CELL = "0.8"  # cells whose hybrids never switched: they are the retrain run
RETRAIN_HATCH = "///"


def plot_heatmap_f1(table: pd.DataFrame, keys: Sequence[str], path: Path,
                    score: str = "final_val_f1") -> str | None:
    """Mean validation ``score`` of the hybrid over ε (rows) x k (columns), one panel per query
    size (and other facet keys), each panel on its own colour scale: across query sizes the level
    differs by more than ε and k move it, and one shared scale left every panel a single colour.
    Cells carry mean ± std over seeds; a cell whose hybrids never switched is hatched and says
    ``= retrain``. A continuous search is binned: a cell is then the mean over its configurations."""
    what = SCORE_LABELS.get(score, score)
    return _heatmap(table, keys, path, f"{score}_mean", f"{score}_std", fmt="{:.3f}", name="heatmap_f1.png",
                    what=f"{what} (mean ± std over seeds; chooses ε, k)", unit=what, saving=False)


def plot_heatmap_saving(table: pd.DataFrame, keys: Sequence[str], path: Path, cost: str) -> str | None:
    """Saving of ``cost`` vs retrain in % over ε x k (positive = cheaper than retrain), every
    panel on one colour scale centred on 0: a saving means the same in every panel, and its sign
    is what a reader looks for. A configuration that trained on exactly retrain's samples saved
    nothing: its saving is 0 by definition, whatever seconds the clock measured, and its cell says
    so (hatched, ``= retrain``) rather than showing a measured 0%."""
    short = COSTS[cost]
    col, spread = f"saving_{short}_pct_mean", f"saving_{short}_pct_std"
    hybrid = table[table["strategy"] == HYBRID] if "strategy" in table.columns else table.iloc[:0]
    if hybrid.empty:
        return "heatmap_saving.png: no hybrid runs"
    if col not in table.columns or hybrid[col].notna().sum() == 0:
        return ("heatmap_saving.png: no retrain baseline with the same dataset, learner and query size "
                "to compare the hybrid with")
    if spread not in table.columns:  # a table from before seeds were paired, or one seed: no spread
        table = table.assign(**{spread: np.nan})
    if "same_samples_as_retrain" in table.columns:
        same = table["same_samples_as_retrain"].fillna(False).astype(bool)
        table = table.assign(**{col: table[col].where(~same, 0.0), spread: table[spread].where(~same, np.nan),
                                "_same": same})
    resource = "training time" if short == "time" else "training samples"
    return _heatmap(table, keys, path, col, spread, fmt="{:.0f}%", name="heatmap_saving.png",
                    what=f"saving in {resource} vs retrain, % (mean ± std over paired seeds)",
                    unit="saving vs retrain (%)", saving=True)


def _heatmap(table: pd.DataFrame, keys: Sequence[str], path: Path, value: str, spread: str, fmt: str,
             name: str, what: str, unit: str, saving: bool) -> str | None:
    """One panel per facet of ``value`` over ε x k. ``saving``: one diverging scale centred on 0
    for all panels, and retrain cells are 0 by definition; else each panel its own sequential
    scale, and retrain cells show retrain's value."""
    hybrid = table[table["strategy"] == HYBRID] if "strategy" in table.columns else table.iloc[:0]
    if hybrid.empty:
        return f"{name}: no hybrid runs"
    if value not in hybrid.columns or hybrid[value].notna().sum() == 0:
        return f"{name}: no values for {value}"
    if len(hybrid[["epsilon", "k"]].drop_duplicates()) < 2:
        return f"{name}: the hybrid runs cover a single (ε, k) pair, nothing to map"
    hybrid = hybrid.assign(_never=hybrid["never_switched"].astype(bool) if "never_switched" in hybrid.columns
                           else False)
    if spread not in hybrid.columns:
        hybrid = hybrid.assign(**{spread: np.nan})
    if "_same" not in hybrid.columns:
        hybrid = hybrid.assign(_same=False)
    eps_levels = levels(hybrid["epsilon"], MAX_EPSILON_ROWS)
    k_levels = levels(hybrid["k"], MAX_K_COLUMNS)
    hybrid = hybrid.assign(_row=eps_levels.codes(hybrid["epsilon"]), _col=k_levels.codes(hybrid["k"]))
    hybrid = hybrid[(hybrid["_row"] >= 0) & (hybrid["_col"] >= 0)]
    facet_keys = [k for k in keys if k not in ("strategy", "epsilon", "k")]
    panels, left_out = cap(split_facets(hybrid, facet_keys), MAX_HEATMAP_PANELS, "panels")
    nrows, ncols = len(eps_levels.labels), len(k_levels.labels)
    # Cells big enough for three lines of 7-pt text; the panel grows with the grid, not the figure.
    size = (1.9 + 0.95 * ncols, 1.5 + 0.62 * nrows)
    fig, axes = axes_grid(len(panels), ncols=min(3, len(panels)), size=size)
    cells = [_cells(part, value, spread, nrows, ncols) for _, part in panels]
    # Retrain cells are hatched over: their values must not stretch the scale of the hybrid's.
    measured = [_measured(values, facts) for values, facts in cells]
    if saving:
        scale = _colour_scale(np.concatenate([m.ravel() for m in measured]), centre=0.0)
    binned = eps_levels.binned or k_levels.binned
    for ax, (title, part), (values, text), own in zip(axes, panels, cells, measured):
        cmap, vmin, vmax = scale if saving else _colour_scale(own.ravel(), centre=None)
        ax.set_facecolor("0.97")  # a cell without a configuration
        image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
        for (r, c), v in np.ndenumerate(values):
            if np.isnan(v):
                continue
            lines = _cell_text(text[r][c], fmt, v, forced=saving)
            if text[r][c]["all_retrain"]:
                ax.add_patch(_hatched(r, c))
                colour = "black"
            else:
                rgba = image.cmap(image.norm(v))
                colour = "black" if 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2] > 0.55 else "white"
            ax.text(c, r, lines, ha="center", va="center", fontsize=7, color=colour, linespacing=1.1)
        ax.set_xticks(range(ncols), k_levels.labels, fontsize=8)
        ax.set_yticks(range(nrows), eps_levels.labels, fontsize=8)
        ax.set_xlabel("k (consecutive stable rounds)" + (", binned" if k_levels.binned else ""))
        ax.set_ylabel("ε (switch threshold)" + (", binned" if eps_levels.binned else ""))
        ax.set_title(title or "hybrid", fontsize=10)
        if not saving:
            fig.colorbar(image, ax=ax, shrink=0.85).set_label(f"{unit}\n(this panel's scale)", fontsize=8)
    if saving:
        fig.colorbar(image, ax=axes, shrink=0.85).set_label(f"{unit} (one scale for all panels)", fontsize=8)
    notes = ["hatched '= retrain': never switched in any seed, this is the retrain run"]
    if saving:
        notes = ["hatched '= retrain': trained exactly retrain's samples, so the saving is 0 by definition"]
    notes.append("one colour scale for all panels" if saving else "each panel has its own colour scale")
    if binned:
        notes.append(f"ε and k binned ({len(hybrid)} configurations): a cell is the mean over the hybrids "
                     "in it that switched; blank: none sampled")
    if left_out:
        notes.append(left_out)
    fig.suptitle(f"Hybrid: {what}\n" + "\n".join(_pairs(notes)), fontsize=10)
    return save(fig, path)


def _cells(part: pd.DataFrame, value: str, spread: str, nrows: int, ncols: int):
    """(values, text facts) of one panel. A cell's value is the mean over its hybrids that did
    switch (binned cells hold several configurations): a never-switched one is the retrain run,
    and averaging it in would credit the hybrid with retrain's result. Only a cell whose hybrids
    all stayed retrain shows retrain's value (hatched). The facts: how many configurations were
    averaged, their seed spread (one configuration) and how many are retrain."""
    values = np.full((nrows, ncols), np.nan)
    facts = [[None] * ncols for _ in range(nrows)]
    for (r, c), cell in part.groupby(["_row", "_col"]):
        retrain = (cell["_never"] | cell["_same"]).to_numpy()
        used = cell if retrain.all() else cell[~retrain]
        values[r, c] = used[value].mean()
        facts[r][c] = {"n": len(used), "sd": used[spread].iloc[0] if len(used) == 1 else np.nan,
                       "retrain": int(retrain.sum()), "all_retrain": bool(retrain.all())}
    return values, facts


def _measured(values: np.ndarray, facts: list[list[dict | None]]) -> np.ndarray:
    """``values`` with the all-retrain cells blanked."""
    out = values.copy()
    for (r, c), _ in np.ndenumerate(values):
        if facts[r][c] is not None and facts[r][c]["all_retrain"]:
            out[r, c] = np.nan
    return out


def _cell_text(facts: dict, fmt: str, value: float, forced: bool) -> str:
    """The text of one cell; ``forced``: the retrain cells' value is 0 by definition (savings),
    so they name that instead of showing a number that reads as measured."""
    lines = [fmt.format(value)]
    if facts["all_retrain"]:
        lines = ["= retrain", "(0 by definition)"] if forced else lines + ["= retrain"]
        return "\n".join(lines + ([f"{facts['n']} configs"] if facts["n"] > 1 else []))
    if facts["n"] > 1:
        lines.append(f"mean of {facts['n']}")
    elif not missing(facts["sd"]):
        lines.append("±" + fmt.format(facts["sd"]).lstrip("+"))
    if facts["retrain"]:
        lines.append(f"+{facts['retrain']} = retrain")
    return "\n".join(lines)


def _pairs(notes: list[str]) -> list[str]:
    """The notes two to a line, so the title stays narrower than the panels."""
    return ["; ".join(notes[i:i + 2]) for i in range(0, len(notes), 2)]


def _hatched(r: int, c: int) -> Rectangle:
    return Rectangle((c - 0.5, r - 0.5), 1, 1, facecolor=RETRAIN_CELL, edgecolor="0.45", hatch=RETRAIN_HATCH,
                     lw=0, zorder=2)


def _colour_scale(values: np.ndarray, centre: float | None) -> tuple[str, float, float]:
    """(cmap, vmin, vmax): centred on ``centre`` with a diverging map (purple = cheaper than
    retrain, orange = dearer), or sequential (cividis, which resolves small F1 differences) when
    there is no centre."""
    finite = values[np.isfinite(values)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    if centre is not None:
        span = max(abs(vmin - centre), abs(vmax - centre)) or 1.0
        return "PuOr", centre - span, centre + span
    if vmin == vmax:
        vmin, vmax = vmin - 0.01 * (abs(vmin) or 1), vmax + 0.01 * (abs(vmax) or 1)
    return "cividis", vmin, vmax
