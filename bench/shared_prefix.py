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


def compare(grid: str, storage: Path, walls: dict[str, float]) -> dict:
    """The figures of one grid from its two sweeps' files."""
    shared, alone = storage / f"{grid}_shared", storage / f"{grid}_independent"
    spend = json.loads((shared / "sweep_summary.json").read_text())
    naive = json.loads((alone / "sweep_summary.json").read_text())
    configs = sorted(p.parent.name for p in alone.glob("*/summary.json"))
    identical = sum(records(shared / name) == records(alone / name) for name in configs)
    # The part sharing applies to: the hybrid grid with its retrain baseline (and trajectories).
    grid_only = {name: sum(t["computed_train_samples"] or 0 for t in summary["per_trial"]
                           if t["role"] in ("trajectory", "member") or t["name"].startswith(("hybrid_", "retrain_")))
                 for name, summary in (("shared", spend), ("independent", naive))}
    retrain = [json.loads((alone / n / "summary.json").read_text()) for n in configs if n.startswith("retrain_")]
    retrain_samples = sum(s["total_train_samples"] for s in retrain) / len(retrain)
    groups = len(retrain)  # one retrain run per (query size, seed)
    return {
        "grid": grid, "configurations": len(configs), "query_size_seed_pairs": groups,
        "retrain_samples": retrain_samples,
        "shared_samples": spend["computed_train_samples"], "independent_samples": naive["computed_train_samples"],
        "shared_x_retrain": spend["computed_train_samples"] / groups / retrain_samples,
        "independent_x_retrain": naive["computed_train_samples"] / groups / retrain_samples,
        "hybrid_grid_shared_x_retrain": grid_only["shared"] / groups / retrain_samples,
        "hybrid_grid_independent_x_retrain": grid_only["independent"] / groups / retrain_samples,
        "shared_wall_s": walls["shared"], "independent_wall_s": walls["independent"],
        "wall_speedup": walls["independent"] / walls["shared"],
        "shared_train_s": spend["computed_train_time_s"], "independent_train_s": naive["computed_train_time_s"],
        "identical_records": identical,
    }


def markdown(rows: list[dict], command: str) -> str:
    lines = ["# Shared prefixes: what the main job saves", "",
             f"Measured with `{command}` on the 2-core development machine (shared with other work, so "
             "wall times are noisy; samples are exact). Each grid ran twice through "
             "`python sweeps/eps_k_grid.py`: shared prefixes (the default) and `--no-share-prefix`.", "",
             "| grid | configs | (q, seed) pairs | samples trained, shared | independent "
             "| ÷ retrain per (q, seed): shared / independent | hybrid grid + retrain only: shared / independent "
             "| wall shared | wall independent | wall speed-up | identical records |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['grid']} | {r['configurations']} | {r['query_size_seed_pairs']} | "
                     f"{r['shared_samples']:,} | {r['independent_samples']:,} | "
                     f"{r['shared_x_retrain']:.2f}× / {r['independent_x_retrain']:.2f}× | "
                     f"{r['hybrid_grid_shared_x_retrain']:.2f}× / {r['hybrid_grid_independent_x_retrain']:.2f}× | "
                     f"{r['shared_wall_s']:.0f} s | {r['independent_wall_s']:.0f} s | "
                     f"{r['wall_speedup']:.2f}× | {r['identical_records']}/{r['configurations']} |")
    lines += ["", "Samples include the `finetune` and `new_only` baselines, which share nothing (a `finetune` "
              "run costs as much as a retrain run). Records are compared field by field without the four "
              "wall-clock fields.", ""]
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
