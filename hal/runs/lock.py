"""One writer per result folder: an exclusive lock that a run (``python -m hal run --out``) or a
sweep holds on its folder while it writes there.

    with folder_lock(out, what="run", flag="--out"):
        ...  # write the run's files

The lock is ``fcntl.flock`` on a file in the folder (``LOCK_FILE``) that also names its holder
(PID, host, start time, command) for the error a second writer gets. flock, not a file that
exists-or-not, because the kernel drops it when its holder dies in any way (``kill -9`` included),
so a crashed run never leaves a lock that blocks the next one and a recycled PID cannot fake a live
holder; the file a dead holder leaves behind only says who it was, and is taken over.

On a shared file system: NFSv4 (and NFSv3 with its lock daemon) turns flock into an NFS lock held
by the server, so writers on different hosts exclude each other; the server frees the lock of a
client host that crashed once its lease runs out (about 90 s on NFSv4). A mount with ``nolock`` or
``local_lock=flock|all`` keeps locks on each host only: two hosts are then not kept apart. Where
the file system refuses flock altogether, the holder named in the file decides: a live PID on this
host or any holder on another host (whose PID cannot be checked from here) keeps the folder, a dead
PID on this host is taken over.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

from hal.core.errors import HalError
from hal.core.paths import path_error

LOCK_FILE = ".hal.lock"
# errnos of file systems that do not do flock (some FUSE mounts, NFS without a lock daemon)
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


@dataclass(frozen=True)
class Holder:
    """Who holds (or last held) a folder's lock."""

    pid: int
    host: str
    started: float  # time.time() when it took the lock
    what: str  # "run", "sweep", ...
    command: str

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return f"PID {self.pid} on host {self.host}, since {when} ({self.command})"


@dataclass(frozen=True)
class FolderLock:
    """A held lock: its file, who we wrote into it, and the dead holder it replaced (if any)."""

    path: Path
    holder: Holder
    took_over: Holder | None
    fd: int = field(repr=False)  # closing it lets go of the flock


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, what: str = "run",
                flag: str | None = None) -> Iterator[FolderLock]:
    """Hold the exclusive lock of ``folder`` (created if missing) for the ``with`` block.

    ``what`` names the holder ("run", "sweep"), ``flag`` the option that named the folder
    ("--out"), both for messages. A folder another live process holds is a one-line ``HalError``
    naming its PID and host. The lock is released, and its file removed, when the block ends, by
    an error or Ctrl+C too.
    """
    lock = acquire(Path(folder).expanduser(), what, flag)
    try:
        yield lock
    finally:
        release(lock)


def acquire(folder: Path, what: str = "run", flag: str | None = None) -> FolderLock:
    """Take the lock of ``folder``; ``release`` lets go of it (``folder_lock`` does both)."""
    name = flag or f"{what} folder"
    fix = f"choose another {_other(name)}, or fix its permissions"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise HalError(f"{name} {str(folder)!r} is a file, not a folder: {fix}") from None
    except OSError as exc:
        raise path_error(name, folder, exc, fix) from None
    path = folder / LOCK_FILE
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise path_error(name, folder, exc, fix) from None
        try:
            if _lock(fd, path, name, folder):
                previous = _read(fd)  # a holder that is gone: the kernel freed its lock
                holder = Holder(os.getpid(), socket.gethostname(), time.time(), what, _command())
                _write(fd, holder)
                return FolderLock(path, holder, previous, fd)
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # its holder removed the file after we opened it: open the new one


def _lock(fd: int, path: Path, name: str, folder: Path) -> bool:
    """flock ``fd``: True once held, False if the file was released and removed under us, a
    ``HalError`` naming the holder if it is in use."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _busy(name, folder, _read(fd, wait=True)) from None
    except OSError as exc:
        if exc.errno == errno.ESTALE:  # NFS: removed by its releasing holder on another host
            return False
        if exc.errno not in _NO_FLOCK:
            raise path_error(name, path, exc, f"choose another {_other(name)}") from None
        # No flock here: the holder the file names decides (two starting at once may both pass).
        previous = _read(fd)
        if previous is not None and _may_be_alive(previous):
            raise _busy(name, folder, previous, checked=previous.host == socket.gethostname()) from None
        return True
    # A holder removes the file before it lets go of the lock, so a file we locked that is no
    # longer at `path` was released under us: the file now at `path` (if any) is the lock.
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def release(lock: FolderLock) -> None:
    """Remove the lock file, then let go of the lock (in that order: see ``_lock``)."""
    with contextlib.suppress(OSError):
        lock.path.unlink()
    with contextlib.suppress(OSError):
        os.close(lock.fd)  # closing drops the flock


def read_holder(folder: str | os.PathLike) -> Holder | None:
    """Who the lock file of ``folder`` names (a live or a dead holder), or None."""
    try:
        fd = os.open(Path(folder) / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return None
    try:
        return _read(fd)
    finally:
        os.close(fd)


def _other(name: str) -> str:
    """What to choose another of: the flag that named the folder (``--out``), or a folder."""
    return name if name.startswith("--") else "folder"


def _busy(name: str, folder: Path, holder: Holder | None, checked: bool = True) -> HalError:
    label, path = f"{name} {folder}", folder / LOCK_FILE
    if holder is None:  # it has just taken the lock and not written its name yet
        return HalError(f"{label} is in use by another process (lock {path}): wait for it to end "
                        f"or choose another {_other(name)}")
    if not checked:
        return HalError(f"{label} is locked by a {holder.what}, {holder.describe()}, and this file "
                        f"system cannot tell whether it still runs: if it does not, delete {path}")
    return HalError(f"{label} is in use by another {holder.what}, {holder.describe()}: wait for it "
                    f"to end or choose another {_other(name)}")


def _may_be_alive(holder: Holder) -> bool:
    """False only for a holder on this host whose PID no longer exists."""
    if holder.host != socket.gethostname():
        return True
    if holder.pid == os.getpid():
        return False  # our own lock file left behind by an earlier block that did not release it
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _read(fd: int, wait: bool = False) -> Holder | None:
    """The holder written in the lock file; with ``wait``, give a holder that just took the lock
    a moment to write its name."""
    for _ in range(10 if wait else 1):
        try:
            data = json.loads(os.pread(fd, 65536, 0).decode() or "null")
            if data is not None:
                return Holder(int(data["pid"]), str(data["host"]), float(data["started"]),
                              str(data.get("what", "run")), str(data.get("command", "")))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # empty, half-written or not ours: no name to give
        if wait:
            time.sleep(0.05)
    return None


def _write(fd: int, holder: Holder) -> None:
    data = json.dumps(asdict(holder)).encode() + b"\n"
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    with contextlib.suppress(OSError):
        os.fsync(fd)  # readers on other hosts of a shared file system see the name


def _command() -> str:
    """The holder's command line, short enough for a one-line message."""
    argv = [Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:]]
    if argv[0] in ("__main__.py", "-c"):
        argv[0] = "python -m hal" if argv[0] == "__main__.py" else "python -c"
    text = " ".join(argv)
    return text if len(text) <= 80 else text[:77] + "..."
