"""What several figures share: colours and markers, axis labels, facet splitting, the figure
grid, layout, legends and saving, and greedy label placement.

Figures are built on ``matplotlib.figure.Figure`` directly (Agg canvas, no pyplot state), so the
package is safe to import anywhere and never opens a window. Colours are Okabe-Ito (colour-blind
safe); strategies also differ by marker so the plots survive greyscale printing.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import Bbox

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
STRATEGY_STYLE = {  # colour, marker
    "retrain": ("#0072B2", "s"),
    "finetune": ("#E69F00", "^"),
    "new_only": ("#D55E00", "v"),
    "hybrid": ("#009E73", "o"),
}
OTHER_STYLE = ("#999999", "D")
STRATEGY_ORDER = ["retrain", "finetune", "new_only", "hybrid"]

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
DPI = 130


def split_facets(df: pd.DataFrame, facet_keys: Sequence[str]) -> list[tuple[str, pd.DataFrame]]:
    """Facets of ``df`` by ``facet_keys``: (title, rows). The title names the dataset by value and
    other keys as key=value, and only keys that differ between facets (plus the dataset)."""
    facet_keys = [k for k in facet_keys if k in df.columns]
    if not facet_keys or df.empty:
        return [("", df)]
    varying = [k for k in facet_keys if k == "dataset" or df[k].astype(str).nunique(dropna=False) > 1]
    out = []
    for values, part in df.groupby(facet_keys, dropna=False, sort=True):
        values = values if isinstance(values, tuple) else (values,)
        parts = []
        for key, value in zip(facet_keys, values):
            if key not in varying:
                continue
            shown = f"{value:g}" if isinstance(value, (float, np.floating)) and not math.isnan(value) else str(value)
            parts.append(shown if key == "dataset" else f"{'q' if key == 'query_size' else key}={shown}")
        out.append((", ".join(parts), part))
    return out


def by_strategy(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(strategy, rows) groups of ``df`` in ``STRATEGY_ORDER``, unknown strategies last by name."""
    order = {s: i for i, s in enumerate(STRATEGY_ORDER)}
    groups = list(df.groupby("strategy", sort=False))
    return sorted(groups, key=lambda g: (order.get(g[0], len(order)), str(g[0])))


def axes_grid(n: int, ncols: int, size: tuple[float, float]) -> tuple[Figure, list]:
    """A figure with ``n`` axes in rows of ``ncols``, each ``size`` inches; spare cells hidden."""
    ncols = max(1, ncols)
    nrows = max(1, math.ceil(n / ncols))
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows))
    FigureCanvasAgg(fig)  # attaches an Agg canvas: a renderer for label placement, PNG output
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def freeze_limits(ax) -> None:
    """Fix the current axis limits."""
    # Labels are placed in display space: the limits must not move once they are.
    ax.set_xlim(ax.get_xlim())
    ax.set_ylim(ax.get_ylim())


def place_labels(ax, items: list[tuple[float, float, str, int]]) -> None:
    """Greedy label placement: in priority order, try positions around the point, near first and
    then further out with a leader line, and keep the first that stays inside the axes and
    overlaps no marker or earlier label; a label with no free position is dropped."""
    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    points = [tuple(ax.transData.transform((x, y))) for x, y, _, _ in items]
    taken = [Bbox.from_extents(px - 6, py - 6, px + 6, py + 6) for px, py in points]
    candidates = []
    for distance in (6, 20, 36, 56):
        for ux, uy in ((1, 1), (1, -1), (-1, 1), (-1, -1), (0, 1.4), (0, -1.4), (1.4, 0), (-1.4, 0)):
            ha = "left" if ux > 0 else "right" if ux < 0 else "center"
            va = "bottom" if uy > 0 else "top" if uy < 0 else "center"
            candidates.append((ux * distance, uy * distance * 0.8, ha, va, distance > 6))
    order = sorted(range(len(items)), key=lambda i: items[i][3])
    scale = renderer.points_to_pixels(1.0)
    for i in order:
        x, y, text, _ = items[i]
        # Measure the text once; candidate boxes are then plain arithmetic (creating and removing
        # an annotation per candidate made this the slowest step of the report).
        probe = ax.text(0, 0, text, fontsize=7, transform=None)
        extent = probe.get_window_extent(renderer)
        probe.remove()
        width, height = extent.width * 1.04, extent.height * 1.1
        px, py = points[i]
        for dx, dy, ha, va, leader in candidates:
            x0 = px + dx * scale - {"left": 0.0, "center": width / 2, "right": width}[ha]
            y0 = py + dy * scale - {"bottom": 0.0, "center": height / 2, "top": height}[va]
            box = Bbox.from_bounds(x0, y0, width, height)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if not inside or any(box.overlaps(other) for other in taken):
                continue
            # A label must sit nearer its own point than any other point, or readers pair it wrongly.
            own = _distance(points[i], box)
            if any(_distance(p, box) <= own for j, p in enumerate(points) if j != i and p != points[i]):
                continue
            arrow = {"arrowstyle": "-", "color": "0.3", "lw": 0.7, "shrinkA": 0, "shrinkB": 5} if leader else None
            ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                        fontsize=7, color="0.1", zorder=6, arrowprops=arrow)
            taken.append(box)
            break


def _distance(point: tuple[float, float], box: Bbox) -> float:
    dx = max(box.x0 - point[0], 0.0, point[0] - box.x1)
    dy = max(box.y0 - point[1], 0.0, point[1] - box.y1)
    return math.hypot(dx, dy)


def layout(fig: Figure, bottom: float = 0.0, title: bool = True) -> None:
    """tight_layout that leaves room for a bottom legend and a suptitle (fixed inches, not a
    fraction, so tall multi-row figures keep their title clear of the first row)."""
    lines = fig.get_suptitle().count("\n") + 1 if title else 0
    top = 1 - (0.15 + 0.25 * lines) / fig.get_figheight()
    fig.tight_layout(rect=(0, bottom, 1, top))


def bottom_legend(fig: Figure, handles: list) -> float:
    """A one-row legend under the panels; returns the figure fraction tight_layout must leave free."""
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9, frameon=False)
    return min(0.3, 0.45 / fig.get_figheight())


def legend_marker(strategy: str):
    """Legend entry of a strategy: its colour and marker."""
    colour, marker = STRATEGY_STYLE.get(strategy, OTHER_STYLE)
    return marker_handle(marker, colour, strategy)


def marker_handle(marker: str, colour: str, label: str, edge: str | None = None):
    """Legend entry: a marker without a line."""
    return Line2D([], [], marker=marker, linestyle="none", color=colour, markeredgecolor=edge or colour,
                  markersize=7, label=label)


def line_handle(colour: str, label: str):
    """Legend entry: a line."""
    return Line2D([], [], color=colour, lw=1.5, label=label)


def patch_handle(colour: str, label: str):
    """Legend entry: a filled patch."""
    return Patch(facecolor=colour, label=label)


def missing(value: object) -> bool:
    """True for None and float NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def save(fig: Figure, path: Path) -> None:
    """Write ``fig`` as a PNG at ``DPI``; returns None, the "figure written" answer of a plot_* function."""
    fig.savefig(path, dpi=DPI)
    return None
