"""Read a sweep directory (or one run directory) into two tidy tables.

Every directory below the given path that holds ``records.jsonl`` is a run (a Tune trial or a
``python -m hal run --out DIR``). A run is finished once its ``summary.json`` exists; unfinished
and unreadable runs are listed, not loaded, so aggregates only ever see complete runs. Ray's own
files next to ours (result.json, params.json, events...) are ignored.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from hal.core.errors import HalError
from hal.core.records import RECORDS_FILE, SUMMARY_FILE

# Summary fields that are plain copies of config keys (config wins); any other summary field
# whose name clashes with a config key (e.g. ``rounds``: planned vs done) gets this prefix.
SUMMARY_COPIES = ("dataset", "strategy", "seed")
CLASH_PREFIX = "summary_"


@dataclass
class Results:
    """What ``load_results`` found below ``root``.

    ``rounds``: one row per finished run x round (``trial``, config columns, record fields).
    ``trials``: one row per finished run (``trial``, ``path``, config columns, summary fields).
    ``unfinished``: ids of runs with records but no summary yet; ``unreadable``: "id: why" lines.
    ``config_columns``: the names of the config columns in both tables.
    """

    root: Path
    rounds: pd.DataFrame
    trials: pd.DataFrame
    config_columns: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


def find_runs(path: str | Path) -> list[Path]:
    """Every directory at or below ``path`` holding a ``records.jsonl``, sorted by path."""
    root = Path(path)
    return sorted({p.parent for p in root.rglob(RECORDS_FILE) if p.is_file()})


def load_results(path: str | Path) -> Results:
    """Load a sweep or run directory; ``HalError`` if it is missing or holds no records."""
    root = Path(path).expanduser()
    if not root.exists():
        raise HalError(f"{str(root)!r} does not exist: pass a sweep directory (e.g. results/<sweep>) "
                       "or a run directory")
    if not root.is_dir():
        raise HalError(f"{str(root)!r} is not a directory: pass a sweep directory (e.g. results/<sweep>) "
                       "or a run directory")
    run_dirs = find_runs(root)
    if not run_dirs:
        raise HalError(f"{str(root)!r} is not a HAL sweep or run directory: no {RECORDS_FILE} below it")

    round_rows: list[dict[str, Any]] = []
    trial_rows: list[dict[str, Any]] = []
    config_cols: list[str] = []
    unfinished: list[str] = []
    unreadable: list[str] = []
    for run_dir in run_dirs:
        trial = _trial_id(root, run_dir)
        if not (run_dir / SUMMARY_FILE).is_file():
            unfinished.append(trial)
            continue
        try:
            records = _read_records(run_dir / RECORDS_FILE)
            summary = _read_summary(run_dir / SUMMARY_FILE)
        except DamagedFile as exc:  # named, skipped; the other runs are still reported
            unreadable.append(f"{_trial_file(trial, exc.path)}: {exc.reason}")
            continue
        config = _config_of(summary, run_dir)
        for key in config:
            if key not in config_cols:
                config_cols.append(key)
        trial_rows.append(_trial_row(trial, run_dir, config, summary))
        # A config key named like a record field must not overwrite the record's value.
        fields = set().union(*records)
        cfg = {(f"config_{k}" if k in fields else k): v for k, v in config.items()}
        round_rows.extend({"trial": trial, **cfg, **record} for record in records)

    trials = pd.DataFrame(trial_rows)
    rounds = pd.DataFrame.from_records(round_rows) if round_rows else pd.DataFrame()
    if not trials.empty:
        trials = trials.sort_values("trial", kind="stable").reset_index(drop=True)
        rounds = rounds.sort_values(["trial", "round"], kind="stable").reset_index(drop=True)
    return Results(root=root, rounds=rounds, trials=trials, config_columns=config_cols,
                   unfinished=unfinished, unreadable=unreadable)


def _trial_id(root: Path, run_dir: Path) -> str:
    """The run's path relative to the sweep root; a run directory given directly is its name."""
    rel = run_dir.relative_to(root)
    return rel.as_posix() if rel.parts else (run_dir.resolve().name or str(run_dir))


class DamagedFile(Exception):
    """A result file that cannot be used: ``path`` and a short ``reason``."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def _read_records(path: Path) -> list[dict[str, Any]]:
    """The records of ``records.jsonl``: every line a JSON object with an integer ``round``."""
    records = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise DamagedFile(path, f"line {number} is not valid JSON") from None
        if not isinstance(record, dict):
            raise DamagedFile(path, f"line {number} is not a JSON object ({_json_kind(record)})")
        if isinstance(record.get("round"), bool) or not isinstance(record.get("round"), int):
            raise DamagedFile(path, f"line {number} has no integer 'round'")
        if "signal" not in record:  # written before the switch signal had its own fields
            record["monitor_score"], record["signal"] = record.get("monitor_f1"), record.get("delta_f1")
        records.append(record)
    if not records:
        raise DamagedFile(path, "holds no record")
    return records


def _read_summary(path: Path) -> dict[str, Any]:
    """``summary.json`` as a dict; empty, invalid or non-object files are ``DamagedFile``."""
    text = _read_text(path)
    if not text.strip():
        raise DamagedFile(path, "is empty")
    try:
        summary = json.loads(text)
    except ValueError:
        raise DamagedFile(path, "is not valid JSON") from None
    if not isinstance(summary, dict):
        raise DamagedFile(path, f"is not a JSON object ({_json_kind(summary)})")
    return summary


def _json_kind(value: Any) -> str:
    """What a JSON value is, in JSON's words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    kinds = {list: "an array", str: "a string", int: "a number", float: "a number"}
    return kinds.get(type(value), type(value).__name__)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DamagedFile(path, "is not UTF-8 text") from None
    except OSError as exc:
        raise DamagedFile(path, f"cannot be read ({(exc.strerror or type(exc).__name__).lower()})") from None


def _trial_file(trial: str, path: Path) -> str:
    """``<trial>/<file>``: which file of which run is damaged."""
    return f"{trial}/{path.name}"


def _config_of(summary: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """The run's config, flattened: ``summary["config"]``, else Ray's params.json, plus the copies
    the summary carries at top level (dataset, strategy, seed) where the config lacks them."""
    config = summary.get("config")
    if not isinstance(config, dict):
        config = {}
        params = run_dir / "params.json"
        if params.is_file():
            try:
                loaded = json.loads(params.read_text())
                config = loaded if isinstance(loaded, dict) else {}
            except ValueError:
                config = {}
    flat = _flatten(config)
    for key in SUMMARY_COPIES:
        if flat.get(key) is None and summary.get(key) is not None:
            flat[key] = summary[key]
    return flat


def _flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts become dotted keys; lists become JSON text so every value can be grouped on."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, prefix=f"{name}."))
        elif isinstance(value, (list, tuple)):
            out[name] = json.dumps(value)
        else:
            out[name] = value
    return out


def _trial_row(trial: str, run_dir: Path, config: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"trial": trial, "path": str(run_dir.resolve())}
    row.update(config)
    for key, value in summary.items():
        if key == "config" or (key in SUMMARY_COPIES and key in config):
            continue
        if isinstance(value, (dict, list)):
            continue  # extra structured fields are not table material
        row[f"{CLASH_PREFIX}{key}" if key in row else key] = _nan_if_none(value)
    return row


def _nan_if_none(value: Any) -> Any:
    return math.nan if value is None else value
