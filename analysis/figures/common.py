"""What several figures share: colours and markers, axis labels, displayed numbers, the levels of
an axis (one per value, or bins for a continuous search), facet splitting, the figure, legends,
label placement and saving.

Figures are built on ``matplotlib.figure.Figure`` directly (Agg canvas, no pyplot state), so the
package is safe to import anywhere and never opens a window. They use matplotlib's constrained
layout, which sizes the suptitle, colour bars and the legend under the panels, so no band of the
image is left blank. Colours are Okabe-Ito (colour-blind safe); strategies also differ by marker
so the plots survive greyscale printing.

Every figure must stay readable for any sweep, a 3 x 3 grid as well as 200 Optuna samples with
200 distinct ε: an axis with more than a few distinct values is binned (``levels``), a figure has
at most ``MAX_PANELS`` panels, and a number is shown with the digits that tell the sweep's values
apart (``number_labels``: ε 0.0142, not 0.014177183625535023).

Over 300 lines: it holds exactly what two or more figures share; each figure's own code is in
its module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator
from matplotlib.transforms import Bbox

from analysis.aggregate import number_labels

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
STRATEGY_STYLE = {  # colour, marker
    "retrain": ("#0072B2", "s"),
    "finetune": ("#E69F00", "^"),
    "new_only": ("#D55E00", "v"),
    "hybrid": ("#009E73", "o"),
}
OTHER_STYLE = ("#999999", "D")
STRATEGY_ORDER = ["retrain", "finetune", "new_only", "hybrid"]
# Markers for a second categorical channel (query size where colour already means something).
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]

COST_LABELS = {
    "total_train_time_s": "total training time (s)",
    "total_train_samples": "total training samples (examples × epochs)",
}
CUMULATIVE_LABELS = {
    "total_train_time_s": "cumulative training time (s)",
    "total_train_samples": "cumulative training samples (examples × epochs)",
}
SCORE_LABELS = {"final_val_f1": "final validation macro-F1", "final_test_f1": "final test macro-F1",
                "aulc": "validation AULC (val macro-F1 vs labeled, 0–1)"}
SHORT_KEYS = {"epsilon": "ε", "query_size": "q", "query_strategy": "query"}
DPI = 130
MAX_PANELS = 12  # panels in one figure; more facets are binned or left out with a note
MAX_LEVELS = 6  # distinct values of a numeric axis drawn one by one; more are binned
MAX_PIXELS = 3000  # no side of a saved PNG is longer (the DPI drops instead)
# Log axes: a cost or ε range wider than this ratio squashes the low end on a linear axis.
LOG_RATIO = 20.0


# ---------------------------------------------------------------------------------------------
# displayed numbers


def number(value: object, digits: int = 3) -> str:
    """One value as displayed: ``digits`` significant digits, integers as integers, '–' for none."""
    if _nan(value):
        return "–"
    if isinstance(value, (float, np.floating, int, np.integer)):
        return number_labels([value], digits)[float(value)]
    return str(value)


def _nan(value: object) -> bool:
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------
# axes with a few values or a continuous range


@dataclass
class Levels:
    """The levels of one axis: ``labels[i]`` names level i, ``of(value)`` is a value's level (-1
    for a missing value). ``binned``: levels are ranges of values (a continuous search), not
    one value each; ``lows``/``highs``: the smallest and largest value in each level."""

    labels: list[str]
    edges: np.ndarray  # the largest value of each level but the last
    lows: list[float]
    highs: list[float]
    binned: bool

    def of(self, value: object) -> int:
        if _nan(value):
            return -1
        return int(np.searchsorted(self.edges, float(value), side="left"))

    def codes(self, values: pd.Series) -> pd.Series:
        """The level of each value, -1 where it is missing."""
        return values.map(self.of).astype(int)


def levels(values: Iterable[float], max_levels: int = MAX_LEVELS) -> Levels:
    """One level per distinct value when there are at most ``max_levels`` of them, else
    ``max_levels`` bins holding about as many distinct values each (quantiles: no bin is empty,
    and a search that sampled one region densely gets finer bins there), each labelled by the
    smallest and largest value it holds."""
    distinct = np.array(sorted({float(v) for v in values if not _nan(v)}))
    if len(distinct) == 0:
        return Levels([], np.array([]), [], [], False)
    texts = number_labels(distinct)
    if len(distinct) <= max_levels:
        return Levels([texts[v] for v in distinct], distinct[:-1], list(distinct), list(distinct), False)
    groups = np.array_split(distinct, max_levels)
    edges = np.array([g[-1] for g in groups[:-1]])
    lows, highs = [float(g[0]) for g in groups], [float(g[-1]) for g in groups]
    integer = all(float(v).is_integer() for v in distinct)
    labels = [_range_label(lo, hi, integer) for lo, hi in zip(lows, highs)]
    return Levels(labels, edges, lows, highs, True)


def _range_label(low: float, high: float, integer: bool) -> str:
    if low == high:
        return number(low)
    texts = number_labels([low, high], digits=2)
    return f"{texts[low]}–{texts[high]}" if not integer else f"{int(low)}–{int(high)}"


def is_numeric(series: pd.Series) -> bool:
    """True when every non-missing value of ``series`` is a number (bools excluded)."""
    values = series.dropna()
    return bool(len(values)) and all(isinstance(v, (int, float, np.integer, np.floating))
                                      and not isinstance(v, (bool, np.bool_)) for v in values)


# ---------------------------------------------------------------------------------------------
# facets


def split_facets(df: pd.DataFrame, facet_keys: Sequence[str], bin_numeric: bool = True,
                 max_levels: int = 4) -> list[tuple[str, pd.DataFrame]]:
    """Facets of ``df`` by ``facet_keys``: (title, rows). The title names the dataset by value and
    other keys as key=value, and only keys that differ between facets (plus the dataset).

    A numeric key with more than ``max_levels`` distinct values (a continuous search over query
    sizes, say) is split into ``max_levels`` ranges when ``bin_numeric``, so the facets stay few."""
    facet_keys = [k for k in facet_keys if k in df.columns]
    if not facet_keys or df.empty:
        return [("", df)]
    varying = [k for k in facet_keys if k == "dataset" or df[k].astype(str).nunique(dropna=False) > 1]
    work, names = df, {}  # names: grouping column -> (key, {group value: shown text})
    for key in facet_keys:
        values = df[key]
        if bin_numeric and key in varying and is_numeric(values) and values.nunique() > max_levels:
            axis = levels(values, max_levels)
            work = work.assign(**{f"_bin_{key}": axis.codes(values)})
            names[f"_bin_{key}"] = (key, dict(enumerate(axis.labels)) | {-1: "–"})
        else:
            names[key] = (key, number_labels(values) if is_numeric(values) else {})
    out = []
    for values, part in work.groupby(list(names), dropna=False, sort=True):
        values = values if isinstance(values, tuple) else (values,)
        parts = []
        for (key, texts), value in zip(names.values(), values):
            if key not in varying:
                continue
            shown = "–" if _nan(value) else texts.get(value, number(value))
            parts.append(shown if key == "dataset" else f"{SHORT_KEYS.get(key, key)}={shown}")
        out.append((", ".join(parts), df.loc[part.index]))
    return out


def cap(items: list, limit: int, what: str) -> tuple[list, str]:
    """The first ``limit`` of ``items``, and a note saying how many were left out ('' if none)."""
    if len(items) <= limit:
        return items, ""
    return items[:limit], f"{len(items) - limit} more {what} not drawn (see summary.csv)"


def by_strategy(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(strategy, rows) groups of ``df`` in ``STRATEGY_ORDER``, unknown strategies last by name."""
    order = {s: i for i, s in enumerate(STRATEGY_ORDER)}
    groups = list(df.groupby("strategy", sort=False))
    return sorted(groups, key=lambda g: (order.get(g[0], len(order)), str(g[0])))


def signal_name(monitors: Iterable[str]) -> str:
    """What the records' ``signal`` is for these monitors: ΔF1 on the validation split (``val``)
    or on the held-back examples (``holdout``), 1 − κ between consecutive models (``agreement``)."""
    names = {"val": "ΔF1 on the validation split", "holdout": "ΔF1 on the held-back monitor set",
             "agreement": "1 − Cohen's κ with the previous model (stop set)"}
    found = sorted({m for m in monitors if isinstance(m, str)})
    if not found:
        return "switch signal (ΔF1 on the monitor set)"
    if len(found) == 1:
        return names.get(found[0], f"switch signal ({found[0]})")
    return "switch signal (" + "; ".join(names.get(m, m) for m in found) + ")"


# ---------------------------------------------------------------------------------------------
# figures


def figure(width: float, height: float) -> Figure:
    """A figure of ``width`` x ``height`` inches with constrained layout and an Agg canvas."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)  # a renderer for label placement, PNG output
    return fig


def axes_grid(n: int, ncols: int, size: tuple[float, float]) -> tuple[Figure, list]:
    """A figure with ``n`` axes in rows of ``ncols``, each ``size`` inches; spare cells hidden."""
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    fig = figure(size[0] * ncols, size[1] * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def bottom_legend(fig: Figure, handles: list, ncol: int | None = None) -> None:
    """A legend under the panels (constrained layout makes room for it)."""
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncol=ncol or min(len(handles), 8),
                   fontsize=9, frameon=False)


def integer_ticks(axis) -> None:
    """Whole-number ticks on ``axis`` (e.g. ``ax.xaxis``): rounds are 0, 5, 10, never 2.5."""
    axis.set_major_locator(MaxNLocator(integer=True))


def log_if_wide(ax, values: Iterable[float], axis: str = "x", ratio: float = LOG_RATIO) -> bool:
    """A log scale on ``axis`` when the positive ``values`` span more than ``ratio``; returns
    whether it is log. (new_only costs a hundredth of retrain: on a linear axis it is a wall.)"""
    arr = np.asarray([v for v in values if not _nan(v)], dtype=float)
    if not (len(arr) and arr.min() > 0 and arr.max() / arr.min() > ratio):
        return False
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    # Plain numbers at 1, 2 and 5 x each decade: 0.002, 0.005, 0.01, not 10⁻³ alone.
    which = ax.xaxis if axis == "x" else ax.yaxis
    plain = FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}")
    which.set_major_formatter(plain)
    which.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
    which.set_minor_formatter(plain)
    which.set_tick_params(which="both", labelsize=8)
    return True


def freeze_limits(ax) -> None:
    """Fix the current axis limits."""
    # Labels are placed in display space: the limits must not move once they are.
    ax.set_xlim(ax.get_xlim())
    ax.set_ylim(ax.get_ylim())


def place_labels(ax, items: list[tuple[float, float, str, int]], fontsize: float = 7.5,
                 marker_px: float = 6.0) -> None:
    """Label every point of ``items`` (x, y, text, priority): in priority order, try positions
    around the point, near first and then further out with a leader line, and keep the first that
    stays inside the axes and overlaps no marker or earlier label. A label next to its point (no
    leader line) must also be nearer its own point than any other, or readers pair it wrongly.
    A label with no free position still gets the least crowded one, with a leader line: a point
    must never lose its label. Call after the limits are final (``freeze_limits``)."""
    fig = ax.get_figure(root=True)
    fig.canvas.draw()  # constrained layout moves the axes: place in the final display space
    freeze_limits(ax)
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    points = [tuple(ax.transData.transform((x, y))) for x, y, _, _ in items]
    taken = [Bbox.from_extents(px - marker_px, py - marker_px, px + marker_px, py + marker_px)
             for px, py in points]
    candidates = []
    for distance in (5, 14, 26, 40, 58):
        for ux, uy in ((1, 1), (1, -1), (-1, 1), (-1, -1), (0, 1.4), (0, -1.4), (1.4, 0), (-1.4, 0)):
            ha = "left" if ux > 0 else "right" if ux < 0 else "center"
            va = "bottom" if uy > 0 else "top" if uy < 0 else "center"
            candidates.append((ux * distance, uy * distance * 0.8, ha, va, distance > 5))
    order = sorted(range(len(items)), key=lambda i: items[i][3])
    scale = renderer.points_to_pixels(1.0)
    for i in order:
        x, y, text, _ = items[i]
        # Measure the text once; candidate boxes are then plain arithmetic.
        probe = ax.text(0, 0, text, fontsize=fontsize, fontweight="bold", transform=None)
        extent = probe.get_window_extent(renderer)
        probe.remove()
        width, height = extent.width * 1.06, extent.height * 1.1
        px, py = points[i]
        best, best_clash = None, math.inf
        for dx, dy, ha, va, leader in candidates:
            x0 = px + dx * scale - {"left": 0.0, "center": width / 2, "right": width}[ha]
            y0 = py + dy * scale - {"bottom": 0.0, "center": height / 2, "top": height}[va]
            box = Bbox.from_bounds(x0, y0, width, height)
            if not (frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1):
                continue
            clash = sum(box.overlaps(other) for other in taken)
            if not leader:
                own = _distance(points[i], box)
                clash += sum(_distance(p, box) <= own for j, p in enumerate(points)
                             if j != i and p != points[i])
            if clash < best_clash:
                best, best_clash = (dx, dy, ha, va, leader or clash > 0, box), clash
            if clash == 0:
                break
        if best is None:  # no candidate inside the frame (a point on the edge): label it in place
            best = (0, 0, "center", "center", False, Bbox.from_bounds(px, py, width, height))
        dx, dy, ha, va, leader, box = best
        arrow = {"arrowstyle": "-", "color": "0.35", "lw": 0.6, "shrinkA": 0, "shrinkB": 3} if leader else None
        ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                    fontsize=fontsize, fontweight="bold", color="0.1", zorder=6, arrowprops=arrow,
                    bbox={"boxstyle": "square,pad=0.05", "facecolor": "white", "edgecolor": "none",
                          "alpha": 0.7})
        taken.append(box)


def _distance(point: tuple[float, float], box: Bbox) -> float:
    dx = max(box.x0 - point[0], 0.0, point[0] - box.x1)
    dy = max(box.y0 - point[1], 0.0, point[1] - box.y1)
    return math.hypot(dx, dy)


def legend_marker(strategy: str, colour: str | None = None):
    """Legend entry of a strategy: its marker, in its colour (or ``colour``)."""
    own, marker = STRATEGY_STYLE.get(strategy, OTHER_STYLE)
    return marker_handle(marker, colour or own, strategy)


def marker_handle(marker: str, colour: str, label: str, edge: str | None = None, size: float = 7):
    """Legend entry: a marker without a line."""
    return Line2D([], [], marker=marker, linestyle="none", color=colour, markeredgecolor=edge or colour,
                  markersize=size, label=label)


def line_handle(colour: str, label: str, style: str = "-"):
    """Legend entry: a line."""
    return Line2D([], [], color=colour, lw=1.5, ls=style, label=label)


def patch_handle(colour: str, label: str, hatch: str | None = None):
    """Legend entry: a filled patch."""
    return Patch(facecolor=colour, edgecolor="0.4" if hatch else colour, hatch=hatch, label=label)


def missing(value: object) -> bool:
    """True for None, NaN and pandas' missing values."""
    return _nan(value)


def save(fig: Figure, path: Path) -> None:
    """Write ``fig`` as a PNG at ``DPI`` (lower if a side would pass ``MAX_PIXELS``); returns
    None, the "figure written" answer of a plot_* function."""
    width, height = fig.get_size_inches()
    dpi = min(DPI, MAX_PIXELS / max(width, height))
    fig.savefig(path, dpi=dpi)
    return None
