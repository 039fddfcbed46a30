"""One-line ``HalError``s for paths a user passes: missing, unreadable, unwritable, or "under a
file" (``--out notes.txt/run``).

``pathlib``'s ``exists``/``is_file``/``is_dir`` raise ``PermissionError`` for a path inside a
folder the user may not enter (and answer a plain False for "under a file"), so every check here
calls ``os.stat``/``os.listdir`` itself and turns the ``OSError`` into a message that says which
path is wrong and how to fix it.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from hal.core.errors import HalError

_PROBE = ".hal_write_test"


def path_error(what: str, path: str | os.PathLike, exc: OSError, fix: str) -> HalError:
    """The one-line error for ``exc`` raised while using ``path`` (``what``: e.g. ``--out``)."""
    where = f"{what} {str(path)!r}"
    if exc.errno == errno.ENOENT:
        reason = "does not exist"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        reason = "cannot be accessed: permission denied"
    elif exc.errno == errno.ENOTDIR:
        blocker = file_above(Path(path))
        reason = (f"is under {str(blocker)!r}, which is a file, not a folder" if blocker
                  else "is not a folder")
    elif exc.errno == errno.EROFS:
        reason = "is on a read-only file system"
    elif exc.errno == errno.ENOSPC:
        reason = "cannot be written: no space left on the device"
    else:
        reason = f"cannot be used: {exc.strerror or type(exc).__name__}"
    return HalError(f"{where} {reason}: {fix}")


def file_above(path: Path) -> Path | None:
    """The first existing non-folder among the parents of ``path`` (the file a path is "under")."""
    for parent in reversed(Path(path).parents):
        try:
            if not stat.S_ISDIR(os.stat(parent).st_mode):
                return parent
        except OSError:
            return None
    return None


def readable_file(path: str | os.PathLike, what: str, fix: str) -> Path:
    """``path`` if it is a file this user may read; else a one-line ``HalError``."""
    p = Path(path).expanduser()
    mode = _stat(p, what, fix).st_mode
    if stat.S_ISDIR(mode):
        raise HalError(f"{what} {str(p)!r} is a directory, not a file: {fix}")
    try:
        with open(p, "rb"):
            pass
    except OSError as exc:
        raise path_error(what, p, exc, fix) from None
    return p


def readable_dir(path: str | os.PathLike, what: str, fix: str) -> Path:
    """``path`` if it is a folder this user may list and enter; else a one-line ``HalError``."""
    p = Path(path).expanduser()
    if not stat.S_ISDIR(_stat(p, what, fix).st_mode):
        raise HalError(f"{what} {str(p)!r} is a file, not a folder: {fix}")
    try:
        names = os.listdir(p)
        if names:  # listable is not enough: entering it (x) is what reading its files needs
            os.lstat(p / names[0])
    except OSError as exc:
        raise path_error(what, p, exc, fix) from None
    return p


def writable_dir(path: str | os.PathLike, what: str, fix: str) -> Path:
    """Create ``path`` (and parents) if needed and prove a file can be written in it."""
    p = Path(path).expanduser()
    try:
        p.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # exists but is a file
        raise HalError(f"{what} {str(p)!r} is a file, not a folder: {fix}") from None
    except OSError as exc:
        raise path_error(what, p, exc, fix) from None
    probe = p / _PROBE
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise path_error(what, p, exc, fix) from None
    return p


def is_dir(path: str | os.PathLike) -> bool:
    """Like ``Path.is_dir`` but False (never an exception) for a path that cannot be checked."""
    try:
        return stat.S_ISDIR(os.stat(Path(path).expanduser()).st_mode)
    except (OSError, ValueError):
        return False


def _stat(p: Path, what: str, fix: str) -> os.stat_result:
    try:
        return os.stat(p)
    except OSError as exc:
        raise path_error(what, p, exc, fix) from None
