"""What Ray Tune costs: the demo grid through Tune vs the same trials one after another in a bare
loop in one process (one torch thread each, as a 1-CPU trial gets).

Reports the wall times, the overhead ratio per trial-second of work
(Tune wall × CPUs ÷ bare-loop wall; 1.0 = no overhead), how busy the cores were during the Tune
run, and the peak resident memory of each (for Tune: driver + all Ray processes together).

    python bench/tune_overhead.py                       # the demo grid (48 trials)
    python bench/tune_overhead.py --max-trials 12       # a quicker look
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402  (installed with ray)


class Sampler:
    """Samples system CPU busy % and the RSS of this process tree in the background."""

    def __init__(self, period: float = 0.5) -> None:
        self.period, self.busy, self.peak_rss = period, [], 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> int:
        total = 0
        me = psutil.Process()
        procs = [me, *me.children(recursive=True)]
        # Ray's raylet and workers are not children of the driver when Ray runs them detached.
        procs += [p for p in psutil.process_iter(["name", "cmdline"])
                  if p.pid not in {q.pid for q in procs}
                  and any("ray" in part for part in (p.info.get("cmdline") or [])[:2])]
        for proc in procs:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        psutil.cpu_percent(None)
        while not self._stop.wait(self.period):
            self.busy.append(psutil.cpu_percent(None))
            self.peak_rss = max(self.peak_rss, self._rss())

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def bare_loop(runs: list[dict], shared: dict) -> float:
    import torch

    from hal.core.config import make_config
    from hal.data.inputs import prepare_key
    from hal.runs.build import new_loop

    torch.set_num_threads(1)
    start = time.perf_counter()
    for run in runs:
        cfg = make_config(run).resolved()
        loop = new_loop(cfg, shared[prepare_key(cfg)])
        for _ in loop:
            pass
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(REPO / "sweeps" / "configs" / "demo.yaml"))
    p.add_argument("--max-trials", type=int, default=0, help="only the first N trials (0 = all)")
    args = p.parse_args(argv)

    import ray

    from hal.sweep.spec import load_spec, trial_overrides
    from hal.sweep.tuners import grid_tuner, init_ray, prepare_shared

    spec = load_spec(args.config)
    runs = trial_overrides(spec)
    if args.max_trials:
        runs = runs[: args.max_trials]
    shared = prepare_shared(runs)
    cpus = psutil.cpu_count()

    with Sampler() as bare_stats:
        bare = bare_loop(runs, shared)
    with tempfile.TemporaryDirectory() as storage:
        spec.storage_path, spec.name = storage, "overhead"
        init_ray(None)
        with Sampler() as tune_stats:
            start = time.perf_counter()
            results = grid_tuner(spec, runs, shared).fit()
            tuned = time.perf_counter() - start
        ray.shutdown()
    assert not results.errors, results.errors

    ratio = tuned * cpus / bare
    print(f"\n{len(runs)} trials of {Path(args.config).name} on {cpus} CPUs ({spec.cpus_per_trial:g} CPU per trial)")
    print(f"{'':28s}{'wall s':>9s}{'cores busy':>12s}{'peak RSS':>11s}")
    print(f"{'bare loop, one process':28s}{bare:9.1f}{statistics.mean(bare_stats.busy):11.0f}%"
          f"{bare_stats.peak_rss / 2**30:9.2f} GiB")
    print(f"{'Ray Tune':28s}{tuned:9.1f}{statistics.mean(tune_stats.busy):11.0f}%"
          f"{tune_stats.peak_rss / 2**30:9.2f} GiB")
    print(f"Tune overhead per trial-second of work: {ratio:.2f}x (Tune wall x {cpus} CPUs / bare wall; "
          f"goal <= 1.10); speed-up over the bare loop {bare / tuned:.2f}x")
    print(f"reproduce: python bench/tune_overhead.py {' '.join(argv or sys.argv[1:])}".rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
