"""The sweep's closing lines: configurations ranked by their seed-mean final *validation* F1,
test F1 printed as the outcome, and where to look next."""

from __future__ import annotations

import math
from typing import Any

from hal.sweep.naming import config_name
from hal.sweep.spec import SweepSpec, experiment_path


def summarize_results(result_grid: Any, top: int = 5) -> list[str]:
    """Lines for the end of a sweep: errors, then the hybrid settings and the baselines ranked by
    their seed-mean final *validation* F1 (``rank_configurations``); test F1 is the outcome."""
    rows, errors = [], 0
    for result in result_grid:
        if result.error is not None:
            errors += 1
            continue
        metrics = result.metrics or {}
        run = dict(result.config.get("run", {}))
        run.update({k: v for k, v in result.config.items() if k != "run"})
        rows.append((run, metrics))
    return [f"{len(rows)} trials finished, {errors} errored", *rank_configurations(rows, top)]


# Settings that do not make a configuration: replicates, where files live, test hooks.
NOT_CONFIG = ("seed", "data_seed", "data_dir", "cache_dir", "fail_at_round")


def rank_configurations(rows: list[tuple[dict[str, Any], dict[str, Any]]], top: int = 5) -> list[str]:
    """Rank configurations (run settings without the seed) by mean final validation F1 over their
    seeds, ties to fewer training samples; one list for the hybrid, one for the baselines.

    ``rows`` are (run settings, last reported metrics) of finished trials. The final validation
    F1 is ``final_val_f1`` or, as the trainable reports it, the last round's ``val_f1``. The test
    F1 is printed as the outcome and never read for the ranking. A hybrid setting that switched
    in no seed is the retrain run: it is counted, not ranked.
    """
    groups: dict[tuple, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for run, metrics in rows:
        if final_val_f1(metrics) is not None:
            groups.setdefault(_config_key(run), []).append((run, metrics))
    ranked = []
    for members in groups.values():
        mean = lambda key: mean_of([num(m.get(key)) for _, m in members])  # noqa: E731
        never = all(num(m.get("switch_round")) is None for _, m in members)
        ranked.append({"run": members[0][0], "n": len(members), "val": mean_of([final_val_f1(m) for _, m in members]),
                       "test": mean("final_test_f1"), "samples": mean("total_train_samples"),
                       "time": mean("total_train_time_s"), "never": never})
    ranked.sort(key=lambda c: (-c["val"], c["samples"] if c["samples"] is not None else math.inf))
    hybrids = [c for c in ranked if c["run"].get("strategy") == "hybrid"]
    switched = [c for c in hybrids if not c["never"]]
    lines = []
    for label, subset in (("hybrid settings", switched[:top]),
                          ("baselines", [c for c in ranked if c["run"].get("strategy") != "hybrid"][:top])):
        if subset:
            lines.append(f"{label}, ranked by mean final validation F1 over seeds "
                         "(test F1 is the outcome, not used to rank):")
            lines += [f"  {config_name(c['run']):28s} val F1 {c['val']:.4f} ({c['n']} seed{'s' * (c['n'] > 1)})  "
                      f"test F1 {fmt(c['test'], '.4f')}  {fmt(c['samples'], ',.0f'):>9s} samples"
                      + ("" if c["time"] is None else f"  {c['time']:.1f}s") for c in subset]
        if label == "hybrid settings" and len(hybrids) > len(switched):
            lines.append(f"  {len(hybrids) - len(switched)} hybrid setting(s) never switched in any seed: "
                         "= retrain, not ranked")
    return lines


def final_val_f1(metrics: dict[str, Any]) -> float | None:
    value = num(metrics.get("final_val_f1"))
    return value if value is not None else num(metrics.get("val_f1"))


def _config_key(run: dict[str, Any]) -> tuple:
    # ε and k mean nothing to a baseline; the monitor does (agreement's stop set and holdout's
    # held-back examples change which examples a retrain run may query)
    unused = ("epsilon", "k") if run.get("strategy") != "hybrid" else ()
    return tuple(sorted((k, str(v)) for k, v in run.items() if k not in NOT_CONFIG and k not in unused))


def mean_of(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def closing_lines(spec: SweepSpec, result_grid: Any, report_flags: str = "") -> str:
    """What a sweep script prints at the end: outcome, best settings, where to look next."""
    path = experiment_path(spec)
    return "\n".join([*summarize_results(result_grid), "",
                      f"results: {path}", f"watch:   tensorboard --logdir {path}",
                      f"next:    python -m analysis.report {path}{report_flags}"])


def num(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def configuration_results(result_grid: Any) -> list[Any]:
    """The results that are user configurations: a shared-prefix trajectory that is not also the
    retrain baseline only served its group."""
    return [r for r in result_grid
            if not (r.config.get("role") == "trajectory" and not r.config.get("baseline"))]
