"""pareto.png: cost vs validation score of every configuration, every point numbered and named in
a key table beside the panels, the Pareto front outlined and connected."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from analysis.aggregate import BASELINES
from analysis.figures.common import (COST_LABELS, OKABE_ITO, OTHER_STYLE, SCORE_LABELS, STRATEGY_ORDER,
                                     STRATEGY_STYLE, bottom_legend, by_strategy, cap, figure, legend_marker,
                                     levels, line_handle, log_if_wide, marker_handle, missing, number_labels,
                                     SHORT_KEYS, patch_handle, place_labels, save, split_facets)
from analysis.pareto import front_by_group

ZOOM_FRACTION = 0.2  # pareto.png zooms on configurations within this share of the best score
MAX_NUMBERED = 60  # points numbered per dataset; beyond, only the front, baselines and recommended
MAX_DATASETS = 3
MAX_SIZE_COLOURS = 6
FRONT_EDGE = "black"
TABLE_FONT = 7.5
LINE_IN = TABLE_FONT * 1.32 / 72  # one text line of the key table, in inches
PAD_IN = 0.07  # a cell's padding above and below its text, in inches
NAME_WIDTH = 50  # characters per line of the configuration column
TABLE_WIDTH_IN = 7.2
PANEL_IN = (7.0, 4.4)
ZOOM_HEIGHT_IN = 3.4


def plot_pareto(table: pd.DataFrame, path: Path, cost: str, score: str,
                keys: Sequence[str] = ()) -> str | None:
    """Cost vs validation score of every configuration (seed means, ±1 std bars); one row per
    dataset: the full panel, below it a zoom on the high-score configurations where far worse ones
    (typically new_only) squash the rest, and beside them a key table.

    Marker shape = strategy; colour = query size when the sweep has several (else the strategy's
    colour). The Pareto front is outlined in black and connected. Every point carries a number,
    placed beside it (with a leader line where the neighbourhood is crowded) and named in the
    table with its validation score (chooses), test F1 (the outcome, never used to choose) and
    cost; configurations with identical results share a number. Past ``MAX_NUMBERED`` points only
    the front, the baselines and the recommended hybrids are numbered. Never-switched hybrids are
    the retrain run and are not drawn. ``table`` comes from ``report.mark_front`` (it carries
    ``front_cost``, ``on_front`` and ``never_switched``).
    """
    data = table[~table["never_switched"]] if "never_switched" in table.columns else table
    data = data.dropna(subset=[f"{cost}_mean", f"{score}_mean"])
    if data.empty:
        return f"pareto.png: no configuration has both {cost} and {score}"
    if "front_cost" not in data.columns:
        data = data.assign(front_cost=data[f"{cost}_mean"])
    if "on_front" not in data.columns:
        data = data.assign(on_front=front_by_group(data, "front_cost", f"{score}_mean").to_numpy())
    if "recommended" not in data.columns:
        data = data.assign(recommended=False)
    single_seed = bool((data["n_seeds"] <= 1).all())
    style = _Style(data)
    datasets, left_out = cap(split_facets(data, ["dataset"]), MAX_DATASETS, "datasets")
    rows = []
    for title, part in datasets:
        numbered, unnumbered = _number_points(part, score)
        key_rows = _key_rows(part, numbered, keys, cost, score)
        zoomed = _zoomed(part, score)
        panels_in = PANEL_IN[1] + (ZOOM_HEIGHT_IN if zoomed is not None else 0.0)
        table_in = _table_height(key_rows) + 0.5
        rows.append((title or "all runs", part, zoomed, numbered, unnumbered, key_rows, max(panels_in, table_in)))
    heights = [r[-1] for r in rows]
    fig = figure(PANEL_IN[0] + TABLE_WIDTH_IN + 0.6, sum(heights) + 1.3)
    # Legend and title first: the key tables and the numbers are laid out in the final geometry.
    bottom_legend(fig, style.handles(), ncol=min(len(style.handles()), 10))
    spread = "single seed: no error bars" if single_seed else "bars: ±1 std over seeds"
    hidden = int(table["never_switched"].sum()) if "never_switched" in table.columns else 0
    notes = ["test F1 is the outcome, in the table"]
    if cost == "total_train_time_s":
        notes.append("equal-sample configurations share their mean seconds")
    if hidden:
        notes.append(f"{hidden} never-switched hybrid(s) = retrain, not drawn")
    if left_out:
        notes.append(left_out)
    fig.suptitle(f"Cost vs {SCORE_LABELS.get(score, score)} (chooses; seed means, {spread})\n"
                 + "; ".join(notes), fontsize=11)
    subfigs = fig.subfigures(len(rows), 1, height_ratios=heights, squeeze=False).ravel()
    labelled = []
    for sub, (title, part, zoomed, numbered, unnumbered, key_rows, height) in zip(subfigs, rows):
        zoom_in = ZOOM_HEIGHT_IN if zoomed is not None else 0.0
        grid = sub.add_gridspec(2, 2, width_ratios=[PANEL_IN[0], TABLE_WIDTH_IN],
                                height_ratios=[height - zoom_in, max(zoom_in, 1e-3)])
        if zoomed is None:
            panels = [(sub.add_subplot(grid[:, 0]), part, title)]
        else:
            panels = [(sub.add_subplot(grid[0, 0]), part, title),
                      (sub.add_subplot(grid[1, 0]), zoomed, f"{title}: zoom on the top {ZOOM_FRACTION:.0%} "
                                                            "of the score range")]
        for ax, points, panel_title in panels:
            _draw_panel(ax, points, style, cost, score, single_seed)
            ax.set_title(panel_title, fontsize=10)
            labelled.append((ax, points, numbered))
        note = f"{unnumbered} hybrid(s) off the front not numbered; all are in summary.csv" if unnumbered else ""
        _key_table(sub.add_subplot(grid[:, 1]), key_rows, score, cost, note)
    # Numbers go beside their points once the layout is final (placement works in display space).
    for ax, points, numbered in labelled:
        items, seen = [], set()
        for index, row in points.iterrows():
            number = numbered.get(index)
            if number is None or number in seen:
                continue
            seen.add(number)
            priority = 0 if row["on_front"] else 1 if row["strategy"] in BASELINES else 2
            items.append((row["front_cost"], row[f"{score}_mean"], str(number), priority))
        place_labels(ax, items)
    return save(fig, path)


class _Style:
    """Marker and colour of every point: marker = strategy, colour = query size (when several)."""

    def __init__(self, data: pd.DataFrame) -> None:
        self.strategies = [s for s in STRATEGY_ORDER if s in set(data["strategy"])]
        self.strategies += sorted(set(data["strategy"]) - set(STRATEGY_ORDER))
        sizes = data["query_size"] if "query_size" in data.columns else pd.Series(dtype=float)
        self.sizes = levels(pd.to_numeric(sizes, errors="coerce"), MAX_SIZE_COLOURS)
        self.by_size = len(self.sizes.labels) > 1

    def of(self, row: pd.Series) -> tuple[str, str]:
        colour, marker = STRATEGY_STYLE.get(row["strategy"], OTHER_STYLE)
        if self.by_size:
            level = self.sizes.of(row.get("query_size"))
            colour = OKABE_ITO[level % len(OKABE_ITO)] if level >= 0 else OTHER_STYLE[0]
        return colour, marker

    def handles(self) -> list:
        handles = [legend_marker(s, "0.35" if self.by_size else None) for s in self.strategies]
        if self.by_size:
            handles += [patch_handle(OKABE_ITO[i % len(OKABE_ITO)], f"q={label}")
                        for i, label in enumerate(self.sizes.labels)]
        handles.append(line_handle(FRONT_EDGE, "Pareto front (black outline)"))
        handles.append(marker_handle("$7$", "0.1", "number: row of the key table", size=8))
        return handles


def _zoomed(part: pd.DataFrame, score: str) -> pd.DataFrame | None:
    """The configurations in the top ``ZOOM_FRACTION`` of the score range, when a few far worse
    ones (new_only, typically) squash the rest: at most a quarter of the points lie in the lower
    half of the range, and the zoom holds at least three."""
    scores = part[f"{score}_mean"]
    low, high = scores.min(), scores.max()
    zoomed = part[scores >= high - ZOOM_FRACTION * (high - low)]
    squashed = (scores < (low + high) / 2).sum() <= len(part) / 4
    return zoomed if squashed and 3 <= len(zoomed) < len(part) else None


def _number_points(part: pd.DataFrame, score: str) -> tuple[dict[int, int], int]:
    """(index -> number, how many points go unnumbered): every point numbered by increasing cost,
    or past ``MAX_NUMBERED`` only the front, the baselines and the recommended hybrids.
    Configurations with identical cost and score (the same runs, e.g. two (ε, k) rules that
    switched at the same rounds) share a number, so no two numbers sit on one spot."""
    marked = part
    if len(part) > MAX_NUMBERED:
        marked = part[part["on_front"] | part["strategy"].isin(BASELINES) | part["recommended"]]
    marked = marked.sort_values(["front_cost", f"{score}_mean"], ascending=[True, False], kind="stable")
    numbers: dict[int, int] = {}
    spots: dict[tuple[float, float], int] = {}
    for index, row in marked.iterrows():
        spot = (round(float(row["front_cost"]), 9), round(float(row[f"{score}_mean"]), 9))
        numbers[index] = spots.setdefault(spot, len(spots) + 1)
    return numbers, len(part) - len(marked)


def _draw_panel(ax, part: pd.DataFrame, style: _Style, cost: str, score: str, single_seed: bool) -> None:
    """Error bars, markers (front outlined) and the front line of one panel."""
    for _, rows in by_strategy(part):
        for _, row in rows.iterrows():
            colour, marker = style.of(row)
            front = bool(row["on_front"])
            ax.errorbar([row["front_cost"]], [row[f"{score}_mean"]],
                        xerr=None if single_seed or missing(row.get(f"{cost}_std")) else [row[f"{cost}_std"]],
                        yerr=None if single_seed or missing(row.get(f"{score}_std")) else [row[f"{score}_std"]],
                        fmt=marker, color=colour, ecolor=colour, elinewidth=0.7, capsize=2,
                        alpha=1.0 if front else 0.7, markersize=7 if front else 6,
                        markeredgecolor=FRONT_EDGE if front else colour, markeredgewidth=1.3 if front else 0.5,
                        zorder=4 if front else 3)
    front = part[part["on_front"]].sort_values("front_cost")
    ax.plot(front["front_cost"], front[f"{score}_mean"], "-", color=FRONT_EDGE, lw=1.0, zorder=2)
    log = log_if_wide(ax, part["front_cost"])  # new_only is orders of magnitude cheaper than retrain
    ax.set_xlabel(f"{COST_LABELS.get(cost, cost)}, mean over seeds" + (" (log)" if log else ""))
    ax.set_ylabel(f"{SCORE_LABELS.get(score, score)}\nmean over seeds", fontsize=9)
    ax.grid(alpha=0.3)
    ax.margins(x=0.1, y=0.12)  # room for the numbers around the outermost points


def _key_rows(part: pd.DataFrame, numbered: dict[int, int], keys: Sequence[str], cost: str,
              score: str) -> list[list[str]]:
    """One row per number: number, configuration (only the settings that vary in this panel;
    ★ on the front, ◆ recommended), validation score ± std, test F1 ± std, cost."""
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
        marks = ("★" if first["on_front"] else "") + ("◆" if part.loc[members, "recommended"].any() else "")
        # The cost the point is drawn at (with seconds: pooled over equal-sample configurations).
        cost_text = f"{first['front_cost']:,.1f}" if is_time else f"{first['front_cost']:,.0f}"
        if is_time and not missing(first.get(f"{cost}_std")):
            cost_text += f" ± {first[f'{cost}_std']:.1f}"
        rows.append([str(number), (marks + " " if marks else "") + _wrap(name, NAME_WIDTH),
                     _mean_text(first, score), _mean_text(first, "final_test_f1"), cost_text])
    return rows


def _table_height(rows: list[list[str]]) -> float:
    """Inches the key table needs: a two-line header and every row's wrapped lines."""
    header = 2 * LINE_IN + 2 * PAD_IN
    return header + sum(_lines(row) * LINE_IN + 2 * PAD_IN for row in rows)


def _lines(row: list[str]) -> int:
    return max(text.count("\n") + 1 for text in row)


def _key_table(ax, rows: list[list[str]], score: str, cost: str, note: str) -> None:
    """The table that names every numbered point, laid out in inches: every row as tall as its
    text, however long the front."""
    ax.axis("off")
    if not rows:
        return
    score_name = "val AULC" if score == "aulc" else "val F1"
    header = ["#", "configuration (★ on the front, ◆ recommended)", f"{score_name}\n(chooses)",
              "test F1\n(outcome)", "time (s), equal\nsamples pooled" if cost == "total_train_time_s" else "samples"]
    table = ax.table(cellText=rows, colLabels=header, loc="upper center", cellLoc="left", colLoc="left",
                     colWidths=[0.05, 0.53, 0.15, 0.15, 0.12])
    table.auto_set_font_size(False)
    table.set_fontsize(TABLE_FONT)
    table.set_in_layout(False)  # sized below in inches; constrained layout must not chase it
    fig = ax.get_figure(root=True)
    fig.canvas.draw()  # the layout is final now: the axes' height in inches is known
    height_in = ax.get_window_extent().height / fig.dpi
    for (r, _), cell in table.get_celld().items():
        lines = 2 if r == 0 else _lines(rows[r - 1])
        cell.set_height((lines * LINE_IN + 2 * PAD_IN) / max(height_in, 1e-6))
        cell.set_linewidth(0.3)
        cell.PAD = 0.03 if cell.get_width() > 0.3 else 0.08  # a fraction of the width: less for wide columns
        if r == 0:
            cell.set_facecolor("0.92")
            cell.get_text().set_fontweight("bold")
    if note:
        ax.text(0.0, 0.0, note, transform=ax.transAxes, fontsize=TABLE_FONT, color="0.3", va="bottom")


def panel_labels(part: pd.DataFrame, keys: Sequence[str]) -> dict[int, str]:
    """index -> a label naming the strategy and only the settings that vary within ``part`` (and
    that the row uses): e.g. ``hybrid ε=0.01 k=2`` when the panel has one query size, never
    ``shrink=-`` for a retrain run. Numbers carry the digits that tell the panel's values apart
    (ε=0.0142, not ε=0.014177183625535023)."""
    shown = []
    for key in keys:
        if key in ("dataset", "strategy") or key not in part.columns:
            continue
        values = part[key].dropna()
        if values.astype(str).nunique() > 1:
            shown.append(key)
    texts = {key: number_labels(v for v in part[key].dropna() if isinstance(v, (int, float, np.number)))
             for key in shown}
    out = {}
    for index, row in part.iterrows():
        parts = [str(row.get("strategy", "?"))]
        for key in shown:
            value = row.get(key)
            if not missing(value):
                text = texts[key].get(value, str(value)) if isinstance(value, (int, float, np.number)) else str(value)
                parts.append(f"{SHORT_KEYS.get(key, key)}={text}")
        out[index] = " ".join(parts)
    return out


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width=width, break_on_hyphens=False)) or text


def _mean_text(row: pd.Series, metric: str) -> str:
    mean, std = row.get(f"{metric}_mean"), row.get(f"{metric}_std")
    if missing(mean):
        return "–"
    return f"{mean:.3f}" + ("" if missing(std) else f" ± {std:.3f}")
