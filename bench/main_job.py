"""What the README's main job costs a user: `python sweeps/eps_k_grid.py` on its embedded default,
run as a user runs it, with its wall time and the peak memory of the driver and every Ray process
together (sampled every 0.5 s; other agents' Ray processes on a shared machine would count too).

    python bench/main_job.py                 # the demo sweep, shared prefixes (the default)
    python bench/main_job.py --no-share-prefix
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from tune_overhead import Sampler  # noqa: E402


def main() -> int:
    extra = sys.argv[1:]
    with tempfile.TemporaryDirectory() as tmp, Sampler() as sampler:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, str(REPO / "sweeps" / "eps_k_grid.py"), "--storage-path", tmp,
                               *extra], capture_output=True, text=True, cwd=REPO)
        wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(done.stderr[-3000:])
    print(done.stdout.strip().splitlines()[-1])
    print(f"main job {' '.join(['python sweeps/eps_k_grid.py', *extra])}: wall {wall:.0f} s, peak memory "
          f"(driver + Ray processes) {sampler.peak_rss / 2**30:.2f} GiB, cores busy "
          f"{sum(sampler.busy) / max(1, len(sampler.busy)):.0f}% on average")
    return 0


if __name__ == "__main__":
    sys.exit(main())
