"""Sweeps on an object store: a real S3-compatible server (moto) on 127.0.0.1, a shared-prefix
sweep on ``s3://`` killed part-way and resumed, every configuration complete and equal to an
independent run on local disk. And the storage layer itself, on a folder and on S3."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from hal.core.config import make_config
from hal.runs.build import new_loop
from hal.sweep.plan import PLAN_FILE, TrialPlan
from hal.sweep.storage import open_storage

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "sweeps" / "eps_k_grid.py"
RUN = dict(dataset="synthetic", synthetic_size=1200, synthetic_classes=3, learner="tfidf", initial_size=40,
           rounds=10, epochs=5, tfidf_max_features=2000)
TIMING = {"train_time_s", "cum_train_time_s", "query_time_s", "eval_time_s"}


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto S3 server on 127.0.0.1 with a bucket ``hal``; the AWS settings that reach it."""
    import boto3
    from moto import server as moto_server

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}
    client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    client.create_bucket(Bucket="hal")
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield {"env": env, "client": client}
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    server.stop()


@pytest.mark.parametrize("where", ["local", "s3"])
def test_storage_writes_reads_lists_and_deletes(tmp_path, s3, where):
    uri = str(tmp_path / "st") if where == "local" else "s3://hal/unit"
    storage = open_storage(uri)
    storage.write_text(storage.path("a", "b.json"), '{"x": 1}')
    storage.save_torch(storage.path("a", "fork_0001", "checkpoint.pt"), {"w": [1, 2]})
    assert json.loads(storage.read_text(storage.path("a", "b.json"))) == {"x": 1}
    assert storage.load_torch(storage.path("a", "fork_0001", "checkpoint.pt")) == {"w": [1, 2]}
    assert storage.list_dir(storage.path("a")) == ["b.json", "fork_0001"]
    storage.delete_dir(storage.path("a", "fork_0001"))
    assert storage.list_dir(storage.path("a")) == ["b.json"] and not storage.exists(storage.path("a", "fork_0001"))
    assert storage.list_dir(storage.path("nothing")) == []


def _keys(client, prefix: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket="hal", Prefix=prefix)
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


def _records(text: str) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in text.splitlines() if line]


@pytest.mark.slow
def test_shared_sweep_on_s3_survives_a_kill_and_resumes(tmp_path, s3):
    config = tmp_path / "s3.yaml"
    config.write_text(yaml.safe_dump({
        "name": "ons3", "run": RUN,
        "grid": {"strategies": ["hybrid", "retrain"], "epsilon": [0.005, 0.05], "k": [1, 2],
                 "query_size": [20], "seed": [0, 1]},
        "resources": {"cpus_per_trial": 1, "max_concurrent": 2}}))
    env = {**os.environ, **s3["env"], "HAL_TEST_ROUND_SLEEP_S": "0.1"}
    args = [sys.executable, str(SCRIPT), "--config", str(config), "--storage-path", "s3://hal/results"]
    client = s3["client"]
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if len([k for k in _keys(client, "results/ons3/") if k.endswith("summary.json")]) >= 2:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    finished = [k for k in _keys(client, "results/ons3/") if k.endswith("summary.json")]
    assert 2 <= len(finished) < 10, "the sweep should have been killed part-way"

    done = subprocess.run([*args, "--resume"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "10 of 10 configurations finished" in done.stdout
    # Each configuration's records equal an independent run of it (in-process: the loop is
    # what a trial runs; a third sweep would only add Ray's start-up).
    names = {k.split("/")[2] for k in _keys(client, "results/ons3/") if k.endswith("/summary.json")}
    assert len(names) == 10
    for name in sorted(names):
        def read(file: str) -> str:
            return client.get_object(Bucket="hal", Key=f"results/ons3/{name}/{file}")["Body"].read().decode()

        plan = TrialPlan.from_config(json.loads(read(PLAN_FILE)))
        loop = new_loop(make_config(plan.run).resolved())
        alone = "\n".join(json.dumps(record.to_dict()) for record in loop)
        assert _records(read("records.jsonl")) == _records(alone), name
        tune_rows = read("result.json")
        assert [json.loads(line)["round"] for line in tune_rows.splitlines()] == list(range(RUN["rounds"]))
    summary = json.loads(client.get_object(Bucket="hal", Key="results/ons3/sweep_summary.json")["Body"].read())
    assert summary["missing"] == [] and summary["configurations"] == 10
    assert not [k for k in _keys(client, "results/ons3/_prefix/") if "fork_" in k], "forks left behind"
