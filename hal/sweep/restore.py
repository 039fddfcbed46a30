"""Continuing an interrupted sweep with ``Tuner.restore``, and refusing a sweep folder whose
pickles others could have changed (restoring unpickles them)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from ray import tune

from hal.core.errors import HalError
from hal.sweep.spec import SweepSpec, experiment_path, storage_uri
from hal.sweep.tuners import trainable, tune_env


def killed_before_first_snapshot(spec: SweepSpec) -> bool:
    """Whether the sweep's folder exists but Tune never saved its state there (its driver died
    first): there is nothing to restore, and starting again in place loses nothing."""
    path = experiment_path(spec)
    # Tune writes tuner.pkl at once but its trials' state only with the first snapshot.
    return "://" not in path and Path(path).is_dir() and not list(Path(path).glob("experiment_state-*.json"))


def restore_tuner(spec: SweepSpec, shared: dict[tuple, Any]) -> Any:
    """Continue an interrupted sweep: unfinished and errored trials resume from their latest
    checkpoints; finished trials are kept as they are."""
    tune_env()
    path = experiment_path(spec)

    check_restore_permissions(path, storage_uri(spec.storage_path))
    if not tune.Tuner.can_restore(path):
        raise HalError(f"--resume: no sweep named {spec.name!r} to continue under {spec.storage_path}: "
                       "check --name and --storage-path")
    return tune.Tuner.restore(path, trainable=trainable(shared, spec), resume_unfinished=True,
                              resume_errored=True, restart_errored=False)


def check_restore_permissions(experiment: str, storage_root: str | None = None) -> None:
    """Refuse to restore a sweep whose files others could have changed.

    ``Tuner.restore`` unpickles ``tuner.pkl`` and the experiment state, so whoever can write the
    sweep folder (or a folder above it, up to the storage path) can run code as the user who
    resumes. A local folder, its files, and each folder above it up to ``storage_root`` must be
    owned by this user (or root) and not writable by group or others (a parent with the sticky bit,
    like /tmp, is fine). URIs (``s3://...``) are left to the store's own access control."""
    if "://" in str(experiment):
        return
    path = Path(experiment).expanduser().resolve()
    if not path.exists():
        return  # nothing to restore; the caller says so
    root = Path(storage_root).expanduser().resolve() if storage_root else path.parent
    uid = os.getuid()

    def refuse(p: Path, why: str) -> None:
        raise HalError(f"--resume: refusing to restore {path}: {p} {why}, and restoring unpickles the "
                       "sweep's state (tuner.pkl), so anyone who can change it could run code as you. "
                       f"Fix: chmod -R go-w {path}" + (f" (and chmod go-w on {p})" if p != path and
                                                      path not in p.parents else "")
                       + " if the files are yours and unchanged")

    def check(p: Path, parent: bool) -> None:
        try:
            st = p.lstat()
        except OSError:
            return
        if stat.S_ISLNK(st.st_mode):
            st = p.stat()
        if st.st_uid not in (uid, 0):
            refuse(p, f"belongs to another user (uid {st.st_uid})")
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            if parent and st.st_mode & stat.S_ISVTX:
                return  # sticky: others may add entries, not replace ours
            refuse(p, "is writable by " + ("group and others" if st.st_mode & stat.S_IWGRP and
                                           st.st_mode & stat.S_IWOTH else
                                           "its group" if st.st_mode & stat.S_IWGRP else "others"))

    for parent in path.parents:  # the folders above, up to the storage path
        if parent != root and root not in parent.parents:
            break
        check(parent, parent=True)
    for dirpath, dirnames, filenames in os.walk(path):
        check(Path(dirpath), parent=False)
        for name in filenames:
            check(Path(dirpath, name), parent=False)


def check_resumable(experiment: str, name: str, storage_path: str) -> None:
    """``--resume`` checks that need no Ray (run them before Ray starts): the sweep exists and
    nobody else can have changed what restoring it unpickles."""
    if "://" not in str(experiment) and not tune.Tuner.can_restore(experiment):
        raise HalError(f"--resume: no sweep named {name!r} to continue under {storage_path}: "
                       "check --name and --storage-path")
    root = storage_path if "://" in storage_path else str(Path(storage_path).expanduser().resolve())
    check_restore_permissions(experiment, root)


