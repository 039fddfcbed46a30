"""The report's figures stay readable for any sweep: a continuous search (40 random ε, k in 1..4)
gives figures below a size cap with a bounded number of panels, displayed numbers rounded, a
Pareto legend that matches the drawn markers, every point numbered, no blank band across the
image; and the small promises (integer round ticks, a saving heatmap without a std column, runs
without a query size drawn). Offline, deterministic, seconds."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import matplotlib.colors as mcolors
import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Text

from analysis import figures
from analysis.aggregate import config_table, number_labels
from analysis.figures.common import MAX_PANELS, MAX_PIXELS, levels
from analysis.load import load_results
from analysis.report import PNG_FILES, build_report, main, mark_front
from tests.test_analysis import make_run, make_sweep

LONG_NUMBER = re.compile(r"\d\.\d{6,}")  # 0.014177183625535023: more digits than anything resolves


@pytest.fixture
def drawn(monkeypatch):
    """Every figure the report saves, by file name (the Figure object, as it was saved)."""
    saved: dict[str, Figure] = {}
    original = Figure.savefig

    def record(self, fname, *args, **kwargs):
        saved[Path(fname).name] = self
        return original(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    return saved


def continuous_sweep(root: Path, n: int = 40, seed: int = 0) -> Path:
    """An Optuna-like search: ``n`` hybrids with log-uniform ε in [0.001, 0.05] and k in 1..4 over
    two query sizes, one seed each, plus the three baselines per query size."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        eps = float(np.exp(rng.uniform(np.log(0.001), np.log(0.05))))
        make_run(root / f"hybrid_{i:02d}", "hybrid", seed=0, epsilon=eps, k=int(rng.integers(1, 5)),
                 query_size=(8, 16)[i % 2], rounds=12)
    for q in (8, 16):
        for strategy in ("retrain", "finetune", "new_only"):
            make_run(root / f"{strategy}_q{q}", strategy, seed=0, query_size=q, rounds=12)
    return root


def panels(fig: Figure) -> list:
    """The data panels of a figure: visible axes, colour bars and tables excluded."""
    return [ax for ax in fig.get_axes() if ax.get_visible() and ax.get_label() != "<colorbar>" and ax.axison]


def texts(fig: Figure) -> list[str]:
    """Every string drawn in a figure: titles, tick labels, annotations, table cells, legends."""
    cells = [cell.get_text().get_text() for ax in fig.get_axes() for table in ax.tables
             for cell in table.get_celld().values()]
    return [t.get_text() for t in fig.findobj(Text)] + cells


def largest_blank_band(path: Path) -> float:
    """The tallest run of all-white pixel rows across the whole image, as a fraction of its height."""
    image = matplotlib.image.imread(path)[..., :3]
    blank = (image > 0.98).all(axis=(1, 2))
    longest = run = 0
    for row_blank in blank:
        run = run + 1 if row_blank else 0
        longest = max(longest, run)
    return longest / len(blank)


def test_continuous_search_gives_bounded_readable_figures(tmp_path, drawn, capsys):
    sweep = continuous_sweep(tmp_path / "sweep")
    assert main([str(sweep), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    for name in PNG_FILES:
        path = tmp_path / "out" / name
        assert path.is_file(), name
        height, width = matplotlib.image.imread(path).shape[:2]
        assert width <= MAX_PIXELS and height <= MAX_PIXELS, (name, width, height)
        assert len(panels(drawn[name])) <= MAX_PANELS, name
        assert largest_blank_band(path) < 0.06, name
        long = [t for t in texts(drawn[name]) if LONG_NUMBER.search(t)]
        assert not long, (name, long[:3])
    # ε binned: 4 columns of ranges per query size, not one column per distinct ε
    delta = panels(drawn["delta_f1.png"])
    assert len(delta) == 2 * 4
    assert all("–" in ax.get_title() for ax in delta)  # "ε = 0.0011–0.0031 (9 runs)"
    heat = panels(drawn["heatmap_f1.png"])
    assert len(heat) == 2 and all(len(ax.get_yticklabels()) <= 6 for ax in heat)
    # displayed ε in the labels, the tables and the printed lines carry 3 significant digits
    for text in (printed, (tmp_path / "out" / "summary.md").read_text(),
                 *pd.read_csv(tmp_path / "out" / "summary.csv")["config"]):
        assert not LONG_NUMBER.search(text), text
    assert re.search(r"ε=0\.0\d{3}\b|ε=0\.00\d{3}\b", printed)


def test_numbers_show_the_digits_that_tell_values_apart():
    texts = number_labels([0.014177183625535023, 0.01425, 0.0092276405837477, 0.02, 16.0])
    assert texts == {0.014177183625535023: "0.0142", 0.01425: "0.0143", 0.0092276405837477: "0.00923",
                     0.02: "0.02", 16.0: "16"}
    assert number_labels([0.0141771, 0.0141779]) == {0.0141771: "0.014177", 0.0141779: "0.014178"}
    grid = levels([0.005, 0.01, 0.02])
    assert grid.labels == ["0.005", "0.01", "0.02"] and not grid.binned
    assert [grid.of(v) for v in (0.005, 0.01, 0.02)] == [0, 1, 2]
    wide = levels(np.geomspace(0.001, 0.05, 40), max_levels=4)
    assert wide.binned and len(wide.labels) == 4
    assert [wide.of(v) for v in (0.001, 0.05)] == [0, 3] and wide.of(wide.highs[0]) == 0


def _pareto_markers(fig: Figure):
    """(drawn (marker, colour) pairs of the panels, legend markers, legend colours)."""
    drawn_points = set()
    for ax in panels(fig):
        for line in ax.get_lines():
            # error-bar caps are '|' and '_' markers: not points
            if line.get_marker() not in (None, "None", "", " ", "|", "_") and len(line.get_xdata()):
                drawn_points.add((line.get_marker(), line.get_color()))
    legend = fig.legends[0]
    handles = legend.legend_handles
    markers = {h.get_marker() for h in handles if isinstance(h, Line2D) and h.get_linestyle() in ("None", "none")}
    colours = {h.get_facecolor() for h in handles if isinstance(h, Patch)}
    return drawn_points, markers, colours, handles


def test_pareto_legend_matches_the_markers_and_every_point_is_numbered(tmp_path, drawn):
    sweep = make_sweep(tmp_path / "sweep", query_size=8, unfinished=False)
    for seed in (1, 2):  # a second query size, so colour means query size
        for strategy in ("retrain", "finetune", "new_only"):
            make_run(sweep / f"{strategy}_q16_{seed}", strategy, seed=seed, query_size=16)
        make_run(sweep / f"hybrid_q16_{seed}", "hybrid", seed=seed, query_size=16, epsilon=0.03, k=1)
    report = build_report(sweep, tmp_path / "out")
    fig = drawn["pareto.png"]
    drawn_points, markers, colours, handles = _pareto_markers(fig)
    assert {m for m, _ in drawn_points} <= markers  # every drawn shape has its legend entry
    legend_rgb = {mcolors.to_hex(c) for c in colours}
    assert {mcolors.to_hex(c) for _, c in drawn_points} <= legend_rgb  # colour = query size, in the legend
    assert {"q=8", "q=16"} <= {h.get_label() for h in handles}

    drawn_configs = report.table[~report.table["never_switched"]]
    main_panel = panels(fig)[0]
    numbers = [a.get_text() for a in main_panel.texts if a.get_text().isdigit()]
    spots = drawn_configs[["front_cost", "final_val_f1_mean"]].round(9).drop_duplicates()
    assert sorted(map(int, numbers)) == list(range(1, len(spots) + 1))  # every point, once
    cells = [cell.get_text().get_text() for ax in fig.get_axes() for table in ax.tables
             for cell in table.get_celld().values()]
    for number in numbers:
        assert number in cells  # and named in the key table
    # val F1 (chooses) carries its spread like test F1 (outcome)
    assert sum(" ± " in t for t in cells) >= 2 * len(spots)


def test_saving_heatmap_without_std_column_and_forced_zero(tmp_path, drawn):
    sweep = make_sweep(tmp_path / "sweep", unfinished=False)
    results = load_results(sweep)
    _, table, keys = config_table(results.trials, results.config_columns)
    table = mark_front(table, keys, "total_train_samples", "final_val_f1")
    no_std = table.drop(columns=["saving_samples_pct_std"])
    assert figures.plot_heatmap_saving(no_std, keys, tmp_path / "a.png", "total_train_samples") is None
    assert (tmp_path / "a.png").is_file()
    # a cell forced to 0 (exactly retrain's samples) says why instead of a bare "0%"
    forced = table.assign(same_samples_as_retrain=table["strategy"] == "hybrid")
    figures.plot_heatmap_saving(forced, keys, tmp_path / "b.png", "total_train_samples")
    fig_texts = texts(drawn["b.png"])
    assert "0%" not in fig_texts and any("0 by definition" in t for t in fig_texts)


def test_learning_curves_have_integer_round_ticks_and_no_empty_legend(tmp_path, drawn):
    run = tmp_path / "run"
    make_run(run, "hybrid", seed=0, epsilon=1e-9, k=5)  # never switches: nothing of it to draw
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "No artists with labels found to put in legend" fails
        report = build_report(run, tmp_path / "one")
    assert not [r for r in report.skipped if r.startswith("learning_curves.png")], report.skipped
    sweep = tmp_path / "sweep"
    for strategy in ("retrain", "new_only", "hybrid"):  # 20 rounds: matplotlib would tick 0, 2.5, 5, ...
        make_run(sweep / strategy, strategy, seed=0, rounds=20, epsilon=0.03, k=1)
    build_report(sweep, tmp_path / "out")
    ax_round, ax_cost = panels(drawn["learning_curves.png"])[:2]
    ticks = [t for t in ax_round.get_xticks() if ax_round.get_xlim()[0] <= t <= ax_round.get_xlim()[1]]
    assert len(ticks) >= 3 and all(float(t).is_integer() for t in ticks)
    assert ax_cost.get_xscale() == "log"  # new_only costs a small fraction of retrain


def test_switch_timing_draws_runs_without_a_query_size(tmp_path, drawn):
    rows = [{"trial": f"t{i}", "strategy": "hybrid", "epsilon": 0.01 * (1 + i % 2), "k": 1 + i % 3,
             "query_size": np.nan if i < 2 else 16, "switch_round": np.nan if i == 5 else float(3 + i)}
            for i in range(8)]
    trials = pd.DataFrame(rows)
    assert figures.plot_switch_timing(trials, ["strategy", "epsilon", "k", "query_size"], tmp_path / "s.png") is None
    fig = drawn["s.png"]
    points = sum(len(c.get_offsets()) for c in panels(fig)[0].collections)
    assert points == len(trials)  # every run a point: no query size and never-switched included
    assert "no query size" in [h.get_label() for h in fig.legends[0].legend_handles]


def test_the_signal_axis_says_what_the_monitor_measured(tmp_path, drawn):
    from analysis.figures.common import signal_name

    assert signal_name(["val"]) == "ΔF1 on the validation split"
    assert "κ" in signal_name(["agreement"]) and "ΔF1" not in signal_name(["agreement"])
    assert "ΔF1" in signal_name(["val", "agreement"]) and "κ" in signal_name(["val", "agreement"])
    for seed in (0, 1):
        make_run(tmp_path / "sweep" / f"a{seed}", "hybrid", seed=seed, epsilon=0.3, k=1, monitor="agreement")
        make_run(tmp_path / "sweep" / f"b{seed}", "hybrid", seed=seed, epsilon=0.2, k=2, monitor="agreement")
    build_report(tmp_path / "sweep", tmp_path / "out")
    labels = {ax.get_ylabel() for ax in panels(drawn["delta_f1.png"])}
    assert labels == {signal_name(["agreement"])}
