"""pareto.png: cost vs validation score of every configuration, the Pareto front numbered and
named in a key table beside the panels."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from analysis.aggregate import BASELINES
from analysis.figures.common import (COST_LABELS, OTHER_STYLE, SCORE_LABELS, STRATEGY_ORDER, STRATEGY_STYLE,
                                     bottom_legend, by_strategy, layout, legend_marker, line_handle,
                                     marker_handle, missing, save, split_facets)
from analysis.pareto import front_by_group

ZOOM_FRACTION = 0.2  # pareto.png zooms on configurations within this share of the best score


def plot_pareto(table: pd.DataFrame, path: Path, cost: str, score: str,
                keys: Sequence[str] = ()) -> str | None:
    """Cost vs validation score of every configuration (seed means, ±1 std bars), the Pareto front
    connected and ringed; one row per dataset: the full panel, a zoom on the high-score
    configurations where far worse ones (typically new_only) squash the rest, and a key table.

    Every point on the front and every baseline carries a number; the table beside the panels
    says which configuration each number is, with its validation score, its test F1 (the outcome,
    never used to choose) and its cost. Configurations with identical results share one number.
    Never-switched hybrids are the retrain run and are not drawn. ``table`` comes from
    ``report.mark_front`` (it carries ``front_cost``, ``on_front`` and ``never_switched``).
    """
    data = table[~table["never_switched"]] if "never_switched" in table.columns else table
    data = data.dropna(subset=[f"{cost}_mean", f"{score}_mean"])
    if data.empty:
        return f"pareto.png: no configuration has both {cost} and {score}"
    if "front_cost" not in data.columns:
        data = data.assign(front_cost=data[f"{cost}_mean"])
    if "on_front" not in data.columns:
        data = data.assign(on_front=front_by_group(data, "front_cost", f"{score}_mean").to_numpy())
    single_seed = bool((data["n_seeds"] <= 1).all())
    datasets = [(title, part, _zoomed(part, score)) for title, part in split_facets(data, ["dataset"])]
    columns = 3 if any(zoom is not None for _, _, zoom in datasets) else 2
    fig = Figure(figsize=(7.0 * (columns - 1) + 8.5, 5.6 * len(datasets)))
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(len(datasets), columns, width_ratios=[1.0] * (columns - 1) + [1.25])
    for row_i, (title, part, zoomed) in enumerate(datasets):
        title = title or "all runs"
        numbered = _number_points(part, score)
        panels = [(fig.add_subplot(grid[row_i, 0]), part, title)]
        if zoomed is not None:
            panels.append((fig.add_subplot(grid[row_i, 1]),
                           zoomed, f"{title}: zoom on the top {ZOOM_FRACTION:.0%} of the score range"))
        for ax, rows, panel_title in panels:
            _draw_pareto_panel(ax, rows, numbered, cost, score, single_seed)
            ax.set_title(panel_title, fontsize=10)
        _key_table(fig.add_subplot(grid[row_i, columns - 1]), part, numbered, keys, cost, score)
    handles = [legend_marker(s) for s in STRATEGY_ORDER if s in set(data["strategy"])]
    handles.append(line_handle("black", "Pareto front (ringed)"))
    handles.append(marker_handle("o", "white", "n = see the table on the right", edge="black"))
    bottom = bottom_legend(fig, handles)
    spread = "single seed: no error bars" if single_seed else "bars: ±1 std over seeds"
    hidden = int(table["never_switched"].sum()) if "never_switched" in table.columns else 0
    notes = ["test F1 is the outcome, in the table"]
    if cost == "total_train_time_s":
        notes.append("equal-sample configurations share their mean seconds")
    if hidden:
        notes.append(f"{hidden} never-switched hybrid(s) = retrain, not drawn")
    fig.suptitle(f"Cost vs {SCORE_LABELS.get(score, score)} (chooses; seed means, {spread})\n"
                 + "; ".join(notes), fontsize=11)
    layout(fig, bottom=bottom)
    return save(fig, path)


def _zoomed(part: pd.DataFrame, score: str) -> pd.DataFrame | None:
    """The configurations in the top ``ZOOM_FRACTION`` of the score range, when a zoom shows more."""
    scores = part[f"{score}_mean"]
    zoomed = part[scores >= scores.max() - ZOOM_FRACTION * (scores.max() - scores.min())]
    return zoomed if 3 <= len(zoomed) < len(part) else None


def _number_points(part: pd.DataFrame, score: str) -> dict[int, int]:
    """index -> number for the points to identify: the front and the baselines, numbered by
    increasing cost. Configurations with identical cost and score (the same runs, e.g. two (ε, k)
    rules that switched at the same rounds) share a number, so no two numbers sit on one spot."""
    marked = part[part["on_front"] | part["strategy"].isin(BASELINES)]
    marked = marked.sort_values(["front_cost", f"{score}_mean"], ascending=[True, False], kind="stable")
    numbers: dict[int, int] = {}
    spots: dict[tuple[float, float], int] = {}
    for index, row in marked.iterrows():
        spot = (round(float(row["front_cost"]), 9), round(float(row[f"{score}_mean"]), 9))
        numbers[index] = spots.setdefault(spot, len(spots) + 1)
    return numbers


def _draw_pareto_panel(ax, part: pd.DataFrame, numbered: dict[int, int], cost: str, score: str,
                       single_seed: bool) -> None:
    """Markers, error bars, the front line and the numbered badges of one panel."""
    for strategy, rows in by_strategy(part):
        colour, marker = STRATEGY_STYLE.get(strategy, OTHER_STYLE)
        ax.errorbar(rows["front_cost"], rows[f"{score}_mean"],
                    xerr=None if single_seed else rows[f"{cost}_std"].fillna(0).to_numpy(),
                    yerr=None if single_seed else rows[f"{score}_std"].fillna(0).to_numpy(),
                    fmt=marker, color=colour, ecolor=colour, elinewidth=0.8, capsize=2, alpha=0.55,
                    markersize=6, zorder=3)
    front = part[part["on_front"]].sort_values("front_cost")
    ax.plot(front["front_cost"], front[f"{score}_mean"], "-", color="black", lw=1.2, zorder=2)
    ax.scatter(front["front_cost"], front[f"{score}_mean"], s=330, facecolors="none",
               edgecolors="black", linewidths=1.2, zorder=4)
    drawn: set[int] = set()
    for index, row in part.iterrows():
        number = numbered.get(index)
        if number is None or number in drawn:
            continue
        drawn.add(number)
        colour, _ = STRATEGY_STYLE.get(row["strategy"], OTHER_STYLE)
        ax.scatter([row["front_cost"]], [row[f"{score}_mean"]], s=190, facecolors="white",
                   edgecolors=colour, linewidths=1.8, zorder=5)
        ax.annotate(str(number), (row["front_cost"], row[f"{score}_mean"]), ha="center", va="center",
                    fontsize=7, fontweight="bold", color="black", zorder=6)
    costs = part["front_cost"].to_numpy(dtype=float)
    if costs.min() > 0 and costs.max() / costs.min() > 20:
        ax.set_xscale("log")  # new_only is orders of magnitude cheaper than retrain
    ax.set_xlabel(f"{COST_LABELS.get(cost, cost)}, mean over seeds")
    ax.set_ylabel(f"{SCORE_LABELS.get(score, score)}, mean over seeds")
    ax.grid(alpha=0.3)
    ax.margins(x=0.08, y=0.08)


def _key_table(ax, part: pd.DataFrame, numbered: dict[int, int], keys: Sequence[str], cost: str,
               score: str) -> None:
    """The table that names every numbered point: configuration (only the settings that vary in
    this panel), validation score, test F1 (outcome) and cost."""
    ax.axis("off")
    labels = panel_labels(part, keys)
    entries: dict[int, list[int]] = {}
    for index, number in numbered.items():
        entries.setdefault(number, []).append(index)
    is_time = cost == "total_train_time_s"
    rows = []
    for number in sorted(entries):
        members = entries[number]
        first = part.loc[members[0]]
        name = " = ".join(labels[i] for i in members)
        if len(members) > 1:
            name += " (identical results)"
        # The cost the point is drawn at (with seconds: pooled over equal-sample configurations).
        cost_text = (f"{first['front_cost']:,.1f}" if is_time else f"{first['front_cost']:,.0f}")
        if is_time and not missing(first.get(f"{cost}_std")):
            cost_text += f" ± {first[f'{cost}_std']:.1f}"
        rows.append([str(number), ("★ " if first["on_front"] else "") + _wrap(name, 46),
                     f"{first[f'{score}_mean']:.3f}", _mean_text(first, "final_test_f1"), cost_text])
    if not rows:
        return
    score_name = "val AULC" if score == "aulc" else "val F1"
    header = ["#", "configuration (★ = on the front)", f"{score_name}\n(chooses)", "test F1\n(outcome)",
              "time (s), equal\nsamples pooled" if is_time else "samples"]
    table = ax.table(cellText=rows, colLabels=header, loc="upper center", cellLoc="left",
                     colLoc="left", colWidths=[0.05, 0.53, 0.12, 0.12, 0.18])
    table.auto_set_font_size(False)
    table.set_fontsize(7.5)
    for (r, _), cell in table.get_celld().items():
        cell.set_height(0.062 if r == 0 else 0.045 * (1 + cell.get_text().get_text().count("\n")))
        cell.set_linewidth(0.3)


def panel_labels(part: pd.DataFrame, keys: Sequence[str]) -> dict[int, str]:
    """index -> a label naming the strategy and only the settings that vary within ``part`` (and
    that the row uses): e.g. ``hybrid ε=0.01 k=2`` when the panel has one query size, never
    ``shrink=-`` for a retrain run."""
    shown = []
    for key in keys:
        if key in ("dataset", "strategy") or key not in part.columns:
            continue
        values = part[key].dropna()
        if values.astype(str).nunique() > 1:
            shown.append(key)
    names = {"epsilon": "ε", "query_size": "q"}
    out = {}
    for index, row in part.iterrows():
        parts = [str(row.get("strategy", "?"))]
        for key in shown:
            value = row.get(key)
            if not missing(value) and not (isinstance(value, float) and math.isnan(value)):
                text = f"{value:g}" if isinstance(value, (float, np.floating)) else str(value)
                parts.append(f"{names.get(key, key)}={text}")
        out[index] = " ".join(parts)
    return out


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width=width, break_on_hyphens=False)) or text


def _mean_text(row: pd.Series, metric: str) -> str:
    mean, std = row.get(f"{metric}_mean"), row.get(f"{metric}_std")
    if missing(mean):
        return "–"
    return f"{mean:.3f}" + ("" if missing(std) else f" ± {std:.3f}")
