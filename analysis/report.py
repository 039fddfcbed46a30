"""One command from a sweep directory to the figures and tables of a paper:

    python -m analysis.report <sweep_dir> [--out DIR] [--cost samples|time] [--score val_f1|aulc]

Writes pareto.png, learning_curves.png, delta_f1.png, switch_timing.png, heatmap_f1.png,
heatmap_saving.png, summary.csv (one row per configuration), pareto.csv (the front) and
summary.md (the table in Markdown, plus what was skipped and which runs were unfinished) to
DIR (default <sweep_dir>/report). summary.md is written last, so its presence means the report
is complete. A bad path is one line on stderr and exit code 2.

Choose on validation, report test: the front, the recommended hybrid and every ranking use the
seed mean of a validation score (``--score``: final validation macro-F1 or validation AULC); the
test macro-F1 is shown beside it as the outcome and never chooses anything. Cost defaults to
training samples, which are exact; ``--cost time`` uses seconds (noisy on a shared machine), shows
their spread and gives configurations with equal samples equal cost on the front.

Over 300 lines: the command, its tables and its Markdown; the figures are in ``analysis.figures``.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from analysis import figures
from analysis.aggregate import (COSTS, HYBRID, HYBRID_ONLY_KEYS, METRICS, SCORES, WARM_START_KEYS, config_table,
                                number_labels, recommended_hybrids)
from analysis.load import load_results
from analysis.pareto import equal_work_cost, front_by_group
from hal.core.errors import EXIT_USAGE, HalError, OneLineParser

COST_FLAGS = {"time": "total_train_time_s", "samples": "total_train_samples"}
# Scores that may choose: validation only. The test F1 is the outcome, shown but never chosen on.
SCORE_FLAGS = {"val_f1": "final_val_f1", "aulc": "aulc"}
DEFAULT_COST, DEFAULT_SCORE = "samples", "val_f1"
EXACT_COST = "total_train_samples"
PNG_FILES = ("pareto.png", "learning_curves.png", "delta_f1.png", "switch_timing.png",
             "heatmap_f1.png", "heatmap_saving.png")
STRATEGY_RANK = {"retrain": 0, "finetune": 1, "new_only": 2, "hybrid": 3}
LIST_LIMIT = 8  # unfinished runs named on one line before "and N more"
# How the settings that tell recommended hybrids apart are named in the printed summary.
GROUP_NAMES = {"query_size": "query size", "query_strategy": "query strategy"}
SHORT_GROUP_NAMES = {"query_size": "q=", "dataset": "", "learner": "", "query_strategy": ""}


@dataclass
class Report:
    """What ``build_report`` wrote and why anything is missing."""

    out_dir: Path
    files: list[Path]
    table: pd.DataFrame
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)


def build_report(path: str | Path, out: str | Path | None = None, cost: str = DEFAULT_COST,
                 score: str = DEFAULT_SCORE) -> Report:
    """Load ``path``, aggregate, find the front and write every file of the report to ``out``.

    ``cost`` is ``samples`` (exact, the default) or ``time``; ``score`` is the validation score
    that chooses: ``val_f1`` (final validation macro-F1, the default) or ``aulc``. Raises
    ``HalError`` for a path without finished runs or an output directory that cannot be written.
    """
    if cost not in COST_FLAGS:
        raise HalError(f"unknown cost {cost!r}: choose one of {', '.join(COST_FLAGS)}")
    if score in ("f1", "test_f1"):
        raise HalError(f"--score {score}: the test F1 is the reported outcome, not a score to choose on; "
                       "use val_f1 or aulc (the test F1 is shown beside them)")
    if score not in SCORE_FLAGS:
        raise HalError(f"unknown score {score!r}: choose one of {', '.join(SCORE_FLAGS)}")
    cost_col, score_col = COST_FLAGS[cost], SCORE_FLAGS[score]
    results = load_results(path)
    unfinished = results.unfinished + results.unreadable
    if results.trials.empty:
        raise HalError(f"{str(results.root)!r} has no finished run yet ({len(results.unfinished)} unfinished, "
                       f"{len(results.unreadable)} unreadable): wait for summary.json files to appear"
                       + "".join(f"; damaged: {line}" for line in results.unreadable[:LIST_LIMIT]))
    trials, table, keys = config_table(results.trials, results.config_columns)
    table = mark_front(table, keys, cost_col, score_col)
    table = _sorted(table, keys)
    rounds = results.rounds.merge(trials[["trial", "config_id", "config"]], on="trial", how="inner")

    out_dir = Path(out) if out is not None else results.root / "report"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HalError(f"cannot create output directory {str(out_dir)!r}: {exc.strerror or exc}; "
                       "pass a writable --out DIR") from None

    report = Report(out_dir=out_dir, files=[], table=table, unfinished=unfinished, keys=list(keys))
    if bool((table["n_seeds"] <= 1).all()):
        report.notes.append("one seed per configuration: no error bars, std columns left empty")
    if bool(table["never_switched"].any()):
        report.notes.append(f"{int(table['never_switched'].sum())} hybrid configuration(s) never switched in "
                            "any seed: they are the retrain run, marked '= retrain, never switched' and "
                            "left off the front and the curves")
    spend = sweep_spend_note(results.root)
    if spend:
        report.notes.append(spend)
    if cost == "time":
        report.notes.append("cost = seconds (noisy): configurations with equal training samples count as "
                            "equal cost on the front (their mean seconds); spread is ± std over seeds")
    drawings: list[tuple[str, Callable[[Path], str | None]]] = [
        ("pareto.png", lambda p: figures.plot_pareto(table, p, cost_col, score_col, keys)),
        ("learning_curves.png", lambda p: figures.plot_learning_curves(rounds, table, keys, p, score_col, cost_col)),
        ("delta_f1.png", lambda p: figures.plot_delta_f1(rounds, trials, keys, p)),
        ("switch_timing.png", lambda p: figures.plot_switch_timing(trials, keys, p)),
        ("heatmap_f1.png", lambda p: figures.plot_heatmap_f1(table, keys, p, score_col)),
        ("heatmap_saving.png", lambda p: figures.plot_heatmap_saving(table, keys, p, cost_col)),
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


def sweep_spend_note(root: Path) -> str | None:
    """What the sweep trained against what its configurations cost alone, from the sweep's
    ``sweep_summary.json`` (written by the sweep scripts); None where there is none."""
    import json

    try:
        spend = json.loads((Path(root) / "sweep_summary.json").read_text())
        computed, independent = int(spend["computed_train_samples"]), int(spend["independent_train_samples"])
        seconds = float(spend["computed_train_time_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not spend.get("shared_prefix") or not independent:
        return f"the sweep trained {computed:,} samples ({seconds:.1f} s of training)"
    return (f"sweep spend: shared retrain prefixes trained {computed:,} samples ({seconds:.1f} s) where "
            f"independent runs of its {spend.get('configurations', '?')} configurations train {independent:,} "
            f"({computed / independent:.1%}); each configuration's cost above is what it costs run alone "
            "(prefix + tail), and the front uses that")


def mark_front(table: pd.DataFrame, keys: Sequence[str], cost: str, score: str) -> pd.DataFrame:
    """``table`` plus ``front_cost`` (the cost the front uses), ``on_front`` and ``recommended``.

    Never-switched hybrids are the retrain run, so they never stand on the front on their own.
    With seconds as cost, configurations that trained on exactly the same samples share their
    mean seconds (``equal_work_cost``): their difference in seconds is noise, not a saving.
    """
    out = table.copy()
    if cost == EXACT_COST:
        out["front_cost"] = out[f"{cost}_mean"]
    else:
        out["front_cost"] = equal_work_cost(out, f"{cost}_mean", f"{EXACT_COST}_mean")
    candidates = out[~out["never_switched"]]
    out["on_front"] = False
    out.loc[candidates.index, "on_front"] = front_by_group(candidates, "front_cost", f"{score}_mean").to_numpy()
    out["recommended"] = recommended_hybrids(out, keys, score)
    return out


def _sorted(table: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    order = table.assign(_rank=table["strategy"].map(STRATEGY_RANK).fillna(len(STRATEGY_RANK)))
    by = [k for k in ("dataset",) if k in keys] + ["_rank"]
    by += [k for k in keys if k not in ("dataset", "strategy")]
    return order.sort_values(by, kind="stable", na_position="first").drop(columns="_rank").reset_index(drop=True)


def _csv_columns(table: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """The columns of summary.csv: validation scores (which choose) before the test outcome."""
    cols = ["config", *keys, "n_seeds"]
    for metric in METRICS:
        cols += [f"{metric}_mean", f"{metric}_std", f"{metric}_n"]
    for short in COSTS.values():
        cols += [f"saving_{short}_pct_mean", f"saving_{short}_pct_std",
                 f"cost_ratio_{short}_mean", f"cost_ratio_{short}_std"]
    for short in SCORES.values():
        cols += [f"{short}_diff_mean", f"{short}_diff_std", f"{short}_ratio_mean", f"{short}_ratio_std"]
    cols += ["n_pairs", "same_samples_as_retrain", "never_switched", "front_cost", "on_front",
             "recommended", "config_id"]
    return table[[c for c in cols if c in table.columns]]


def _write(path: Path, text: str, report: Report) -> None:
    path.write_text(text)
    report.files.append(path)


# ---------------------------------------------------------------------------------------------
# Markdown


SCORE_NAMES = {"final_val_f1": "val F1", "aulc": "val AULC"}


def _markdown(table: pd.DataFrame, keys: Sequence[str], cost: str, score: str, root: Path,
              report: Report) -> str:
    short = COSTS[cost]
    cost_unit = "s" if short == "time" else "samples"
    chooser = SCORE_NAMES[score]
    lines = [
        f"# HAL sweep report: {root}",
        "",
        f"{int(table['n_seeds'].sum())} finished runs in {len(table)} configurations. "
        f"**Chosen on validation:** the Pareto front (★, per dataset) is cost = `{cost}` vs "
        f"`{chooser}` (seed means), and ◆ marks the recommended hybrid of each dataset, learner, "
        f"query size and query strategy (best {chooser} among the hybrids that switched). **Test F1 is the outcome**: "
        "reported, never used to choose. "
        "Values are mean ± std over seeds; savings and Δ are against `retrain` with the same other "
        "settings (query strategy included), paired by seed. Query time is the seconds spent choosing "
        "examples (scoring the pool): a cost beside training that the savings leave out.",
        "",
    ]
    header = ["front", "dataset", "configuration", "n", "val F1 (chooses)", "val AULC (chooses)",
              "test F1 (outcome)", "train samples", "train time (s)", "query time (s)",
              f"saving vs retrain ({cost_unit}) %", "Δ val F1 vs retrain", "Δ test F1 vs retrain",
              "switch round", "monitor labels"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] * len(header)) + "|")
    for _, row in table.iterrows():
        cells = [
            ("★" if row["on_front"] else "") + ("◆" if row["recommended"] else ""),
            str(row.get("dataset", "")),
            str(row["config"]),
            str(int(row["n_seeds"])),
            _pm(row["final_val_f1_mean"], row["final_val_f1_std"], "{:.3f}"),
            _pm(row["aulc_mean"], row["aulc_std"], "{:.3f}"),
            _pm(row["final_test_f1_mean"], row["final_test_f1_std"], "{:.3f}"),
            _pm(row["total_train_samples_mean"], row["total_train_samples_std"], "{:,.0f}"),
            _pm(row["total_train_time_s_mean"], row["total_train_time_s_std"], "{:.1f}"),
            _pm(row.get("total_query_time_s_mean"), row.get("total_query_time_s_std"), "{:.1f}"),
            _saving_cell(row, short),
            _pm(row.get("val_f1_diff_mean"), row.get("val_f1_diff_std"), "{:+.3f}"),
            _pm(row.get("test_f1_diff_mean"), row.get("test_f1_diff_std"), "{:+.3f}"),
            _switch_cell(row),
            _pm(row.get("monitor_labels_mean"), None, "{:,.0f}"),
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines += ["", "## Files", ""]
    lines += [f"- `{p.name}`" for p in report.files] + ["- `summary.md`"]
    if report.notes:
        lines += ["", "## Notes", ""]
        lines += [f"- {note}" for note in report.notes]
    if report.skipped:
        lines += ["", "## Skipped", ""]
        lines += [f"- {reason}" for reason in report.skipped]
    if report.unfinished:
        lines += ["", "## Unfinished runs (excluded)", "", _unfinished_line(report.unfinished)]
    return "\n".join(lines) + "\n"


def _saving_cell(row: pd.Series, short: str, unit: str = "") -> str:
    """Saving vs retrain; a run that did exactly retrain's work saved nothing, whatever the clock said."""
    if bool(row.get("same_samples_as_retrain")) and row.get("strategy") != "retrain":
        return "0 (same samples as retrain)"
    return _pm(row.get(f"saving_{short}_pct_mean"), row.get(f"saving_{short}_pct_std"), "{:.1f}", unit)


def _switch_cell(row: pd.Series) -> str:
    if row["strategy"] != HYBRID:
        return "–"
    switched = int(row["switch_round_n"])
    if not switched:
        return f"never (0/{int(row['n_seeds'])})"
    return (_pm(row["switch_round_mean"], row["switch_round_std"], "{:.1f}")
            + f" ({switched}/{int(row['n_seeds'])} switched)")


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
    chooser = SCORE_NAMES[score_col]
    print(f"report written to {report.out_dir}/: " + ", ".join(p.name for p in report.files))
    front = report.table[report.table["on_front"]].sort_values(f"{score_col}_mean", ascending=False)
    print(f"Pareto front ({cost} vs {chooser}, seed means), best {chooser} first; test F1 is the outcome:")
    for _, row in front.head(10).iterrows():
        print("  " + _summary_line(row, cost_col, score_col, cost_fmt, cost_unit))
    recommended = report.table[report.table["recommended"]]
    groups = recommended_groups(recommended, report.keys)
    if len(recommended) == 1 or not groups:
        for _, row in recommended.iterrows():
            print(f"recommended hybrid (best {chooser} among hybrids that switched): "
                  + _summary_line(row, cost_col, score_col, cost_fmt, cost_unit))
    elif len(recommended):
        names = " and ".join(GROUP_NAMES.get(k, k) for k in groups)
        print(f"recommended hybrid per {names} (best {chooser} among the hybrids that switched at that {names}):")
        texts = {k: number_labels(v for v in recommended[k] if isinstance(v, (int, float, np.number)))
                 for k in groups}
        for _, row in recommended.sort_values(groups, kind="stable").iterrows():
            where = ", ".join(f"{SHORT_GROUP_NAMES.get(k, k + '=')}{texts[k].get(row[k], row[k])}"
                              for k in groups)
            print(f"  {where}: " + _summary_line(row, cost_col, score_col, cost_fmt, cost_unit))
    for line in report.notes:
        print(f"note: {line}")
    for line in report.skipped:
        print(f"skipped: {line}")
    if report.unfinished:
        print(_unfinished_line(report.unfinished))


def recommended_groups(recommended: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    """The settings that tell the recommended hybrids apart: there is one per group of the
    settings the hybrid does not choose (dataset, learner, query size, ...)."""
    by = [k for k in keys if k not in ("strategy", *HYBRID_ONLY_KEYS, *WARM_START_KEYS)]
    return [k for k in by if k in recommended.columns and recommended[k].astype(str).nunique() > 1]


def _summary_line(row: pd.Series, cost_col: str, score_col: str, cost_fmt: str, cost_unit: str) -> str:
    short = COSTS[cost_col]
    saving = _saving_cell(row, short, unit="%")
    saving_text = "" if saving == "–" else f", saving vs retrain {saving}"
    return (f"{row.get('dataset', '')}: {row['config']}: {SCORE_NAMES[score_col]} "
            f"{_pm(row[f'{score_col}_mean'], row[f'{score_col}_std'], '{:.3f}')}, "
            f"test F1 {_pm(row['final_test_f1_mean'], row['final_test_f1_std'], '{:.3f}')}, "
            f"{_pm(row[f'{cost_col}_mean'], row[f'{cost_col}_std'], cost_fmt, cost_unit)}{saving_text}")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit code."""
    parser = OneLineParser(prog="python -m analysis.report",
                           description="Pareto front, plots and tables of a HAL sweep or run.")
    parser.add_argument("sweep_dir", help="a sweep directory (results/<sweep>) or a single run directory")
    parser.add_argument("--out", default=None, help="output directory (default: <sweep_dir>/report)")
    parser.add_argument("--cost", choices=sorted(COST_FLAGS), default=DEFAULT_COST,
                        help="cost axis: training samples, exact (default), or training time in seconds, "
                             "noisy on a shared machine")
    parser.add_argument("--score", default=DEFAULT_SCORE,
                        help="validation score that chooses (front, recommended hybrid, curves, heatmaps): "
                             "val_f1 = final validation macro-F1 (default) or aulc = area under the "
                             "validation-F1 curve; the test F1 is always reported beside it")
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
