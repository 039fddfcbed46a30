"""Fractional GPUs: --gpus-per-trial 0.25 packs four trials on one GPU (a logical GPU here, so the
check runs on CPU-only machines; the learners themselves run on the CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def ray_with_one_gpu():
    import ray

    ray.init(num_cpus=8, num_gpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_quarter_gpu_trials_run_four_at_a_time(ray_with_one_gpu, tmp_path):
    from hal.sweep.spec import SweepSpec, trial_overrides
    from hal.sweep.tuners import grid_tuner, prepare_shared

    spec = SweepSpec(name="packed", storage_path=str(tmp_path), strategies=["retrain"],
                           query_size=[10], seed=list(range(8)), cpus_per_trial=1, gpus_per_trial=0.25,
                           run=dict(dataset="synthetic", synthetic_size=2000, learner="tfidf", device="cpu",
                                    initial_size=40, rounds=8, epochs=5)).validate()
    runs = trial_overrides(spec)
    results = grid_tuner(spec, runs, prepare_shared(runs)).fit()
    assert not results.errors
    summaries = [json.loads(p.read_text()) for p in Path(tmp_path, "packed").glob("*/summary.json")]
    assert len(summaries) == 8
    assert all(s["resources"] == {"CPU": 1.0, "GPU": 0.25} for s in summaries)
    events = sorted([(s["started_at"], 1) for s in summaries] + [(s["finished_at"], -1) for s in summaries])
    running, most = 0, 0
    for _, change in events:
        running += change
        most = max(most, running)
    assert most == 4  # 8 CPUs would allow 8; the quarter GPUs allow exactly 4 at once
