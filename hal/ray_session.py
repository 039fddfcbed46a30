"""Starting or joining Ray for a sweep, and keeping it honest.

* ``start_or_join``: join a running cluster (``--address``, or ``RAY_ADDRESS`` when set) or start
  a local Ray that is this driver's alone. A local Ray gets a watchdog: when the driver dies, even
  by SIGKILL, the watchdog ends every process of that Ray session. Ray ends its core processes
  itself (they share the driver's fate), but its ``DashboardAgent`` and ``RuntimeEnvAgent`` wait
  about 90 s for a GCS that is gone and ignore SIGTERM meanwhile. As a second line, every start
  ends the leftovers of earlier sessions whose HAL driver is dead (a marker file in the session
  directory says which driver started it); nothing else is touched.
* ``check_resources``: a per-trial request no node can hold is one clear error before anything
  is written; on an autoscaling cluster a line says what is pending, and repeats while it is.
* ``check_restore_permissions``: ``--resume`` unpickles Tune's files from the storage path, so a
  sweep folder that others can write is refused.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterable

from hal.errors import HalError

MARKER = "hal_driver.json"  # in a session directory: which HAL driver started that local Ray
AUTOSCALING_ENV = "HAL_AUTOSCALING"  # "1": resources may still appear, wait instead of failing
PENDING_EVERY_S = 60.0


# ----------------------------------------------------------------------------- start or join


def start_or_join(address: str | None) -> str | None:
    """Join ``address`` (a running cluster; ``RAY_ADDRESS`` when no address is given) or start a
    local Ray with this machine's CPUs/GPUs. Returns the session directory of a local Ray this
    driver started (watched, see the module docstring), ``None`` when it joined a cluster."""
    import ray

    if ray.is_initialized():
        return None
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        check_reachable(address)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    if not address:
        reap_dead_sessions()
        start_watchdog()  # before ray.init: a driver killed while Ray starts leaves nothing either
    try:
        if address:
            ray.init(address=address, log_to_driver=True)
        else:
            # "local": never attach to a cluster some `ray start` left in /tmp/ray by default.
            ray.init(address="local", include_dashboard=False, log_to_driver=True)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"--address {address}" if address else "a local Ray instance"
        first = str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else type(exc).__name__
        raise HalError(f"could not start or join {where}: {first}. Check that the cluster is up "
                       "(`ray status`) or drop --address to run locally") from None
    if address:
        return None
    session = _session_dir()
    if session:
        _write_marker(session)
    return session


def check_reachable(address: str) -> None:
    """Fail in seconds, not minutes, when ``address`` names a host:port nobody listens on (Ray
    itself retries for a long time)."""
    import socket

    hostport = address.split("://", 1)[-1]
    if address == "auto" or ":" not in hostport:
        return
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            pass
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise HalError(f"could not start or join --address {address}: {reason}. Check that the cluster "
                       "is up (`ray status`) or drop --address to run locally") from None


def _session_dir() -> str | None:
    try:
        import ray

        return ray._private.worker._global_node.get_session_dir_path()  # noqa: SLF001 - no public API
    except Exception:  # noqa: BLE001 - internal API moved: no watchdog, Ray still works
        return None


def _process_id(pid: int) -> tuple[int, float] | None:
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


def _write_marker(session: str) -> None:
    ident = _process_id(os.getpid())
    if ident:
        marker = {"driver_pid": ident[0], "driver_started": ident[1], "argv": sys.argv[:3]}
        Path(session, MARKER).write_text(json.dumps(marker))


# ----------------------------------------------------------------------------- leftover processes


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
    ident = _process_id(os.getpid())
    if ident is None:
        return None
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "hal.ray_session", "watch", str(ident[0]), repr(ident[1]), _default_temp_root()],
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


# ----------------------------------------------------------------------------- resources


def check_resources(cpus_per_trial: float, gpus_per_trial: float, *,
                    autoscaling: bool | None = None, every_s: float = PENDING_EVERY_S,
                    out=None) -> bool:
    """Check one trial's request against the nodes of the running cluster (call right after Ray
    starts, before any folder is made). A trial runs on one node, so one node must hold it.

    No node can: a ``HalError`` naming what was asked and what the cluster has; on an autoscaling
    cluster (Ray's cluster launcher, or ``HAL_AUTOSCALING=1``) a line saying what is pending
    instead, repeated every ``every_s`` seconds until a node that fits joins. Returns whether a
    node fits now."""
    out = out or sys.stdout
    nodes = _node_resources()
    if any(_fits(res, cpus_per_trial, gpus_per_trial) for res in nodes):
        return True
    if autoscaling is None:
        autoscaling = _autoscaling()
    have = _describe(nodes)
    want = f"{cpus_per_trial:g} CPU" + (f" + {gpus_per_trial:g} GPU" if gpus_per_trial else "")
    if not autoscaling:
        fix = ("lower --gpus-per-trial (0 runs on CPUs)" if gpus_per_trial and
               not any(_fits(r, 0, gpus_per_trial) for r in nodes) else "lower --cpus-per-trial")
        raise HalError(f"no node of the Ray cluster can run a trial: each asks for {want}, "
                       f"the cluster has {have}: {fix} or add a node that has them")
    print(f"waiting for resources: each trial asks for {want}, the cluster has {have} now; "
          "trials stay pending until the autoscaler adds a node that fits", file=out, flush=True)
    threading.Thread(target=_report_pending, args=(cpus_per_trial, gpus_per_trial, want, every_s, out),
                     daemon=True, name="hal-pending").start()
    return False


def _report_pending(cpus: float, gpus: float, want: str, every_s: float, out) -> None:
    waited = 0.0
    while True:
        time.sleep(every_s)
        waited += every_s
        try:
            nodes = _node_resources()
        except Exception:  # noqa: BLE001 - Ray shut down: nothing pending any more
            return
        if any(_fits(res, cpus, gpus) for res in nodes):
            print(f"resources arrived after {waited:.0f}s: trials start", file=out, flush=True)
            return
        print(f"still waiting ({waited:.0f}s) for a node with {want}; the cluster has {_describe(nodes)}",
              file=out, flush=True)


def _node_resources() -> list[dict[str, float]]:
    import ray

    return [dict(node.get("Resources") or {}) for node in ray.nodes() if node.get("Alive")]


def _fits(resources: dict[str, float], cpus: float, gpus: float) -> bool:
    eps = 1e-9
    return resources.get("CPU", 0) + eps >= cpus and resources.get("GPU", 0) + eps >= gpus


def _describe(nodes: list[dict[str, float]]) -> str:
    def one(res: dict[str, float]) -> str:
        return f"{res.get('CPU', 0):g} CPU, {res.get('GPU', 0):g} GPU"

    if not nodes:
        return "no live node"
    if len(nodes) == 1:
        return one(nodes[0])
    return f"{len(nodes)} nodes, the largest {one(max(nodes, key=lambda r: (r.get('GPU', 0), r.get('CPU', 0))))}"


def _autoscaling() -> bool:
    if os.environ.get(AUTOSCALING_ENV, "").strip() in ("1", "true", "yes"):
        return True
    try:
        from ray.tune.execution.cluster_info import _is_ray_cluster  # Tune's own test

        return bool(_is_ray_cluster())
    except ImportError:  # pragma: no cover
        return False


# ----------------------------------------------------------------------------- restore permissions


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
    from ray import tune

    if "://" not in str(experiment) and not tune.Tuner.can_restore(experiment):
        raise HalError(f"--resume: no sweep named {name!r} to continue under {storage_path}: "
                       "check --name and --storage-path")
    root = storage_path if "://" in storage_path else str(Path(storage_path).expanduser().resolve())
    check_restore_permissions(experiment, root)


if __name__ == "__main__":  # the watchdog: python -m hal.ray_session watch PID STARTED RAY_TEMP_ROOT
    if len(sys.argv) == 5 and sys.argv[1] == "watch":
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        watch(int(sys.argv[2]), float(sys.argv[3]), sys.argv[4])
