"""Do trials keep a cluster busy? A shared-prefix grid of ~100 short configurations on a Ray cluster
with many logical CPUs (one machine: ``ray start --head --num-cpus 32``), sampling every 0.25 s how
many trials run. Reports the share of trial slots busy from the moment the first trajectory
reported a round (tails can start) until the last trial of the sweep started, and over the whole
run; slots are CPUs / CPUs per trial. Rounds sleep ``--round-sleep`` seconds so that trials last
long enough to be counted on a 2-core machine (the sleep stands for real training).

    python bench/scheduling.py                      # 32 logical CPUs, 112 configurations
    python bench/scheduling.py --cpus 16 --round-sleep 0.5
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RUN = dict(dataset="synthetic", synthetic_size=1200, synthetic_classes=3, learner="tfidf", initial_size=40,
           rounds=8, epochs=2, tfidf_max_features=2000)
# 112 configurations in 16 shared-prefix groups: 16 trajectories and 32 baselines to start with,
# more than the slots, then the tails as the trajectories report (copies train nothing).
GRID = dict(strategies=["hybrid", "retrain", "finetune", "new_only"], epsilon=[0.01, 0.05], k=[1, 2],
            query_size=[10, 20], seed=list(range(8)))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpus", type=int, default=32, help="logical CPUs of the one-node cluster")
    parser.add_argument("--round-sleep", type=float, default=1.0, help="seconds each round sleeps")
    args = parser.parse_args()
    os.environ["HAL_TEST_ROUND_SLEEP_S"] = str(args.round_sleep)
    base = Path(tempfile.mkdtemp(prefix="halsch", dir="/tmp"))
    port = _free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
           "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(REPO)}
    os.environ.update({k: env[k] for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")})
    subprocess.run([shutil.which("ray"), "start", "--head", "--port", str(port), "--num-cpus", str(args.cpus),
                    "--num-gpus", "0", "--temp-dir", str(base / "ray"), "--include-dashboard", "false",
                    "--disable-usage-stats"], check=True, env=env, capture_output=True)
    try:
        from ray import tune

        from hal.sweep.spec import SweepSpec, trial_overrides
        from hal.sweep.tuners import grid_tuner, init_ray, prepare_shared

        class Occupancy(tune.Callback):
            """How many trials run (read by a sampling thread); when trials start and tails can start."""

            def __init__(self) -> None:
                self.samples: list[tuple[float, int]] = []
                self.first_report: float | None = None
                self.starts: list[float] = []
                self.running = 0

            def on_trial_start(self, iteration, trials, trial, **info):
                self.starts.append(time.time())
                self.running = sum(t.status == "RUNNING" for t in trials)

            def on_trial_result(self, iteration, trials, trial, result, **info):
                if self.first_report is None and "prefix_switches" in result:
                    self.first_report = time.time()

            def on_step_begin(self, iteration, trials, **info):
                self.running = sum(t.status == "RUNNING" for t in trials)

        spec = SweepSpec(name="sched", run=dict(RUN), storage_path=str(base / "results"), **GRID).validate()
        runs = trial_overrides(spec)
        shared = prepare_shared(runs)
        init_ray(f"127.0.0.1:{port}")
        occupancy = Occupancy()
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                occupancy.samples.append((time.time(), occupancy.running))
                time.sleep(0.25)

        sampler = threading.Thread(target=sample, daemon=True)
        start = time.time()
        sampler.start()
        results = grid_tuner(spec, runs, shared, share_prefix=True, callbacks=[occupancy]).fit()
        stop.set()
        wall = time.time() - start
        slots = args.cpus  # 1 CPU per trial
        last_start = max(occupancy.starts)

        def busy(t0: float, t1: float) -> float:
            window = [n for t, n in occupancy.samples if t0 <= t <= t1]
            return sum(window) / (len(window) * slots) if window else float("nan")

        print(f"{len(runs)} configurations, {len(results)} trials ({len(results.errors)} errored), {slots} slots, "
              f"rounds sleeping {args.round_sleep:g} s, wall {wall:.0f} s")
        print(f"slots busy from the first trajectory report to the last trial start: "
              f"{busy(occupancy.first_report or start, last_start):.0%}; over the whole run: {busy(start, time.time()):.0%}; "
              f"most trials at once: {max(n for _, n in occupancy.samples)}")
        print("running trials every 5 s: " + " ".join(str(n) for t, n in occupancy.samples[::20]))
        print(f"reproduce: python bench/scheduling.py --cpus {args.cpus} --round-sleep {args.round_sleep:g}")
    finally:
        import ray

        from hal.sweep.reaper import reap_session

        ray.shutdown()
        # only this cluster's processes (`ray stop` would end every Ray of the user)
        reap_session([str(s) for s in (base / "ray").glob("session_2*")], grace_s=5)
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
