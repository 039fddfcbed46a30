"""What shared prefixes save: each grid run twice through the main job, shared (the default) and
with --no-share-prefix, as a user would run it (Ray start-up included).

Prints, per grid: training samples computed (exact) against what the independent trials trained,
both as multiples of one retrain run per (query size, seed); wall time of each and their ratio;
and whether every configuration's records are identical between the two (timings aside). Writes
the table to docs/shared_prefix.md and the raw figures to docs/shared_prefix.json.

    python bench/shared_prefix.py --data-dir ../shared/data              # demo + AG News seed-study grid
    python bench/shared_prefix.py --grids demo                           # the demo grid only
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "sweeps" / "eps_k_grid.py"
TIMING = {"train_time_s", "cum_train_time_s", "query_time_s", "eval_time_s"}


def agnews_tfidf(data_dir: str) -> dict:
    """The seed study's AG News grid (3 ε × 3 k, query 32, seeds 42-44, 40 rounds, + the three
    baselines) on the TF-IDF learner, so it runs on a CPU."""
    spec = yaml.safe_load((REPO / "sweeps" / "configs" / "agnews_distilbert.yaml").read_text())
    run = {k: v for k, v in spec["run"].items() if k not in ("model", "max_length", "lr")}
    run.update(learner="tfidf", data_dir=str(Path(data_dir).resolve()))
    return {"name": "agnews_tfidf", "run": run, "grid": spec["grid"],
            "resources": {"cpus_per_trial": 1, "gpus_per_trial": 0}, "max_failures": 1}


def run_sweep(config: Path, storage: Path, name: str, share: bool) -> float:
    """Run the main job once; return its wall seconds."""
    args = [sys.executable, str(SCRIPT), "--config", str(config), "--storage-path", str(storage),
            "--name", name] + ([] if share else ["--no-share-prefix"])
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    print(done.stdout.strip().splitlines()[-1], flush=True)
    return wall


def records(trial_dir: Path) -> list[dict]:
    lines = (trial_dir / "records.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in lines]


def _work(rows: list[dict]) -> float:
    return sum(r["train_time_s"] + r["query_time_s"] + r["eval_time_s"] for r in rows)


def work_seconds(sweep: Path) -> float:
    """Seconds the sweep's trials spent in rounds they computed themselves (training, scoring the
    pool, evaluating): a tail's rounds after its fork, none of a copy's, every round of the others
    and of the trajectories that are not configurations."""
    total = 0.0
    for summary_path in sweep.glob("*/summary.json"):
        summary = json.loads(summary_path.read_text())
        rows = [json.loads(line) for line in (summary_path.parent / "records.jsonl").read_text().splitlines()]
        share = summary.get("shared_prefix") or {}
        if summary.get("plan") == "copy":
            continue
        if summary.get("plan") == "tail" and share.get("tail_from") == "self":
            rows = [r for r in rows if r["round"] > share["switch_round"]]
        total += _work(rows)
    trajectories = {s["group"] for s in (json.loads(p.read_text()) for p in sweep.glob("*/summary.json"))
                    if s.get("plan") == "trajectory"}
    for path in sweep.glob("_prefix/*/trajectory.jsonl"):
        if path.parent.name not in trajectories:
            total += _work([json.loads(line) for line in path.read_text().splitlines() if line.strip()])
    return total


def compare(grid: str, storage: Path, walls: dict[str, float]) -> dict:
    """The figures of one grid from its two sweeps' files."""
    shared, alone = storage / f"{grid}_shared", storage / f"{grid}_independent"
    spend = json.loads((shared / "sweep_summary.json").read_text())
    naive = json.loads((alone / "sweep_summary.json").read_text())
    configs = sorted(p.parent.name for p in alone.glob("*/summary.json"))
    identical = sum(records(shared / name) == records(alone / name) for name in configs)
    retrain = [json.loads((alone / n / "summary.json").read_text()) for n in configs if n.startswith("retrain_")]
    retrain_samples = sum(s["total_train_samples"] for s in retrain) / len(retrain)
    groups = len(retrain)  # one retrain run per (query size, seed)
    work = {"shared": work_seconds(shared), "independent": work_seconds(alone)}
    train_speedup = naive["computed_train_time_s"] / spend["computed_train_time_s"]
    wall_speedup = walls["independent"] / walls["shared"]
    return {
        "grid": grid, "configurations": len(configs), "query_size_seed_pairs": groups,
        "retrain_samples": retrain_samples,
        "shared_samples": spend["computed_train_samples"], "independent_samples": naive["computed_train_samples"],
        "shared_x_retrain": spend["computed_train_samples"] / groups / retrain_samples,
        "independent_x_retrain": naive["computed_train_samples"] / groups / retrain_samples,
        "shared_wall_s": walls["shared"], "independent_wall_s": walls["independent"],
        "wall_speedup": wall_speedup,
        "shared_train_s": spend["computed_train_time_s"], "independent_train_s": naive["computed_train_time_s"],
        "train_speedup": train_speedup,
        "shared_work_s": work["shared"], "independent_work_s": work["independent"],
        "work_speedup": work["independent"] / work["shared"],
        "wall_over_train_speedup": wall_speedup / train_speedup,
        "identical_records": identical,
    }


def markdown(rows: list[dict], command: str) -> str:
    lines = ["# Shared prefixes: what the main job saves", "",
             f"Measured with `{command}` on the 2-core development machine (shared with other work, so "
             "wall times are noisy; samples are exact). Each grid ran twice through "
             "`python sweeps/eps_k_grid.py`, one after the other: shared prefixes (the default) and "
             "`--no-share-prefix`. *Work* is the seconds trials spent in rounds they computed themselves "
             "(training + scoring the pool + evaluation).", "",
             "| grid | configs | samples: shared / independent | ÷ retrain per (q, seed) | training s: shared / "
             "independent (speed-up) | work s (speed-up) | wall s: shared / independent (speed-up) "
             "| wall ÷ training speed-up | identical records |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['grid']} | {r['configurations']} | {r['shared_samples']:,} / {r['independent_samples']:,} | "
                     f"{r['shared_x_retrain']:.2f}× / {r['independent_x_retrain']:.2f}× | "
                     f"{r['shared_train_s']:.1f} / {r['independent_train_s']:.1f} ({r['train_speedup']:.2f}×) | "
                     f"{r['shared_work_s']:.1f} / {r['independent_work_s']:.1f} ({r['work_speedup']:.2f}×) | "
                     f"{r['shared_wall_s']:.0f} / {r['independent_wall_s']:.0f} ({r['wall_speedup']:.2f}×) | "
                     f"{r['wall_over_train_speedup']:.2f} | {r['identical_records']}/{r['configurations']} |")
    lines += ["", "Samples include the `finetune` and `new_only` baselines, which share nothing (a `finetune` "
              "run costs as much as a retrain run). Records are compared field by field without the four "
              "wall-clock fields.", "",
              "*Wall ÷ training speed-up* says how much of the training saving survives in wall time (1 = "
              "all of it). Both modes pay the same fixed start-up (Ray, the first workers, the data), which "
              "weighs most on a short grid such as the demo; on a grid whose rounds cost more the ratio "
              "approaches 1. Whether trials keep a large cluster busy is measured by `bench/scheduling.py` "
              "(docs/cluster.md).", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--grids", default="demo,agnews_tfidf", help="comma-separated: demo, agnews_tfidf")
    parser.add_argument("--out", default=str(REPO / "docs"), help="where shared_prefix.md/.json go")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        storage = Path(tmp)
        for grid in args.grids.split(","):
            config = REPO / "sweeps" / "configs" / "demo.yaml"
            if grid == "agnews_tfidf":
                config = storage / "agnews_tfidf.yaml"
                config.write_text(yaml.safe_dump(agnews_tfidf(args.data_dir)))
            walls = {}
            for mode in ("shared", "independent"):
                print(f"{grid}, {mode} ...", flush=True)
                walls[mode] = run_sweep(config, storage, f"{grid}_{mode}", share=mode == "shared")
            rows.append(compare(grid, storage, walls))
            print(json.dumps(rows[-1], indent=2), flush=True)
    command = "python bench/shared_prefix.py " + " ".join(sys.argv[1:])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "shared_prefix.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / "shared_prefix.md").write_text(markdown(rows, command.strip()))
    print(markdown(rows, command.strip()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
