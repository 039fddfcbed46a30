"""What a sweep was asked to run, written before its first trial: ``<sweep>/manifest.json``.

Plain JSON (never a pickle), so reading it runs no code. Every way a sweep ends compares what
exists with it: a configuration without a finished run is run again by ``--resume`` or named, and
the sweep exits non-zero while any is missing. ``--resume`` refuses settings that differ from it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from hal import __version__
from hal.core.errors import HalError
from hal.core.records import RECORDS_FILE, SUMMARY_FILE, parse_records
from hal.sweep.plan import PLAN_FILE, PLAN_KEY
from hal.sweep.storage import Storage

MANIFEST_FILE = "manifest.json"
GRID, SEARCH = "grid", "search"


@dataclass
class Manifest:
    """``kind`` ``grid``: ``configurations`` lists every trial folder name with its run settings.
    ``kind`` ``search``: ``num_samples`` configurations are sampled; ``settings`` holds what the
    search samples from. ``settings`` is what a ``--resume`` must repeat exactly."""

    kind: str
    name: str
    settings: dict[str, Any]
    configurations: list[dict[str, Any]] = field(default_factory=list)
    num_samples: int = 0
    hal_version: str = __version__

    def names(self) -> list[str]:
        return [c["name"] for c in self.configurations]


def write_manifest(storage: Storage, manifest: Manifest) -> None:
    """Write the manifest (before the first trial starts)."""
    storage.write_text(storage.path(MANIFEST_FILE), json.dumps(asdict(manifest), indent=1, default=str) + "\n")


def read_manifest(storage: Storage, where: str) -> Manifest:
    """The manifest of the sweep at ``where`` (for messages); ``HalError`` when there is none or
    it is damaged."""
    path = storage.path(MANIFEST_FILE)
    if not storage.exists(path):
        raise HalError(f"--resume: {where} is not a HAL sweep (it has no {MANIFEST_FILE}): check --name and "
                       "--storage-path, or start a new sweep without --resume")
    try:
        data = json.loads(storage.read_text(path))
        return Manifest(**data)
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise HalError(f"--resume: {where}/{MANIFEST_FILE} is damaged ({type(exc).__name__}): the sweep's "
                       "configurations are unknown; start it again under a new --name") from None


def differences(old: Manifest, new: Manifest) -> list[str]:
    """What a resumed sweep asks for that the original did not: ``key: old -> new`` per setting."""
    out = [f"kind: {old.kind} -> {new.kind}"] if old.kind != new.kind else []
    for key in sorted({*old.settings, *new.settings}):
        a, b = old.settings.get(key), new.settings.get(key)
        if json.dumps(a, sort_keys=True, default=str) != json.dumps(b, sort_keys=True, default=str):
            out.append(f"{key}: {_short(a)} -> {_short(b)}")
    if old.num_samples != new.num_samples:
        out.append(f"num_samples: {old.num_samples} -> {new.num_samples}")
    return out


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def finished_run(storage: Storage, name: str) -> dict[str, Any] | None:
    """The summary of the trial folder ``name`` if it holds a finished run (its summary and a
    readable record per round), else None."""
    folder = storage.path(name)
    try:
        summary = json.loads(storage.read_text(f"{folder}/{SUMMARY_FILE}"))
        records = parse_records(storage.read_text(f"{folder}/{RECORDS_FILE}"))
        if [record["round"] for record in records] != list(range(int(summary["rounds"]))):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return summary if isinstance(summary, dict) else None


def sampled_folders(storage: Storage) -> list[str]:
    """The trial folders of sampled configurations (their plan has a sample id)."""
    names = []
    for name in storage.list_dir(storage.root):
        try:
            plan = json.loads(storage.read_text(storage.path(name, PLAN_FILE)))[PLAN_KEY]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(plan, dict) and plan.get("sample"):
            names.append(name)
    return names


@dataclass
class Outcome:
    """What exists of a sweep's configurations: finished runs (name -> summary) and the missing."""

    finished: dict[str, dict[str, Any]]
    missing: list[str]


def outcome(storage: Storage, manifest: Manifest) -> Outcome:
    """Compare the trial folders with the manifest."""
    if manifest.kind == GRID:
        names = manifest.names()
    else:
        names = sampled_folders(storage)
    finished = {name: s for name in names if (s := finished_run(storage, name)) is not None}
    missing = [name for name in names if name not in finished]
    if manifest.kind == SEARCH and len(finished) < manifest.num_samples:
        unnamed = manifest.num_samples - len(finished) - len(missing)
        missing += [f"{unnamed} sampled configuration(s) never started"] if unnamed > 0 else []
    return Outcome(finished, missing)
