"""Ending the Ray processes a dead HAL driver leaves behind.

A local Ray started by a sweep gets a watchdog (``start_watchdog``): a small process that waits for
the driver to die, even by SIGKILL, and then ends every process of that Ray session. As a second
line, every start ends the leftovers of earlier sessions whose HAL driver is dead (a marker file in
the session directory says which driver started it); nothing else is touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterable

MARKER = "hal_driver.json"  # in a session directory: which HAL driver started that local Ray


def process_id(pid: int) -> tuple[int, float] | None:
    """(pid, start time): a pid alone may be reused by another process."""
    import psutil

    try:
        return pid, psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _alive(pid: int, created: float) -> bool:
    import psutil

    try:
        return abs(psutil.Process(pid).create_time() - created) < 0.01
    except psutil.Error:
        return False


def session_processes(sessions: Iterable[str]) -> list:
    """This user's processes of the given Ray session directories: those whose command line names
    one (gcs_server, raylet, monitors) and Ray's own ``ray::`` processes (workers, agents) that hold
    a file open in one. Never this process or its parents."""
    import psutil

    sessions = [str(Path(s)) for s in sessions]
    if not sessions:
        return []
    me = psutil.Process()
    skip = {me.pid, *(p.pid for p in me.parents())}
    uid = os.getuid()
    found = []
    for proc in psutil.process_iter(["pid", "name", "cmdline", "uids"]):
        info = proc.info
        if info["pid"] in skip or info["uids"] is None or info["uids"].real != uid:
            continue
        cmdline = " ".join(info["cmdline"] or [])
        if any(s + "/" in cmdline or cmdline.endswith(s) for s in sessions):
            found.append(proc)
        elif cmdline.startswith("ray::") or (info["name"] or "").startswith("ray::"):
            try:
                files = [f.path for f in proc.open_files()]
            except psutil.Error:
                continue
            if any(f.startswith(s + "/") for f in files for s in sessions):
                found.append(proc)
    return found


def reap_session(sessions: Iterable[str] | str, grace_s: float = 3.0) -> int:
    """End every process of the given Ray sessions: SIGTERM, then SIGKILL after ``grace_s``.
    Returns how many there were. Only for sessions known to be dead or ours to end."""
    import psutil

    procs = session_processes([sessions] if isinstance(sessions, str) else sessions)
    for proc in procs:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=grace_s)
    return len(procs)


def reap_dead_sessions(temp_root: str | None = None) -> int:
    """End the leftovers of local Ray sessions under ``temp_root`` (Ray's temp dir) that a HAL
    driver started and that driver is dead. Sessions without HAL's marker, or whose driver is
    alive, are never touched. Returns the number of processes ended."""
    root = Path(temp_root or _default_temp_root())
    dead = []
    for marker in root.glob(f"session_*/{MARKER}"):
        try:
            info = json.loads(marker.read_text())
            if info.get("reaped") or _alive(int(info["driver_pid"]), float(info["driver_started"])):
                continue
        except (OSError, ValueError, KeyError, TypeError):
            continue
        dead.append(marker)
    if not dead:
        return 0
    ended = reap_session([str(m.parent) for m in dead])
    for marker in dead:
        try:
            marker.write_text(json.dumps({**json.loads(marker.read_text()), "reaped": True}))
        except (OSError, ValueError):
            pass
    return ended


def _default_temp_root() -> str:
    try:
        from ray._common.utils import get_default_ray_temp_dir

        return get_default_ray_temp_dir()
    except ImportError:  # pragma: no cover - older/newer Ray
        return "/tmp/ray"


_WATCHDOG: list = []  # one per driver process


def start_watchdog() -> subprocess.Popen | None:
    """A small process, in its own session (Ctrl+C and ``kill -- -PGID`` of the driver miss it),
    that waits for this driver to die (even by SIGKILL) and then ends every process of the local
    Ray sessions this driver started (Ray names them ``session_<time>_<driver pid>``). Started once
    per driver, before ``ray.init``."""
    if _WATCHDOG and _WATCHDOG[0].poll() is None:
        return _WATCHDOG[0]
    ident = process_id(os.getpid())
    if ident is None:
        return None
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "hal.sweep.reaper", "watch", str(ident[0]), repr(ident[1]), _default_temp_root()],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))})
    _WATCHDOG[:] = [proc]
    return proc


def driver_sessions(driver_pid: int, driver_started: float, temp_root: str) -> list[str]:
    """The local Ray session directories the driver ``driver_pid`` (started at ``driver_started``)
    created under ``temp_root``."""
    found = []
    for path in Path(temp_root).glob(f"session_*_{driver_pid}"):
        try:
            if path.is_dir() and not path.is_symlink() and path.stat().st_ctime >= driver_started - 1:
                found.append(str(path))
        except OSError:
            continue
    return found


def watch(driver_pid: int, driver_started: float, temp_root: str, poll_s: float = 0.5) -> None:
    """The watchdog's loop (see ``start_watchdog``)."""
    while _alive(driver_pid, driver_started):
        time.sleep(poll_s)
    sessions = driver_sessions(driver_pid, driver_started, temp_root)
    if not sessions:
        return
    reap_session(sessions)
    for session in sessions:
        try:
            marker = Path(session, MARKER)
            if marker.is_file():
                marker.write_text(json.dumps({**json.loads(marker.read_text()), "reaped": True}))
        except (OSError, ValueError):
            pass


if __name__ == "__main__":  # the watchdog: python -m hal.sweep.reaper watch PID STARTED RAY_TEMP_ROOT
    if len(sys.argv) == 5 and sys.argv[1] == "watch":
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        watch(int(sys.argv[2]), float(sys.argv[3]), sys.argv[4])
