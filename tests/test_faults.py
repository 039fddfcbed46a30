"""Faults around Ray itself: leftover processes after a killed driver, resource requests no node
can hold, errors found before Ray starts, and restoring a sweep others could have changed."""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from hal.core.errors import HalError
from hal.sweep.ray_session import check_resources
from hal.sweep.reaper import MARKER, reap_dead_sessions, reap_session, session_processes

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "sweeps" / "eps_k_grid.py"
# Rounds slow enough (HAL_TEST_ROUND_SLEEP_S) that the sweep is surely killed mid-way.
SLOW_RUN = dict(dataset="synthetic", synthetic_size=600, synthetic_classes=3, learner="tfidf",
                initial_size=20, rounds=12, epochs=1, tfidf_max_features=500)
RAY_LINES = ("Started a local Ray instance", "authentication", "INFO worker.py")


def _config(tmp_path: Path, name: str) -> Path:
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump({
        "name": name, "run": SLOW_RUN,
        "grid": {"strategies": ["retrain"], "query_size": [10], "seed": [0]},
        "resources": {"cpus_per_trial": 1}}))
    return config


def _cli(*args, timeout=240, env=None):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})


def _ray_root() -> Path:
    from ray._common.utils import get_default_ray_temp_dir

    return Path(get_default_ray_temp_dir())


def _start_sweep(tmp_path: Path, name: str) -> tuple[subprocess.Popen, Path]:
    """The sweep script in the background; returns once a trial has written a round, with the
    driver's Ray session directory."""
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--config", str(_config(tmp_path, name)), "--storage-path", str(tmp_path)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "HAL_TEST_ROUND_SLEEP_S": "1"})
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        if list((tmp_path / name).glob("*/records.jsonl")):
            break
        time.sleep(0.5)
    assert proc.poll() is None, "the sweep ended before it could be killed"
    (session,) = _ray_root().glob(f"session_*_{proc.pid}")
    return proc, session


def _loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    return address.is_loopback or bool(getattr(address, "ipv4_mapped", None) and address.ipv4_mapped.is_loopback)


def _gone(session: Path, within_s: float) -> list:
    deadline = time.time() + within_s
    while True:
        left = session_processes([str(session)])
        if not left or time.time() > deadline:
            return left
        time.sleep(0.5)


def _watchdog(driver_pid: int) -> psutil.Process:
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        if "hal.sweep.reaper" in cmd and "watch" in cmd and str(driver_pid) in cmd:
            return proc
    raise AssertionError(f"no watchdog for driver {driver_pid}")


@pytest.mark.slow
def test_sigkilled_sweep_leaves_no_ray_process(tmp_path):
    proc, session = _start_sweep(tmp_path, "killed")
    try:
        procs = session_processes([str(session)])
        names = {p.name() for p in procs}
        assert {"raylet", "gcs_server"} <= names, names  # the session's processes are found
        # a local Ray of a sweep listens on loopback only
        listening = {(p.name(), c.laddr.ip) for p in procs for c in p.net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN}
        assert listening and all(_loopback(ip) for _, ip in listening), listening
        proc.send_signal(signal.SIGKILL)  # the driver alone, as `kill -9 PID` does
        proc.wait(timeout=30)
        # Without the watchdog ray::DashboardAgent and ray::RuntimeEnvAgent live on ~90 s.
        left = _gone(session, within_s=20)
        assert not left, [(p.pid, p.name()) for p in left]
    finally:
        if proc.poll() is None:
            proc.kill()
        reap_session(str(session))


@pytest.mark.slow
def test_next_start_ends_leftovers_and_refuses_unsatisfiable_gpus(tmp_path):
    """Driver and watchdog both SIGKILLed: the next local start ends what is left of that session.
    That start asks for GPUs this machine lacks: one line, exit 2, no sweep folder."""
    proc, session = _start_sweep(tmp_path, "first")
    try:
        _watchdog(proc.pid).kill()
        proc.kill()
        proc.wait(timeout=30)
        time.sleep(2)
        assert session_processes([str(session)]), "Ray's agents should outlive a driver with no watchdog"
        out = _cli("--config", str(_config(tmp_path, "second")), "--storage-path", str(tmp_path),
                   "--gpus-per-trial", "0.3")
        assert out.returncode == 2, out.stderr[-2000:]
        errors = [line for line in out.stderr.splitlines() if "error:" in line]
        assert len(errors) == 1 and "no node of the Ray cluster can run a trial" in errors[0], out.stderr
        assert [line for line in out.stderr.splitlines() if line.strip()] == errors  # Ray's start-up lines: none
        assert "0.3 GPU" in errors[0] and "--gpus-per-trial" in errors[0]
        assert "Traceback" not in out.stderr
        assert not (tmp_path / "second").exists()  # nothing that blocks reusing the name
        left = _gone(session, within_s=10)
        assert not left, [(p.pid, p.name()) for p in left]
    finally:
        if proc.poll() is None:
            proc.kill()
        reap_session(str(session))


def test_reap_dead_sessions_touches_only_sessions_of_dead_hal_drivers(tmp_path):
    """Stand-in sessions: processes naming a session dir, as raylet and gcs_server do."""
    dead_driver = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_driver.wait()
    dead_started = time.time() - 5  # whatever it was: the pid is gone

    def session(name: str, marker: dict | None) -> tuple[Path, subprocess.Popen]:
        path = tmp_path / f"session_2026-01-01_00-00-00_000000_{name}"
        path.mkdir()
        if marker is not None:
            import json

            (path / MARKER).write_text(json.dumps(marker))
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", f"{path}/logs"])
        return path, child

    me = psutil.Process()
    dead, dead_child = session("1", {"driver_pid": dead_driver.pid, "driver_started": dead_started})
    live, live_child = session("2", {"driver_pid": me.pid, "driver_started": me.create_time()})
    other, other_child = session("3", None)  # a Ray HAL did not start: never ours
    try:
        assert reap_dead_sessions(str(tmp_path)) == 1
        assert dead_child.wait(timeout=10) is not None
        assert live_child.poll() is None and other_child.poll() is None
        assert reap_dead_sessions(str(tmp_path)) == 0  # reaped once, marked
    finally:
        for child in (dead_child, live_child, other_child):
            child.kill()
            child.wait()


# --------------------------------------------------------------------------- resources


@pytest.fixture
def nodes(monkeypatch):
    """Fake cluster nodes for ``check_resources`` (a list to fill)."""
    import hal.sweep.ray_session as rs

    state: list[dict] = []
    monkeypatch.setattr(rs, "_node_resources", lambda: list(state))
    monkeypatch.delenv(rs.AUTOSCALING_ENV, raising=False)
    return state


def test_resource_request_no_node_can_hold_is_one_clear_error(nodes):
    nodes[:] = [{"CPU": 2.0}]
    assert check_resources(1, 0)
    with pytest.raises(HalError, match=r"0\.3 GPU.*has 2 CPU, 0 GPU: lower --gpus-per-trial"):
        check_resources(1, 0.3, autoscaling=False)
    with pytest.raises(HalError, match=r"each asks for 4 CPU.*lower --cpus-per-trial"):
        check_resources(4, 0, autoscaling=False)
    nodes[:] = [{"CPU": 2.0}, {"CPU": 2.0}]  # 4 CPUs in all, but a trial runs on one node
    with pytest.raises(HalError, match=r"2 nodes, the largest 2 CPU"):
        check_resources(3, 0, autoscaling=False)
    nodes[:] = [{"CPU": 8.0, "GPU": 1.0}]
    assert check_resources(2, 0.25, autoscaling=False)


def test_autoscaling_cluster_says_what_is_pending_until_a_node_fits(nodes, monkeypatch, capsys):
    nodes[:] = [{"CPU": 2.0}]
    monkeypatch.setenv("HAL_AUTOSCALING", "1")
    assert check_resources(1, 1, every_s=0.2) is False
    time.sleep(0.5)
    nodes.append({"CPU": 4.0, "GPU": 1.0})
    time.sleep(0.5)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("waiting for resources: each trial asks for 1 CPU + 1 GPU")
    assert any(line.startswith("still waiting") for line in out)
    assert out[-1].startswith("resources arrived")


# --------------------------------------------------------------------------- validate first


def test_errors_found_before_ray_come_before_any_ray_line(tmp_path):
    config = _config(tmp_path, "exists")
    (tmp_path / "exists").mkdir()
    (tmp_path / "exists" / "notes.txt").write_text("not a sweep")  # (an empty folder would be used)
    for args, phrase in [((), "already exists"), (("--resume", "--name", "nosuch"), "is not a HAL sweep")]:
        out = _cli("--config", str(config), "--storage-path", str(tmp_path), *args, timeout=120)
        assert out.returncode == 2 and phrase in out.stderr, out.stderr
        assert not any(marker in out.stdout + out.stderr for marker in RAY_LINES), out.stderr


# --------------------------------------------------------------------------- resume reads no pickle


class _Trap:
    """Unpickled, it would run a command: what a hostile sweep folder could hold."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_resume_never_unpickles_what_the_sweep_folder_holds(tmp_path):
    """--resume rebuilds from the manifest (JSON) and the trial folders: Tune's pickles in the
    folder (a copy from someone else's archive, say) are never loaded, and the sweep finishes."""
    import pickle

    config = _config(tmp_path, "sw")
    first = _cli("--config", str(config), "--storage-path", str(tmp_path), env={"HAL_TEST_ROUND_SLEEP_S": "0"})
    assert first.returncode == 0, first.stderr[-2000:]
    sweep = tmp_path / "sw"
    marker = tmp_path / "pwned"
    for name in ("tuner.pkl", "searcher-state-2026-01-01_00-00-00.pkl"):
        (sweep / name).write_bytes(pickle.dumps(_Trap(marker)))
    (trial,) = [p.parent for p in sweep.glob("*/summary.json")]
    (trial / "summary.json").unlink()  # work left for the resumed sweep
    out = _cli("--config", str(config), "--storage-path", str(tmp_path), "--resume", env={"HAL_TEST_ROUND_SLEEP_S": "0"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert not marker.exists(), "--resume unpickled a file of the sweep folder"
    assert (trial / "summary.json").is_file() and "1 of 1 configurations finished" in out.stdout


def test_resume_of_an_unwritable_sweep_is_one_line_before_ray(tmp_path):
    config = _config(tmp_path, "sw")
    first = _cli("--config", str(config), "--storage-path", str(tmp_path), env={"HAL_TEST_ROUND_SLEEP_S": "0"})
    assert first.returncode == 0, first.stderr[-2000:]
    prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"] if os.geteuid() == 0 else []
    if prefix and shutil.which("setpriv") is None:
        pytest.skip("running as root and setpriv is missing: cannot test permission denial")
    (tmp_path / "sw").chmod(0o555)
    try:
        out = subprocess.run([*prefix, sys.executable, str(SCRIPT), "--config", str(config), "--storage-path",
                              str(tmp_path), "--resume"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    finally:
        (tmp_path / "sw").chmod(0o755)
    assert out.returncode == 2, out.stderr
    (line,) = [line for line in out.stderr.splitlines() if line.strip()]
    assert "sweep folder" in line and "permission denied" in line
    assert not any(marker in out.stdout + out.stderr for marker in RAY_LINES)
