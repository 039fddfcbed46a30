"""Starting or joining Ray for a sweep, and checking what it can run.

* ``start_or_join``: join a running cluster (``--address``, or ``RAY_ADDRESS`` when set) or start
  a local Ray that is this driver's alone. A local Ray gets a watchdog: when the driver dies, even
  by SIGKILL, the watchdog ends every process of that Ray session. Ray ends its core processes
  itself (they share the driver's fate), but its ``DashboardAgent`` and ``RuntimeEnvAgent`` wait
  about 90 s for a GCS that is gone and ignore SIGTERM meanwhile. As a second line, every start
  ends the leftovers of earlier sessions whose HAL driver is dead (a marker file in the session
  directory says which driver started it); nothing else is touched (``hal.sweep.reaper``).
  A local Ray listens on 127.0.0.1 only, and stays quiet: its start-up lines, the per-round
  "checkpoint created" lines of the trials and the workers' shutdown tracebacks stay off the
  user's stderr (token authentication stays on; trial errors still show).
* ``check_resources``: a per-trial request no node can hold is one clear error before anything
  is written; on an autoscaling cluster a line says what is pending, and repeats while it is.
* ``trial_slots``: how many trials the cluster can run at once.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import threading
import time
from pathlib import Path

from hal.core.errors import HalError
from hal.sweep.reaper import MARKER, process_id, reap_dead_sessions, start_watchdog

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
    # Ray announces that token authentication is on (it stays on) and that it started: neither
    # belongs in front of the sweep's own lines or a one-line error.
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    quiet = {"logging_level": logging.WARNING,
             "runtime_env": {"worker_process_setup_hook": "hal.sweep.ray_session.quiet_worker",
                             "env_vars": _storage_env()}}
    try:
        if address:
            ray.init(address=address, log_to_driver=True, **quiet)
        else:
            _loopback_only()
            # "local": never attach to a cluster some `ray start` left in /tmp/ray by default.
            ray.init(address="local", include_dashboard=False, log_to_driver=True, **quiet)
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


def _loopback_only() -> None:
    """Bind every server of a local Ray (GCS, raylet, workers, agents) to 127.0.0.1: Ray's
    single-machine mode, its default on macOS and Windows. Ray reads the setting when it is first
    imported (the driver's copy is set here too) and its child processes read the environment."""
    import ray._private.ray_constants as ray_constants

    os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False


def _storage_env() -> dict[str, str]:
    """Where an S3-compatible storage path lives, for trials on other nodes (credentials stay the
    nodes' own business)."""
    names = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION")
    return {name: os.environ[name] for name in names if os.environ.get(name)}


def quiet_worker() -> None:
    """Set-up of every Ray worker process of a sweep. Ray's SIGTERM handler raises SystemExit
    wherever a stopping worker is; inside a finalizer Python cannot raise it and prints
    "Exception ignored ... SystemExit: 1", which reaches the driver's stderr after a successful
    sweep: drop exactly that report. And Tune's per-checkpoint INFO lines stay in the worker."""
    default = sys.unraisablehook

    def hook(unraisable) -> None:
        if not isinstance(unraisable.exc_value, SystemExit):
            default(unraisable)

    sys.unraisablehook = hook
    logging.getLogger("ray").setLevel(logging.WARNING)


def trial_slots(cpus_per_trial: float, gpus_per_trial: float) -> int | None:
    """How many trials of this size the cluster can run at once now, counted per node (a trial
    runs on one node); None on an autoscaling cluster, where nodes may still come."""
    if _autoscaling():
        return None
    slots = 0
    for res in _node_resources():
        fit = math.floor(res.get("CPU", 0) / cpus_per_trial + 1e-9)
        if gpus_per_trial:
            fit = min(fit, math.floor(res.get("GPU", 0) / gpus_per_trial + 1e-9))
        slots += fit
    return max(1, slots)


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


def _write_marker(session: str) -> None:
    ident = process_id(os.getpid())
    if ident:
        marker = {"driver_pid": ident[0], "driver_started": ident[1], "argv": sys.argv[:3]}
        Path(session, MARKER).write_text(json.dumps(marker))


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


