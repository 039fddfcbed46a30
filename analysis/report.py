"""One command from a sweep directory to the figures and tables of a paper:

    python -m analysis.report <sweep_dir> [--out DIR] [--cost time|samples] [--score f1|aulc]

Writes pareto.png, learning_curves.png, delta_f1.png, switch_timing.png, heatmap_f1.png,
heatmap_saving.png, summary.csv (one row per configuration), pareto.csv (the front) and
summary.md (the table in Markdown, plus what was skipped and which runs were unfinished) to
DIR (default <sweep_dir>/report). summary.md is written last, so its presence means the report
is complete. A bad path is one line on stderr and exit code 2.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from analysis import plots
from analysis.aggregate import COSTS, HYBRID, METRICS, SCORES, config_table
from analysis.load import load_results
from analysis.pareto import front_by_group
from hal.cli import OneLineParser
from hal.errors import EXIT_USAGE, HalError

COST_FLAGS = {"time": "total_train_time_s", "samples": "total_train_samples"}
SCORE_FLAGS = {"f1": "final_test_f1", "aulc": "aulc"}
PNG_FILES = ("pareto.png", "learning_curves.png", "delta_f1.png", "switch_timing.png",
             "heatmap_f1.png", "heatmap_saving.png")
STRATEGY_RANK = {"retrain": 0, "finetune": 1, "new_only": 2, "hybrid": 3}
LIST_LIMIT = 8  # unfinished runs named on one line before "and N more"


@dataclass
class Report:
    """What ``build_report`` wrote and why anything is missing."""

    out_dir: Path
    files: list[Path]
    table: pd.DataFrame
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)


def build_report(path: str | Path, out: str | Path | None = None, cost: str = "time",
                 score: str = "f1") -> Report:
    """Load ``path``, aggregate, find the front and write every file of the report to ``out``.

    ``cost`` is ``time`` or ``samples``, ``score`` is ``f1`` or ``aulc``. Raises ``HalError`` for a
    path without finished runs or an output directory that cannot be written.
    """
    if cost not in COST_FLAGS:
        raise HalError(f"unknown cost {cost!r}: choose one of {', '.join(COST_FLAGS)}")
    if score not in SCORE_FLAGS:
        raise HalError(f"unknown score {score!r}: choose one of {', '.join(SCORE_FLAGS)}")
    cost_col, score_col = COST_FLAGS[cost], SCORE_FLAGS[score]
    results = load_results(path)
    unfinished = results.unfinished + results.unreadable
    if results.trials.empty:
        raise HalError(f"{str(results.root)!r} has no finished run yet ({len(results.unfinished)} unfinished, "
                       f"{len(results.unreadable)} unreadable): wait for summary.json files to appear")
    trials, table, keys = config_table(results.trials, results.config_columns)
    table["on_front"] = front_by_group(table, f"{cost_col}_mean", f"{score_col}_mean").to_numpy()
    table = _sorted(table, keys)
    rounds = results.rounds.merge(trials[["trial", "config_id", "config"]], on="trial", how="inner")

    out_dir = Path(out) if out is not None else results.root / "report"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HalError(f"cannot create output directory {str(out_dir)!r}: {exc.strerror or exc}; "
                       "pass a writable --out DIR") from None

    report = Report(out_dir=out_dir, files=[], table=table, unfinished=unfinished)
    if bool((table["n_seeds"] <= 1).all()):
        report.notes.append("one seed per configuration: no error bars, std columns left empty")
    drawings: list[tuple[str, Callable[[Path], str | None]]] = [
        ("pareto.png", lambda p: plots.plot_pareto(table, p, cost_col, score_col)),
        ("learning_curves.png", lambda p: plots.plot_learning_curves(rounds, table, keys, p, score_col)),
        ("delta_f1.png", lambda p: plots.plot_delta_f1(rounds, trials, keys, p)),
        ("switch_timing.png", lambda p: plots.plot_switch_timing(trials, keys, p)),
        ("heatmap_f1.png", lambda p: plots.plot_heatmap_f1(table, keys, p)),
        ("heatmap_saving.png", lambda p: plots.plot_heatmap_saving(table, keys, p, cost_col)),
    ]
    try:
        # summary.md marks a complete report: drop an old one before anything else changes.
        (out_dir / "summary.md").unlink(missing_ok=True)
        for name, draw in drawings:
            target = out_dir / name
            target.unlink(missing_ok=True)  # a stale figure from an earlier report must not survive a skip
            try:
                reason = draw(target)
            except OSError:
                raise
            except Exception as exc:  # one figure must not cost the researcher the tables
                reason = f"{name}: failed ({type(exc).__name__}: {exc}); please report this as a bug"
                target.unlink(missing_ok=True)
            if reason:
                report.skipped.append(reason)
            else:
                report.files.append(target)
        csv_table = _csv_columns(table, keys)
        _write(out_dir / "summary.csv", csv_table.to_csv(index=False), report)
        _write(out_dir / "pareto.csv", csv_table[csv_table["on_front"]].to_csv(index=False), report)
        _write(out_dir / "summary.md", _markdown(table, keys, cost_col, score_col, results.root, report), report)
    except OSError as exc:
        raise HalError(f"cannot write the report to {str(out_dir)!r}: {exc.strerror or exc}; "
                       "pass a writable --out DIR") from None
    return report


def _sorted(table: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    order = table.assign(_rank=table["strategy"].map(STRATEGY_RANK).fillna(len(STRATEGY_RANK)))
    by = [k for k in ("dataset",) if k in keys] + ["_rank"]
    by += [k for k in keys if k not in ("dataset", "strategy")]
    return order.sort_values(by, kind="stable", na_position="first").drop(columns="_rank").reset_index(drop=True)


def _csv_columns(table: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    cols = ["config", *keys, "n_seeds"]
    for metric in METRICS:
        cols += [f"{metric}_mean", f"{metric}_std", f"{metric}_n"]
    for short in COSTS.values():
        cols += [f"saving_{short}_pct_mean", f"saving_{short}_pct_std",
                 f"cost_ratio_{short}_mean", f"cost_ratio_{short}_std"]
    for short in SCORES.values():
        cols += [f"{short}_diff_mean", f"{short}_diff_std", f"{short}_ratio_mean", f"{short}_ratio_std"]
    cols += ["n_pairs", "on_front", "config_id"]
    return table[[c for c in cols if c in table.columns]]


def _write(path: Path, text: str, report: Report) -> None:
    path.write_text(text)
    report.files.append(path)


# ---------------------------------------------------------------------------------------------
# Markdown


def _markdown(table: pd.DataFrame, keys: Sequence[str], cost: str, score: str, root: Path,
              report: Report) -> str:
    short = COSTS[cost]
    cost_unit = "s" if short == "time" else "samples"
    lines = [
        f"# HAL sweep report: {root}",
        "",
        f"{int(table['n_seeds'].sum())} finished runs in {len(table)} configurations. "
        f"Pareto front (★) per dataset on cost = `{cost}` vs score = `{score}`, seed means; "
        "values are mean ± std over seeds; savings and ΔF1 are against `retrain` with the same "
        "other settings, paired by seed.",
        "",
    ]
    header = ["front", "dataset", "configuration", "n", "test F1", "AULC", "train time (s)",
              "train samples", f"saving vs retrain ({cost_unit}) %", "ΔF1 vs retrain", "switch round"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] * len(header)) + "|")
    for _, row in table.iterrows():
        switch = "–"
        if row["strategy"] == HYBRID:
            switched = int(row["switch_round_n"])
            switch = (_pm(row["switch_round_mean"], row["switch_round_std"], "{:.1f}") if switched else "never")
            switch += f" ({switched}/{int(row['n_seeds'])} switched)" if switched else ""
        cells = [
            "★" if row["on_front"] else "",
            str(row.get("dataset", "")),
            str(row["config"]),
            str(int(row["n_seeds"])),
            _pm(row["final_test_f1_mean"], row["final_test_f1_std"], "{:.3f}"),
            _pm(row["aulc_mean"], row["aulc_std"], "{:.3f}"),
            _pm(row["total_train_time_s_mean"], row["total_train_time_s_std"], "{:.1f}"),
            _pm(row["total_train_samples_mean"], row["total_train_samples_std"], "{:,.0f}"),
            _pm(row.get(f"saving_{short}_pct_mean"), row.get(f"saving_{short}_pct_std"), "{:.1f}"),
            _pm(row.get("f1_diff_mean"), row.get("f1_diff_std"), "{:+.3f}"),
            switch,
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines += ["", "## Files", ""]
    lines += [f"- `{p.name}`" for p in report.files] + ["- `summary.md`"]
    if report.skipped or report.notes:
        lines += ["", "## Skipped", ""]
        lines += [f"- {reason}" for reason in report.skipped + report.notes]
    if report.unfinished:
        lines += ["", "## Unfinished runs (excluded)", "", _unfinished_line(report.unfinished)]
    return "\n".join(lines) + "\n"


def _pm(mean: object, std: object, fmt: str, unit: str = "") -> str:
    """"mean ± std unit", just "mean unit" without a spread, "–" without a value."""
    if mean is None or (isinstance(mean, (float, np.floating)) and math.isnan(mean)):
        return "–"
    text = fmt.format(float(mean))
    if std is not None and not (isinstance(std, (float, np.floating)) and math.isnan(std)):
        text += " ± " + fmt.format(float(std)).lstrip("+")
    return text + unit


def _unfinished_line(names: list[str]) -> str:
    shown = ", ".join(names[:LIST_LIMIT])
    more = f" and {len(names) - LIST_LIMIT} more" if len(names) > LIST_LIMIT else ""
    return f"{len(names)} unfinished or unreadable run(s), excluded from every table and figure: {shown}{more}"


# ---------------------------------------------------------------------------------------------
# CLI


def _print_summary(report: Report, cost: str, score: str) -> None:
    cost_col, score_col = COST_FLAGS[cost], SCORE_FLAGS[score]
    short = COSTS[cost_col]
    cost_fmt, cost_unit = ("{:,.1f}", " s") if short == "time" else ("{:,.0f}", " samples")
    print(f"report written to {report.out_dir}/: " + ", ".join(p.name for p in report.files))
    front = report.table[report.table["on_front"]].sort_values(f"{score_col}_mean", ascending=False)
    print(f"Pareto front ({cost} vs {score}), best {score} first:")
    for _, row in front.head(10).iterrows():
        saving = row.get(f"saving_{short}_pct_mean")
        saving_text = "" if saving is None or pd.isna(saving) else f", saving {saving:.0f}% vs retrain"
        print(f"  {row.get('dataset', '')}: {row['config']}: {score} "
              f"{_pm(row[f'{score_col}_mean'], row[f'{score_col}_std'], '{:.3f}')}, "
              f"{_pm(row[f'{cost_col}_mean'], row[f'{cost_col}_std'], cost_fmt, cost_unit)}{saving_text}")
    for line in report.skipped + report.notes:
        print(f"skipped: {line}")
    if report.unfinished:
        print(_unfinished_line(report.unfinished))


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit code."""
    parser = OneLineParser(prog="python -m analysis.report",
                                     description="Pareto front, plots and tables of a HAL sweep or run.")
    parser.add_argument("sweep_dir", help="a sweep directory (results/<sweep>) or a single run directory")
    parser.add_argument("--out", default=None, help="output directory (default: <sweep_dir>/report)")
    parser.add_argument("--cost", choices=sorted(COST_FLAGS), default="time",
                        help="cost axis: total training time (s) or training samples (default: time)")
    parser.add_argument("--score", choices=sorted(SCORE_FLAGS), default="f1",
                        help="score axis: final test macro-F1 or AULC (default: f1)")
    args = parser.parse_args(argv)
    try:
        report = build_report(args.sweep_dir, args.out, args.cost, args.score)
    except HalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _print_summary(report, args.cost, args.score)
    return 0


if __name__ == "__main__":
    sys.exit(main())
