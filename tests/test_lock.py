"""One writer per run folder (``hal.runs.lock``): a second ``hal run`` on a held ``--out`` gets one
line naming the holder, a lock whose holder died is taken over, and the lock is gone when the run
ends, however it ends."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hal.core.errors import HalError
from hal.runs import cli, lock
from hal.runs.lock import LOCK_FILE, folder_lock, read_holder

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--dataset", "synthetic", "--synthetic-size", "600", "--learner", "tfidf", "--initial-size", "30",
        "--query-size", "10", "--rounds", "3", "--epochs", "1", "--quiet"]
HOLD = ("import sys; from hal.runs.lock import folder_lock\n"
        "with folder_lock(sys.argv[1], what=sys.argv[2]):\n"
        "    print('held', flush=True); sys.stdin.read()\n")


def run_cli(capsys, *args: str) -> tuple[int, str]:
    code = cli.main(["run", *args])
    return code, capsys.readouterr().err


def hold_in_another_process(folder: Path, what: str = "run") -> subprocess.Popen:
    """A process that holds ``folder``'s lock until its stdin closes (or it is killed)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), what], cwd=ROOT, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == "held"
    return proc


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def write_lock_file(folder: Path, pid: int, host: str | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LOCK_FILE).write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(),
                                                "started": time.time() - 60, "what": "run",
                                                "command": "python -m hal run"}))


def test_second_run_on_a_locked_out_fails_with_one_line_naming_the_pid(capsys, tmp_path):
    out = tmp_path / "run"
    holder = hold_in_another_process(out)
    try:
        code, err = run_cli(capsys, *FAST, "--out", str(out))
        resumed, err_resume = run_cli(capsys, *FAST, "--out", str(out), "--resume")
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    for code, err in ((code, err), (resumed, err_resume)):
        assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert f"PID {holder.pid} on host {socket.gethostname()}" in err and "in use by another run" in err
        assert "--out" in err
    assert sorted(p.name for p in out.iterdir()) == []  # the refused runs wrote nothing
    assert run_cli(capsys, *FAST, "--out", str(out))[0] == 0  # released: the folder is free again
    assert not (out / LOCK_FILE).exists()


def test_lock_of_a_killed_holder_is_taken_over(tmp_path):
    folder = tmp_path / "sweep"
    holder = hold_in_another_process(folder, what="sweep")
    with pytest.raises(HalError, match=f"in use by another sweep, PID {holder.pid}"):
        with folder_lock(folder, what="sweep"):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    assert read_holder(folder).pid == holder.pid  # kill -9 leaves the file, not the lock
    with folder_lock(folder, what="sweep") as held:
        assert held.took_over.pid == holder.pid and held.holder.pid == os.getpid()
        assert read_holder(folder).pid == os.getpid()
    assert not (folder / LOCK_FILE).exists()


def test_stale_lock_from_a_dead_pid_is_taken_over_by_a_run(capsys, tmp_path):
    out = tmp_path / "run"
    write_lock_file(out, dead_pid())
    code, err = run_cli(capsys, *FAST, "--out", str(out))
    assert code == 0, err
    assert (out / "summary.json").exists() and not (out / LOCK_FILE).exists()


def test_lock_is_gone_after_a_failure(capsys, tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert run_cli(capsys, *FAST, "--out", str(out))[0] == 0
    code, err = run_cli(capsys, *FAST, "--out", str(out))  # refused inside the lock
    assert code == 2 and "--restart" in err
    assert not (out / LOCK_FILE).exists() and (out / "summary.json").exists()

    def boom(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_run", boom)  # Ctrl+C mid-run
    assert run_cli(capsys, *FAST, "--out", str(tmp_path / "new"))[0] == 130
    assert not (tmp_path / "new").exists()  # nothing left behind, the lock file included
    assert run_cli(capsys, *FAST, "--out", str(out), "--restart")[0] == 130
    assert not (out / LOCK_FILE).exists()


@pytest.fixture
def no_flock(monkeypatch):
    """A file system that refuses flock (NFS without a lock daemon, some FUSE mounts)."""
    def refuse(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")
    monkeypatch.setattr(lock.fcntl, "flock", refuse)


def test_without_flock_the_named_holder_decides(no_flock, tmp_path):
    folder = tmp_path / "run"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_lock_file(folder, sleeper.pid)
        with pytest.raises(HalError, match=f"in use by another run, PID {sleeper.pid}"):
            lock.acquire(folder)
    finally:
        sleeper.kill()
        sleeper.wait()
    write_lock_file(folder, 4242, host="elsewhere")
    with pytest.raises(HalError, match=f"PID 4242 on host elsewhere.*cannot tell.*delete {folder}/"):
        lock.acquire(folder)
    write_lock_file(folder, dead_pid())
    with folder_lock(folder) as held:
        assert held.took_over is not None and read_holder(folder).pid == os.getpid()
    assert not (folder / LOCK_FILE).exists()
