"""The figures a researcher publishes from a sweep. Every ``plot_*`` function writes one PNG and
returns ``None``, or writes nothing and returns a one-line reason when the data cannot support
the figure (no hybrid runs, no retrain baseline, ...).

Figures are built on ``matplotlib.figure.Figure`` directly (Agg canvas, no pyplot state), so the
module is safe to import anywhere and never opens a window. Colours are Okabe-Ito (colour-blind
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
from matplotlib.transforms import Bbox

from analysis.aggregate import BASELINES, COSTS, HYBRID, WARM_START_KEYS
from analysis.pareto import front_by_group

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
ZOOM_FRACTION = 0.2  # pareto.png zooms on configurations within this share of the best score


# ---------------------------------------------------------------------------------------------
# Pareto plot


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
    datasets = [(title, part, _zoomed(part, score)) for title, part in _split(data, ["dataset"])]
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
    handles = [_legend_marker(s) for s in STRATEGY_ORDER if s in set(data["strategy"])]
    handles.append(_line_handle("black", "Pareto front (ringed)"))
    handles.append(_marker_handle("o", "white", "n = see the table on the right", edge="black"))
    bottom = _bottom_legend(fig, handles)
    spread = "single seed: no error bars" if single_seed else "bars: ±1 std over seeds"
    hidden = int(table["never_switched"].sum()) if "never_switched" in table.columns else 0
    notes = ["test F1 is the outcome, in the table"]
    if cost == "total_train_time_s":
        notes.append("equal-sample configurations share their mean seconds")
    if hidden:
        notes.append(f"{hidden} never-switched hybrid(s) = retrain, not drawn")
    fig.suptitle(f"Cost vs {SCORE_LABELS.get(score, score)} (chooses; seed means, {spread})\n"
                 + "; ".join(notes), fontsize=11)
    _layout(fig, bottom=bottom)
    return _save(fig, path)


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
    for strategy, rows in _by_strategy(part):
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
        if is_time and not _missing(first.get(f"{cost}_std")):
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
            if not _missing(value) and not (isinstance(value, float) and math.isnan(value)):
                text = f"{value:g}" if isinstance(value, (float, np.floating)) else str(value)
                parts.append(f"{names.get(key, key)}={text}")
        out[index] = " ".join(parts)
    return out


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width=width, break_on_hyphens=False)) or text


def _mean_text(row: pd.Series, metric: str) -> str:
    mean, std = row.get(f"{metric}_mean"), row.get(f"{metric}_std")
    if _missing(mean):
        return "–"
    return f"{mean:.3f}" + ("" if _missing(std) else f" ± {std:.3f}")


# ---------------------------------------------------------------------------------------------
# Learning curves


def plot_learning_curves(rounds: pd.DataFrame, table: pd.DataFrame, keys: Sequence[str], path: Path,
                         score: str, cost: str = "total_train_samples") -> str | None:
    """Validation macro-F1 vs round and vs cumulative training cost (mean ± std band over seeds);
    one row per facet (dataset, learner, query size). Every baseline configuration is drawn, and
    the recommended hybrid of the facet (``table["recommended"]``: best validation ``score``
    among the hybrids that switched) with a dotted line where it decided to switch. A facet whose
    hybrids never switched says so: there the hybrid is the retrain curve.
    ``rounds`` must carry ``config_id``; ``table`` comes from ``report.mark_front``."""
    if rounds.empty or "val_f1" not in rounds.columns:
        return "learning_curves.png: no per-round records"
    x_cost = "cum_train_samples" if cost == "total_train_samples" else "cum_train_time_s"
    facet_keys = [k for k in ("dataset", "learner", "query_size") if k in keys]
    panels = _split(table, facet_keys)
    fig, grid = _grid(len(panels) * 2, ncols=2, size=(6.2, 4.2))
    for row_i, (title, part) in enumerate(panels):
        ax_round, ax_cost = grid[2 * row_i], grid[2 * row_i + 1]
        chosen = part[part["strategy"].isin(BASELINES)]
        hybrid = part[part["recommended"]] if "recommended" in part.columns else part.iloc[:0]
        for cfg in pd.concat([chosen, hybrid]).itertuples():
            runs = rounds[rounds["config_id"] == cfg.config_id]
            if runs.empty:
                continue
            curve = runs.groupby("round").agg(f1=("val_f1", "mean"), sd=("val_f1", "std"),
                                              c=(x_cost, "mean"), n=("val_f1", "count"))
            colour, marker = STRATEGY_STYLE.get(cfg.strategy, OTHER_STYLE)
            label = f"{cfg.config} (n={int(curve['n'].max())})"
            if cfg.strategy == HYBRID:
                label = f"{cfg.config}, recommended (n={int(curve['n'].max())})"
            # Until it switches the hybrid is the retrain run: drawn wider and beneath, so the
            # retrain line stays visible on top of the shared prefix.
            width, depth = (2.6, 1.5) if cfg.strategy == HYBRID else (1.4, 2.5)
            for ax, x in ((ax_round, curve.index.to_numpy()), (ax_cost, curve["c"].to_numpy())):
                ax.plot(x, curve["f1"], "-", color=colour, marker=marker, markevery=max(1, len(x) // 8),
                        markersize=4, lw=width, label=label, zorder=depth)
                band = curve["sd"].fillna(0).to_numpy()
                ax.fill_between(x, curve["f1"] - band, curve["f1"] + band, color=colour, alpha=0.15, lw=0)
            if cfg.strategy == HYBRID:
                _mark_switch(ax_round, ax_cost, runs, curve, colour)
        ax_round.set_xlabel("AL round")
        ax_cost.set_xlabel(f"{CUMULATIVE_LABELS.get(cost, cost)}, mean over seeds")
        for ax in (ax_round, ax_cost):
            ax.set_ylabel("validation macro-F1")
            ax.grid(alpha=0.3)
        prefix = f"{title}: " if title else ""
        if hybrid.empty and (part["strategy"] == HYBRID).any():
            prefix += "no hybrid switched (hybrid = retrain); "
        ax_round.set_title(f"{prefix}val F1 vs round", fontsize=10)
        ax_cost.set_title(f"{prefix}val F1 vs training cost", fontsize=10)
        ax_round.legend(fontsize=7, loc="lower right")
    what = "final validation macro-F1" if score == "final_val_f1" else "validation AULC"
    fig.suptitle(f"Learning curves (mean ± 1 std over seeds). Hybrid: the recommended one = best {what}\n"
                 "among the hybrids that switched; dotted line: the round after which it decided to switch",
                 fontsize=11)
    _layout(fig)
    return _save(fig, path)


def _mark_switch(ax_round, ax_cost, runs: pd.DataFrame, curve: pd.DataFrame, colour: str) -> None:
    """A dotted vertical line at each distinct round after which a seed of the hybrid switched."""
    switched = runs[runs["switched"] == 1] if "switched" in runs.columns else runs.iloc[:0]
    rounds = sorted(switched.groupby("trial")["round"].min().unique())
    for i, r in enumerate(rounds):
        label = f"switch decided after round {', '.join(str(int(x)) for x in rounds)}" if i == 0 else None
        ax_round.axvline(r, color=colour, ls=":", lw=1.2, label=label)
        if r in curve.index:
            ax_cost.axvline(curve.loc[r, "c"], color=colour, ls=":", lw=1.2)


# ---------------------------------------------------------------------------------------------
# Delta F1 and switch timing


def plot_delta_f1(rounds: pd.DataFrame, trials: pd.DataFrame, keys: Sequence[str], path: Path) -> str | None:
    """ΔF1 on the monitor set per round for every hybrid run: one column per ε (with the ±ε band),
    one row per query size (and other facet keys), lines coloured by k, and the round after which
    each run decided to switch marked."""
    hybrid = rounds[rounds["strategy"] == HYBRID] if "strategy" in rounds.columns else rounds.iloc[:0]
    if hybrid.empty or "delta_f1" not in hybrid.columns or hybrid["delta_f1"].notna().sum() == 0:
        return "delta_f1.png: no hybrid runs with ΔF1 values"
    hybrid = hybrid.merge(trials[["trial", "switch_round"]], on="trial", how="left")
    # Warm-start settings act only after the switch: ΔF1 before it is the same for all of them.
    facet_keys = [k for k in keys if k not in ("strategy", "epsilon", "k", *WARM_START_KEYS)]
    facets = _split(hybrid, facet_keys)
    epsilons = sorted(hybrid["epsilon"].dropna().unique())
    k_values = sorted(hybrid["k"].dropna().unique())
    k_colour = {k: OKABE_ITO[i % len(OKABE_ITO)] for i, k in enumerate(k_values)}
    ncols = len(epsilons)
    fig, axes = _grid(len(facets) * ncols, ncols=ncols, size=(4.6, 3.4))
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
                ax.plot(run["round"], run["delta_f1"], "-", color=colour, lw=0.9, alpha=0.75)
                switch = run["switch_round"].iloc[0]
                if not _missing(switch):
                    at = run[run["round"] == switch]["delta_f1"]
                    if len(at):
                        ax.plot([switch], [at.iloc[0]], "X", color=colour, markeredgecolor="black",
                                markersize=8, zorder=5)
            # The first rounds jump by far more than ε; scaled to them, the band would be a hairline.
            # Show a few ε (or the bulk of the values) and let the early jumps leave the frame.
            deltas = runs["delta_f1"].abs().dropna()
            limit = max(3 * eps, float(deltas.quantile(0.8)) if len(deltas) else 0.0, 1e-3) * 1.15
            clipped |= bool(len(deltas) and deltas.max() > limit)
            ax.set_ylim(-limit, limit)
            ax.set_xlabel("AL round")
            ax.set_ylabel("ΔF1 on monitor set")
            prefix = f"{title}, " if title else ""
            ax.set_title(f"{prefix}ε = {eps:g}", fontsize=10)
            ax.grid(alpha=0.3)
    handles = [_line_handle(k_colour[k], f"k = {k:g}") for k in k_values]
    handles.append(_marker_handle("X", "white", "switch decided", edge="black"))
    handles.append(_patch_handle("0.85", "±ε band"))
    bottom = _bottom_legend(fig, handles)
    extra = "; y axis cut: the large jumps of the first rounds run off the top" if clipped else ""
    fig.suptitle(f"ΔF1 per round of every hybrid run (one line per run){extra}", fontsize=11)
    _layout(fig, bottom=bottom)
    return _save(fig, path)


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
    facets = _split(hybrid, facet_keys)
    pairs = sorted({(e, k) for e, k in zip(hybrid["epsilon"], hybrid["k"])})
    sizes = sorted(hybrid["query_size"].dropna().unique()) if "query_size" in hybrid.columns else [None]
    q_colour = {q: OKABE_ITO[i % len(OKABE_ITO)] for i, q in enumerate(sizes)}
    width = 0.8 / max(1, len(sizes))
    fig, axes = _grid(len(facets), ncols=1, size=(min(14.0, max(6.0, 0.9 * len(pairs) + 2)), 4.6))
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
        handles = [_marker_handle("o", q_colour[q], f"query size {q:g}") for q in sizes]
        _layout(fig, bottom=_bottom_legend(fig, handles), title=False)
    else:
        _layout(fig, title=False)
    return _save(fig, path)


# ---------------------------------------------------------------------------------------------
# Heatmaps over (epsilon, k)


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
    panels = _split(hybrid, facet_keys)
    fig, axes = _grid(len(panels), ncols=min(3, len(panels)), size=(4.8, 4.0))
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
    _layout(fig)
    return _save(fig, path)


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


# ---------------------------------------------------------------------------------------------
# helpers


def _split(df: pd.DataFrame, facet_keys: Sequence[str]) -> list[tuple[str, pd.DataFrame]]:
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


def _by_strategy(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    order = {s: i for i, s in enumerate(STRATEGY_ORDER)}
    groups = list(df.groupby("strategy", sort=False))
    return sorted(groups, key=lambda g: (order.get(g[0], len(order)), str(g[0])))


def _grid(n: int, ncols: int, size: tuple[float, float]) -> tuple[Figure, list]:
    ncols = max(1, ncols)
    nrows = max(1, math.ceil(n / ncols))
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows))
    FigureCanvasAgg(fig)  # attaches an Agg canvas: a renderer for label placement, PNG output
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _freeze_limits(ax) -> None:
    # Labels are placed in display space: the limits must not move once they are.
    ax.set_xlim(ax.get_xlim())
    ax.set_ylim(ax.get_ylim())


def _place_labels(ax, items: list[tuple[float, float, str, int]]) -> None:
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


def _layout(fig: Figure, bottom: float = 0.0, title: bool = True) -> None:
    """tight_layout that leaves room for a bottom legend and a suptitle (fixed inches, not a
    fraction, so tall multi-row figures keep their title clear of the first row)."""
    lines = fig.get_suptitle().count("\n") + 1 if title else 0
    top = 1 - (0.15 + 0.25 * lines) / fig.get_figheight()
    fig.tight_layout(rect=(0, bottom, 1, top))


def _bottom_legend(fig: Figure, handles: list) -> float:
    """A one-row legend under the panels; returns the figure fraction tight_layout must leave free."""
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9, frameon=False)
    return min(0.3, 0.45 / fig.get_figheight())


def _legend_marker(strategy: str):
    colour, marker = STRATEGY_STYLE.get(strategy, OTHER_STYLE)
    return _marker_handle(marker, colour, strategy)


def _marker_handle(marker: str, colour: str, label: str, edge: str | None = None):
    from matplotlib.lines import Line2D

    return Line2D([], [], marker=marker, linestyle="none", color=colour, markeredgecolor=edge or colour,
                  markersize=7, label=label)


def _line_handle(colour: str, label: str):
    from matplotlib.lines import Line2D

    return Line2D([], [], color=colour, lw=1.5, label=label)


def _patch_handle(colour: str, label: str):
    from matplotlib.patches import Patch

    return Patch(facecolor=colour, label=label)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _save(fig: Figure, path: Path) -> None:
    fig.savefig(path, dpi=DPI)
    return None
