"""Fault 5, losing a node: a real two-node Ray cluster on this machine (a head and a worker, each
started with ``ray start`` and its own temp dir), the sweep joining it with ``--address``, the
worker node killed mid-sweep. Its trial must be retried on the head from its last round
checkpoint: every round exactly once in records.jsonl, and no round reported twice to Tune (a
restart from round 0 would report rounds 0.. again). The recipe is docs/cluster.md."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from hal.sweep.reaper import reap_session, session_processes

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "sweeps" / "eps_k_grid.py"
ROUNDS = 16  # slow rounds (HAL_TEST_ROUND_SLEEP_S) leave a wide window to kill the node in
RUN = dict(dataset="synthetic", synthetic_size=600, synthetic_classes=3, learner="tfidf",
           initial_size=20, rounds=ROUNDS, epochs=1, tfidf_max_features=500)
RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sessions(temp_dir: Path) -> list[str]:
    return [str(p) for p in temp_dir.glob("session_2*") if p.is_dir() and not p.is_symlink()]


def _name(proc) -> str:
    try:
        return proc.name()
    except Exception:  # noqa: BLE001 - gone meanwhile
        return ""


def _records(trial_dir: Path) -> list[dict]:
    path = trial_dir / "records.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _results(trial_dir: Path) -> list[dict]:
    path = trial_dir / "result.json"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


@pytest.fixture
def cluster():
    """A head and a worker node of 1 CPU each; always torn down (only these nodes' processes:
    `ray stop` would end every Ray on the machine)."""
    base = Path(tempfile.mkdtemp(prefix="halc", dir="/tmp"))  # short: Ray's unix sockets live here
    head, worker = base / "h", base / "w"
    port = _free_port()
    # Ray 2.60 turns on token authentication for a local head; a node joining it needs
    # RAY_AUTH_MODE=token too, and so does the driver. The token is the test's own: on a fresh
    # machine ~/.ray/auth_token does not exist yet and `ray start` would refuse to start.
    env = {**os.environ, "HAL_TEST_ROUND_SLEEP_S": "1", "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": secrets.token_hex(32),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("RAY_ADDRESS", None)
    try:
        subprocess.run([RAY, "start", "--head", "--port", str(port), "--num-cpus", "1", "--num-gpus", "0",
                        "--temp-dir", str(head), "--include-dashboard", "false", "--disable-usage-stats"],
                       check=True, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
        subprocess.run([RAY, "start", "--address", f"127.0.0.1:{port}", "--num-cpus", "1", "--num-gpus", "0",
                        "--temp-dir", str(worker), "--disable-usage-stats"],
                       check=True, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
        yield {"address": f"127.0.0.1:{port}", "head": head, "worker": worker, "env": env}
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"ray start failed: {exc.stderr[-2000:]}")
    finally:
        for temp_dir in (worker, head):
            reap_session(_sessions(temp_dir), grace_s=5)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow
def test_losing_a_worker_node_loses_no_round(cluster, tmp_path):
    config = tmp_path / "node.yaml"
    config.write_text(yaml.safe_dump({
        "name": "node", "run": RUN, "grid": {"strategies": ["retrain"], "query_size": [10], "seed": [0, 1]},
        "resources": {"cpus_per_trial": 1}, "max_failures": 2}))
    storage = tmp_path / "results"  # both nodes reach it: the same machine
    env = {**cluster["env"], "RAY_ADDRESS": ""}
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "--config", str(config), "--address", cluster["address"],
                             "--storage-path", str(storage)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        experiment = storage / "node"
        worker_sessions = _sessions(cluster["worker"])
        assert worker_sessions, "the worker node did not start"
        # Wait until each node runs a trial with a few rounds done, then lose the worker node.
        deadline, rounds_at_kill = time.time() + 180, {}
        while time.time() < deadline and proc.poll() is None:
            on_worker = {p.pid for p in session_processes(worker_sessions) if "ImplicitFunc" in _name(p)}
            # the trial on the worker node: its rounds are reported from a process there
            there = [d for d in experiment.glob("*") if d.is_dir() and _results(d)
                     and _results(d)[-1]["pid"] in on_worker]
            if there and 2 <= len(_records(there[0])) < ROUNDS - 2:
                rounds_at_kill = {d.name: len(_records(d)) for d in experiment.glob("*") if d.is_dir()}
                break
            time.sleep(0.3)
        if not rounds_at_kill:
            proc.kill()
            pytest.fail("a trial should have been running on the worker node; the sweep said:\n"
                        + proc.communicate()[0][-3000:])
        for p in session_processes(worker_sessions):  # the whole node: raylet, workers, agents
            try:
                p.send_signal(signal.SIGKILL)
            except Exception:  # noqa: BLE001 - already gone
                pass
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, output[-3000:]

        dirs = sorted(d for d in experiment.glob("*") if d.is_dir() and (d / "params.json").exists())
        assert len(dirs) == 2, dirs
        retried = []
        for trial_dir in dirs:
            assert [r["round"] for r in _records(trial_dir)] == list(range(ROUNDS)), trial_dir.name
            results = _results(trial_dir)
            reported = [r["round"] for r in results]
            # No round reported twice (a restart from round 0 would repeat 0..). The round in flight
            # when the node died may be missing from Tune's history (its checkpoint and records were
            # written before the report that died with the node); HAL's records have it.
            assert reported == sorted(set(reported)) and reported[-1] == ROUNDS - 1, \
                f"{trial_dir.name}: Tune saw rounds {reported}"
            pids = [r["pid"] for r in results]
            if len(set(pids)) > 1:  # ran in two worker processes: the one on the lost node, then one more
                first_after = next(r["round"] for r in results if r["pid"] != pids[0])
                retried.append((trial_dir.name, first_after))
        assert len(retried) == 1, f"exactly the worker node's trial should have been retried: {retried}"
        name, first_after = retried[0]
        # It went on from its last checkpoint, not from round 0.
        assert first_after >= rounds_at_kill[name] - 1 >= 1, (first_after, rounds_at_kill)
        assert (experiment / name / "error.txt").exists()  # Tune saw it fail
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
