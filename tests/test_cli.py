"""``python -m hal run``: the one-run CLI, its outputs and its one-line errors (exit code 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--dataset", "synthetic", "--synthetic-size", "600", "--learner", "tfidf", "--initial-size", "30",
        "--query-size", "10", "--rounds", "5", "--epochs", "2"]


def hal(*args, timeout=300):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "hal", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


def test_run_writes_records_summary_and_prints_a_line_per_round(tmp_path):
    out = tmp_path / "run"
    done = hal("run", *FAST, "--strategy", "hybrid", "--epsilon", "0.05", "--k", "1", "--out", str(out))
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("round ")]
    assert len(lines) == 5 and "val F1" in lines[0] and "ΔF1" in lines[0] and "cum" in lines[0]
    records = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    assert [r["round"] for r in records] == list(range(5))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"] == "synthetic" and summary["synthetic"] is True
    assert summary["config"]["strategy"] == "hybrid"
    assert any(p.name.startswith("events.out.tfevents") for p in out.iterdir())


def test_config_file_and_flags_merge(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("dataset: synthetic\nsynthetic_size: 600\nrounds: 3\ninitial_size: 30\n"
                      "query_size: 10\nepochs: 1\nstrategy: retrain\n")
    out = tmp_path / "run"
    done = hal("run", "--config", str(config), "--rounds", "2", "--out", str(out))
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rounds"] == 2 and summary["config"]["strategy"] == "retrain"


def test_resume_after_ctrl_c_gives_the_same_records(tmp_path):
    import signal
    import time

    args = [*FAST[:-4], "--rounds", "12", "--epochs", "4"]
    full, part = tmp_path / "full", tmp_path / "part"
    assert hal("run", *args, "--out", str(full)).returncode == 0
    proc = subprocess.Popen([sys.executable, "-m", "hal", "run", *args, "--out", str(part)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    records = part / "records.jsonl"
    while proc.poll() is None and (not records.exists() or len(records.read_text().splitlines()) < 3):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, "the run should have been interrupted part-way"
    assert "--resume" in err and "Traceback" not in err
    assert not (part / "summary.json").exists()

    refused = hal("run", *args, "--out", str(part))
    assert refused.returncode == 2 and "pass --resume" in refused.stderr
    other = hal("run", *args, "--seed", "9", "--out", str(part), "--resume")
    assert other.returncode == 2 and "different config (seed)" in other.stderr
    done = hal("run", *args, "--out", str(part), "--resume")
    assert done.returncode == 0, done.stderr
    assert "(restored)" in done.stdout
    timing = {"train_time_s", "cum_train_time_s", "query_time_s", "eval_time_s"}

    def load(path):
        return [{k: v for k, v in json.loads(x).items() if k not in timing}
                for x in (path / "records.jsonl").read_text().splitlines()]

    assert load(part) == load(full)


def _bad_dir(tmp_path, frame: pd.DataFrame, name="bad") -> str:
    d = tmp_path / name
    d.mkdir()
    frame.to_parquet(d / "train.parquet")
    frame.head(20).to_parquet(d / "test.parquet")
    return str(d)


@pytest.mark.parametrize("args, phrase", [
    (["--epsilon", "-0.1"], "epsilon must be in [0, 1]"),
    (["--k", "0"], "k must be in [1,"),
    (["--query-size", "0"], "query_size must be in [1,"),
    (["--initial-size", "100000"], "larger than the pool"),
    (["--initial-size", "2", "--synthetic-classes", "4"], "smaller than the number of classes"),
    (["--dataset", "no_such_dataset"], "no_such_dataset"),
    (["--learner", "svm"], "unknown learner 'svm'"),
    (["--strategy", "sometimes"], "unknown strategy 'sometimes'"),
    (["--query-strategy", "qbc"], "unknown query_strategy 'qbc'"),
    (["--query-strategy", "bald"], "--query-strategy bald samples predictions with dropout, and --head adamw has none"),
    (["--query-strategy", "breaking_ties"], "'breaking_ties' is HAL's 'margin'"),
    (["--dropout", "0.1", "--head", "lbfgs"], "--dropout does not apply to --head lbfgs"),
    (["--k", "two"], "expects an integer"),
    (["--config", "/nonexistent.yaml"], "does not exist"),
    (["--config", "/"], "is a directory, not a file"),
    (["--lr", "inf"], "lr must be a finite number"),
    (["--seed", "-1"], "seed must be in [0,"),
    (["--data-seed", "-1"], "data_seed must be in [0,"),
    (["--resume", "--restart"], "exclude each other"),
    (["--frobnicate", "1"], "unrecognized arguments"),
])
def test_bad_values_exit_2_with_one_line(args, phrase, tmp_path):
    done = hal("run", *FAST, *args, "--out", str(tmp_path / "x"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert phrase in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "x" / "summary.json").exists()


def test_bad_data_exit_2(tmp_path):
    good = pd.DataFrame({"text": [f"doc {i} about {'cats' if i % 2 else 'dogs'}" for i in range(200)],
                         "label": [i % 2 for i in range(200)]})
    cases = [
        (good.drop(columns="label"), "label"),
        (good.assign(text=[""] + list(good.text[1:])), "empty"),
        (good.assign(label=[None] + list(good.label[1:])), "label"),
    ]
    for i, (frame, phrase) in enumerate(cases):
        d = _bad_dir(tmp_path, frame, f"bad{i}")
        done = hal("run", "--dataset", d, "--initial-size", "10", "--rounds", "2", "--query-size", "5",
                   "--out", str(tmp_path / f"out{i}"))
        assert done.returncode == 2, done.stderr
        assert phrase in done.stderr.lower() and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        assert not (tmp_path / f"out{i}").exists()  # nothing left behind
    d = _bad_dir(tmp_path, good, "goodcols")
    done = hal("run", "--dataset", d, "--text-column", "body", "--out", str(tmp_path / "o"))
    assert done.returncode == 2 and "body" in done.stderr


def test_unwritable_out_and_existing_results(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = hal("run", *FAST, "--out", str(blocker / "sub"))
    assert done.returncode == 2 and "--out" in done.stderr and "Traceback" not in done.stderr
    out = tmp_path / "run"
    assert hal("run", *FAST, "--out", str(out)).returncode == 0
    again = hal("run", *FAST, "--out", str(out))
    assert again.returncode == 2 and "already holds a finished run" in again.stderr
    assert "--restart" in again.stderr
    first = (out / "records.jsonl").read_text()
    redone = hal("run", *FAST, "--seed", "5", "--out", str(out), "--restart")  # discards the finished run
    assert redone.returncode == 0, redone.stderr
    assert json.loads((out / "summary.json").read_text())["seed"] == 5
    assert (out / "records.jsonl").read_text() != first
    assert len([p for p in out.iterdir() if p.name.startswith("events.out.tfevents")]) == 1


def test_without_torch_one_line_names_the_install_commands(capsys, monkeypatch, tmp_path):
    from hal.core import requirements
    from hal.runs.cli import main

    monkeypatch.setattr(requirements, "torch_installed", lambda: False)
    code = main(["run", *FAST, "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in err
    assert not (tmp_path / "x").exists()
