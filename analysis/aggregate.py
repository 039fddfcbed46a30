"""Aggregate finished runs over seeds into one row per configuration, and compare with retrain.

A *configuration* is everything that defines a run except its seed: dataset, learner, strategy,
epsilon, k, query_size, plus any other config key that varies across the runs (path-like keys
excepted). Epsilon and k mean nothing for the non-hybrid strategies, so they are blanked there
first; otherwise a retrain baseline swept alongside a (epsilon, k) grid would split into one
"configuration" per grid cell.

Over 300 lines: grouping, seed means, labels and the comparison with retrain all rest on one
definition of the configuration columns, kept in this one place.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from hal.core.identity import PATH_KEYS, REPLICATE_KEYS, RULE_KEYS, WARM_START_KEYS, unused_settings

BASE_KEYS = ("dataset", "learner", "strategy", "epsilon", "k", "query_size")
# What makes two runs one configuration is decided in hal.core.identity (the sweep's ranking and
# shared-prefix planning ask there too): replicates (seed, data seed) and file locations are
# aggregated over; settings a run does not use are blanked.
HYBRID = "hybrid"
REFERENCE = "retrain"
BASELINES = ("retrain", "finetune", "new_only")
# Settings only the hybrid's switch decision uses: they never change its retrain rounds, so they
# neither split retrain nor keep a hybrid from finding its retrain reference.
HYBRID_ONLY_KEYS = RULE_KEYS

# monitor_labels: the labels the switch monitor consumed (val split, held-back examples; 0 for the
# label-free agreement monitor): a cost the sample count does not show.
METRICS = ("final_val_f1", "aulc", "final_test_f1", "total_train_time_s", "total_train_samples",
           "total_query_time_s", "switch_round", "monitor_labels")
# Summary fields that are results, not settings (besides METRICS).
SUMMARY_ONLY = ("final_labeled",)
COSTS = {"total_train_time_s": "time", "total_train_samples": "samples"}
# Scores compared with retrain. final_val_f1 and aulc (of the val-F1 curve) are validation scores:
# they choose. final_test_f1 is the reported outcome and never chooses anything.
SCORES = {"final_val_f1": "val_f1", "aulc": "aulc", "final_test_f1": "test_f1"}
VALIDATION_SCORES = ("final_val_f1", "aulc")
NEVER_SWITCHED = "= retrain, never switched"


def config_keys(trials: pd.DataFrame, config_columns: Sequence[str] | None = None) -> list[str]:
    """The columns that identify a configuration: the base keys present, then every other config
    column whose value varies across ``trials`` (seeds and path-like keys excluded).

    ``config_columns`` names the config columns (``Results.config_columns``); without it every
    column but the known summary fields counts as config.
    """
    keys = [k for k in BASE_KEYS if k in trials.columns]
    if config_columns is not None:
        candidates = list(config_columns)
    else:
        candidates = [c for c in trials.columns
                      if c not in METRICS and c not in SUMMARY_ONLY and not c.startswith("summary_")]
    skip = set(keys) | set(REPLICATE_KEYS) | set(PATH_KEYS) | {"trial", "path"}
    blanked = blank_hybrid_keys(trials)
    for col in candidates:
        if col in skip or col not in blanked.columns:
            continue
        values = blanked[col].astype(object)
        if values.where(values.notna(), None).astype(str).nunique() > 1:  # None and NaN alike
            keys.append(col)
    return keys


def blank_hybrid_keys(trials: pd.DataFrame) -> pd.DataFrame:
    """A copy with the settings a run does not use set to NaN (``hal.core.identity.unused_settings``:
    the switch rule of a baseline, the warm-start settings of retrain, a monitor's own knobs under
    another monitor)."""
    out = trials.copy()
    if "strategy" not in out.columns:
        return out
    monitors = out["monitor"] if "monitor" in out.columns else pd.Series("val", index=out.index)
    unused = [unused_settings(s, m) for s, m in zip(out["strategy"], monitors)]
    for key in sorted(set().union(*unused, set()) & set(out.columns)):
        mask = pd.Series([key in u for u in unused], index=out.index)
        numeric = pd.to_numeric(out[key], errors="coerce")
        column = numeric.astype(float) if numeric.notna().sum() == out[key].notna().sum() else out[key].astype(object)
        out[key] = column.where(~mask, np.nan)
    return out


def assign_configs(trials: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """``trials`` with hybrid-only keys blanked, plus ``config_id`` (int) and ``config`` (a label
    like ``hybrid ε=0.01 k=2 q=32``) identifying each run's configuration."""
    out = blank_hybrid_keys(trials)
    if out.empty:
        out["config_id"] = pd.Series(dtype=int)
        out["config"] = pd.Series(dtype=str)
        return out
    grouped = out.groupby(list(keys), dropna=False, sort=True)
    out["config_id"] = grouped.ngroup().to_numpy()
    firsts = out.drop_duplicates("config_id").set_index("config_id")
    # Name a non-base key (learner, lr, ...) in the label only when it tells configurations apart.
    shown = [k for k in keys if k in ("strategy", "epsilon", "k", "query_size")
             or (k != "dataset" and firsts[k].astype(str).nunique(dropna=False) > 1)]
    # Numbers with the digits that tell this sweep's values apart: ε=0.0142, not 0.014177183625535023.
    texts = {k: number_labels(v for v in firsts[k] if isinstance(v, (int, float, np.number))) for k in shown}
    labels = {cid: config_label(row, shown, texts) for cid, row in firsts.iterrows()}
    out["config"] = out["config_id"].map(labels)
    return out


def config_label(row: pd.Series, keys: Sequence[str], texts: dict[str, dict[float, str]] | None = None) -> str:
    """Short human label for one configuration, e.g. ``hybrid ε=0.01 k=2 q=32 badge lr=0.1``: the
    strategy, ε and k for the hybrid, the query size and query strategy (by name), then
    ``key=value`` for every other key in ``keys`` but the dataset
    (tables have a dataset column and plots facet on it). ``texts``: key -> {value: text}, the
    displayed form of numbers (``number_labels``); without it, 6 significant digits."""
    texts = texts or {}

    def shown(key: str) -> str:
        value = row.get(key)
        return texts.get(key, {}).get(value, _fmt(value)) if not _is_missing(value) else _fmt(value)

    parts = [str(row.get("strategy", "?"))]
    if row.get("strategy") == HYBRID:
        parts.append(f"ε={shown('epsilon')}")
        parts.append(f"k={shown('k')}")
    if "query_size" in keys:
        parts.append(f"q={shown('query_size')}")
    if "query_strategy" in keys:
        parts.append(shown("query_strategy"))
    for key in keys:
        # A blank value is a setting this run does not use (e.g. shrink for retrain): not shown.
        if key in ("dataset", "strategy", "epsilon", "k", "query_size", "query_strategy") or _is_missing(row.get(key)):
            continue
        parts.append(f"{key}={shown(key)}")
    return " ".join(parts)


def number_labels(values: Iterable[float], digits: int = 3) -> dict[float, str]:
    """value -> text with ``digits`` significant digits, more only where needed to tell a value
    from its neighbours in ``values`` (0.0142, and 0.01418 beside 0.01423; never
    0.014177183625535023); whole numbers as integers."""
    distinct = sorted({float(v) for v in values if not _is_missing(v)})
    out = {}
    for i, value in enumerate(distinct):
        neighbours = distinct[max(0, i - 1):i] + distinct[i + 1:i + 2]
        for d in range(digits, 18):
            text = _significant(value, d)
            if all(_significant(n, d) != text for n in neighbours):
                break
        out[value] = text
    if len(set(out.values())) < len(out):  # a shorter text equal to a neighbour's longer one
        for d in range(digits, 18):
            if len({_significant(v, d) for v in distinct}) == len(distinct):
                return {v: _significant(v, d) for v in distinct}
        return {v: repr(v) for v in distinct}
    return out


def _significant(value: float, digits: int) -> str:
    if float(value).is_integer() and abs(value) < 10 ** digits:
        return str(int(value))
    return f"{value:.{digits}g}"


def aggregate(trials: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """One row per configuration: the keys, ``config_id``, ``config``, ``n_seeds`` (finished runs)
    and ``<metric>_mean``, ``<metric>_std`` (sample std, NaN for one run), ``<metric>_n`` (runs with
    a value; for switch_round: runs that switched) for every metric in ``METRICS``.

    ``trials`` must come from ``assign_configs``.
    """
    columns = ["config_id", *keys, "config"]
    first = trials.drop_duplicates("config_id").set_index("config_id")
    table = first[[c for c in columns if c != "config_id"]].copy()
    groups = trials.groupby("config_id")
    table["n_seeds"] = groups.size()
    for metric in METRICS:
        if metric not in trials.columns:
            values = pd.Series(np.nan, index=trials.index)
        else:
            values = pd.to_numeric(trials[metric], errors="coerce")
        by = values.groupby(trials["config_id"])
        table[f"{metric}_mean"] = by.mean()
        table[f"{metric}_std"] = by.std(ddof=1)
        table[f"{metric}_n"] = by.count()
    return table.reset_index().sort_values("config_id").reset_index(drop=True)


def savings_vs_retrain(trials: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Per configuration, cost and score relative to ``retrain`` with the same other keys.

    The reference is the retrain configuration that shares every key but strategy, the hybrid-only
    keys and the warm-start settings (which retrain does not use).
    Runs are paired by seed where the reference has that seed: per pair the cost ratio
    (config / retrain), saving in % (100 * (1 - ratio)), score difference (config - retrain) and
    score ratio, then mean and std over the pairs (``n_pairs`` of them). Without any shared seed
    the ratio / difference of the seed means is given, std NaN and ``n_pairs`` 0. Configurations
    with no retrain reference get NaN. Columns: ``cost_ratio_<time|samples>_{mean,std}``,
    ``saving_<time|samples>_pct_{mean,std}``, ``<val_f1|aulc|test_f1>_diff_{mean,std}``,
    ``<val_f1|aulc|test_f1>_ratio_{mean,std}``, ``n_pairs``, ``reference_id`` and
    ``same_samples_as_retrain`` (every paired run did exactly retrain's training work).

    ``trials`` must come from ``assign_configs``.
    """
    # A summary from an older run may lack a score (e.g. final_val_f1): compare it as NaN.
    trials = trials.assign(**{m: np.nan for m in (*COSTS, *SCORES) if m not in trials.columns})
    match_keys = [k for k in keys if k not in ("strategy", *HYBRID_ONLY_KEYS, *WARM_START_KEYS)]
    ref_trials = trials[trials["strategy"] == REFERENCE] if "strategy" in trials.columns else trials.iloc[:0]
    ref_ids = _reference_ids(trials, ref_trials, match_keys)
    rows = []
    for cid, group in trials.groupby("config_id", sort=True):
        row: dict[str, Any] = {"config_id": cid, "reference_id": ref_ids.get(cid, math.nan)}
        ref_id = ref_ids.get(cid)
        ref = ref_trials[ref_trials["config_id"] == ref_id] if ref_id is not None else ref_trials.iloc[:0]
        row.update(_compare(group, ref))
        rows.append(row)
    return pd.DataFrame(rows)


def config_table(trials: pd.DataFrame, config_columns: Sequence[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Convenience: (trials with config ids, per-configuration table with aggregates and savings
    vs retrain, the configuration keys).

    The table has ``never_switched`` (a hybrid whose runs all kept retraining: it *is* the
    retrain run) and such configurations carry ``= retrain, never switched`` in their ``config``
    label, in both returned frames.
    """
    keys = config_keys(trials, config_columns)
    assigned = assign_configs(trials, keys)
    table = aggregate(assigned, keys).merge(savings_vs_retrain(assigned, keys), on="config_id", how="left")
    table["never_switched"] = never_switched(table)
    relabel = {cid: f"{label} {NEVER_SWITCHED}"
               for cid, label in table.loc[table["never_switched"], ["config_id", "config"]].to_numpy()}
    table["config"] = table["config_id"].map(relabel).astype(object).fillna(table["config"])
    assigned["config"] = assigned["config_id"].map(relabel).astype(object).fillna(assigned["config"])
    return assigned, table, keys


def never_switched(table: pd.DataFrame) -> pd.Series:
    """True for hybrid configurations none of whose runs switched (``switch_round`` null in every
    seed): until it switches a hybrid run is the retrain run, so these are retrain, not a
    configuration of their own. ``table`` comes from ``aggregate``."""
    if "strategy" not in table.columns:
        return pd.Series(False, index=table.index)
    return (table["strategy"] == HYBRID) & (table["switch_round_n"].fillna(0) == 0)


def recommended_hybrids(table: pd.DataFrame, keys: Sequence[str], score: str = "final_val_f1",
                        cost: str = "total_train_samples") -> pd.Series:
    """Boolean Series marking, per group of the settings the hybrid does not choose (dataset,
    learner, query size, ...), the recommended hybrid: the best seed-mean validation ``score``
    among the hybrid configurations that switched in at least one seed, ties to the lower mean
    ``cost``. A test score is refused: choosing on test and reporting test is circular."""
    if score not in VALIDATION_SCORES:
        raise ValueError(f"choose on a validation score ({', '.join(VALIDATION_SCORES)}), not {score!r}")
    out = pd.Series(False, index=table.index)
    if "strategy" not in table.columns:
        return out
    candidates = table[(table["strategy"] == HYBRID) & ~never_switched(table)].dropna(subset=[f"{score}_mean"])
    by = [k for k in keys if k not in ("strategy", *HYBRID_ONLY_KEYS, *WARM_START_KEYS)]
    groups = candidates.groupby(by, dropna=False, sort=False) if by else [(None, candidates)]
    for _, part in groups:
        ranked = part.sort_values([f"{score}_mean", f"{cost}_mean"], ascending=[False, True], kind="stable")
        out.loc[ranked.index[0]] = True
    return out


def _reference_ids(trials: pd.DataFrame, ref_trials: pd.DataFrame, match_keys: list[str]) -> dict[int, int]:
    """config_id -> config_id of its retrain reference (the one with equal ``match_keys``)."""
    if ref_trials.empty:
        return {}
    ref_by_key = {_key_tuple(row, match_keys): row["config_id"]
                  for _, row in ref_trials.drop_duplicates("config_id").iterrows()}
    out = {}
    for _, row in trials.drop_duplicates("config_id").iterrows():
        ref = ref_by_key.get(_key_tuple(row, match_keys))
        if ref is not None:
            out[int(row["config_id"])] = int(ref)
    return out


def _key_tuple(row: pd.Series, keys: list[str]) -> tuple:
    # NaN != NaN, so compare on a normalised text form of each value.
    return tuple("<NA>" if _is_missing(row.get(k)) else str(row.get(k)) for k in keys)


def _compare(group: pd.DataFrame, ref: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {}
    names = [f"cost_ratio_{c}" for c in COSTS.values()] + [f"saving_{c}_pct" for c in COSTS.values()]
    names += [f"{s}_diff" for s in SCORES.values()] + [f"{s}_ratio" for s in SCORES.values()]
    for name in names:
        out[f"{name}_mean"] = math.nan
        out[f"{name}_std"] = math.nan
    out["n_pairs"] = 0
    out["same_samples_as_retrain"] = False
    if ref.empty:
        return out
    # Per-seed reference values (mean if a seed was run twice), indexed by seed.
    ref_by_seed = ref.groupby("seed")[[*COSTS, *SCORES]].mean() if "seed" in ref.columns else None
    paired = group[group["seed"].isin(ref_by_seed.index)] if ref_by_seed is not None and "seed" in group.columns else group.iloc[:0]
    out["n_pairs"] = int(len(paired))
    # Equal samples mean equal work: any difference in seconds between such runs is noise.
    samples = "total_train_samples"
    if len(paired):
        mine, theirs = _num(paired[samples]).to_numpy(), ref_by_seed.loc[paired["seed"], samples].to_numpy()
    else:
        mine, theirs = np.array([_num(group[samples]).mean()]), np.array([_num(ref[samples]).mean()])
    out["same_samples_as_retrain"] = bool(np.all(mine == theirs))
    for cost, short in COSTS.items():
        if len(paired):
            ratio = _div(_num(paired[cost]).to_numpy(), ref_by_seed.loc[paired["seed"], cost].to_numpy())
            _put(out, f"cost_ratio_{short}", ratio)
            _put(out, f"saving_{short}_pct", 100.0 * (1.0 - ratio))
        else:
            ratio = float(_div(_num(group[cost]).mean(), _num(ref[cost]).mean()))
            out[f"cost_ratio_{short}_mean"] = ratio
            out[f"saving_{short}_pct_mean"] = 100.0 * (1.0 - ratio)
    for score, short in SCORES.items():
        if len(paired):
            mine = _num(paired[score]).to_numpy()
            theirs = ref_by_seed.loc[paired["seed"], score].to_numpy()
            _put(out, f"{short}_diff", mine - theirs)
            _put(out, f"{short}_ratio", _div(mine, theirs))
        else:
            mine, theirs = _num(group[score]).mean(), _num(ref[score]).mean()
            out[f"{short}_diff_mean"] = mine - theirs
            out[f"{short}_ratio_mean"] = float(_div(mine, theirs))
    return out


def _div(a, b):
    # A zero-cost or zero-score reference gives no meaningful ratio: NaN, not inf or an exception.
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b != 0, a / np.where(b != 0, b, 1.0), np.nan)


def _put(out: dict[str, float], name: str, values: np.ndarray) -> None:
    series = pd.Series(values, dtype=float).replace([np.inf, -np.inf], np.nan)
    out[f"{name}_mean"] = float(series.mean())
    out[f"{name}_std"] = float(series.std(ddof=1)) if series.count() > 1 else math.nan


def _num(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series, errors="coerce").astype(float)


def _is_missing(value: object) -> bool:
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _fmt(value: object) -> str:
    if _is_missing(value):
        return "-"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):g}"
    return str(value)
