"""The sweep's closing lines: configurations ranked by their seed-mean final *validation* F1,
test F1 printed as the outcome, and where to look next."""

from __future__ import annotations

import math
from typing import Any

from hal.core.identity import config_key
from hal.sweep.manifest import Manifest, Outcome
from hal.sweep.naming import config_name
from hal.sweep.spec import SweepSpec, experiment_path


def rank_configurations(rows: list[tuple[dict[str, Any], dict[str, Any]]], top: int = 5) -> list[str]:
    """Rank configurations (``hal.core.identity.config_key``: replicates over seeds are one) by
    mean final validation F1 over their seeds, ties to fewer training samples; one list for the
    hybrid, one for the baselines.

    ``rows`` are (run settings, last reported metrics) of finished trials. The final validation
    F1 is ``final_val_f1`` or, as the trainable reports it, the last round's ``val_f1``. The test
    F1 is printed as the outcome and never read for the ranking. A hybrid setting that switched
    in no seed is the retrain run: it is counted, not ranked.
    """
    groups: dict[tuple, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for run, metrics in rows:
        if final_val_f1(metrics) is not None:
            groups.setdefault(config_key(run), []).append((run, metrics))
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


def mean_of(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def closing_lines(spec: SweepSpec, outcome: Outcome, manifest: Manifest, report_flags: str = "") -> str:
    """What a sweep script prints at the end: which configurations finished and which did not (by
    name), the ranking of those that did, and where to look next."""
    expected = len(outcome.finished) + len(outcome.missing) if manifest.kind == "grid" else manifest.num_samples
    lines = [f"{len(outcome.finished)} of {expected} configurations finished"]
    if outcome.missing:
        shown = ", ".join(outcome.missing[:8]) + (f" and {len(outcome.missing) - 8} more" if len(outcome.missing) > 8 else "")
        lines.append(f"NOT finished: {shown}: continue with --resume --name {spec.name}")
    rows = [(summary.get("config") or {}, summary) for summary in outcome.finished.values()]
    path = experiment_path(spec)
    local = "://" not in path
    report = (f"python -m analysis.report {path}{report_flags}" if local else
              f"copy {path} to a local folder (e.g. `aws s3 sync`), then python -m analysis.report FOLDER{report_flags}")
    return "\n".join([*lines, *rank_configurations(rows), "",
                      f"results: {path}", f"watch:   tensorboard --logdir {path}", f"next:    {report}"])


def num(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value
