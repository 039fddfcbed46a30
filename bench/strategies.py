"""Real-data benchmark: does the hybrid keep retrain's F1 at a fraction of its training cost?

For every dataset found in --data-dir it runs retrain, finetune, new_only and the hybrid (an ε × k
grid, crossed with warm-start variants) over several seeds as one Ray Tune sweep, then writes the
analysis report and a table of each configuration against retrain (same seeds) into --out.

    python bench/strategies.py --data-dir ../shared/data                 # the published numbers
    python bench/strategies.py --data-dir ../shared/data --datasets ag_news --seeds 0 --quick
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402

from hal.errors import EXIT_USAGE, HalError  # noqa: E402

# Warm-start variants of the hybrid, each crossed with the ε × k grid. `plain` is DESIGN.md's
# literal hybrid (warm rounds as long as cold ones); the others are the cost levers of issue 5.
VARIANTS = {
    "plain": {"finetune_epochs": 5},
    "fe1": {"finetune_epochs": 1},
    "fe2": {"finetune_epochs": 2},
    "fe2_replay50": {"finetune_epochs": 2, "replay_fraction": 0.5},
    "fe1_sp": {"finetune_epochs": 1, "shrink": 0.9, "perturb": 0.01},
}
AL = dict(learner="tfidf", initial_size=200, query_size=32, epochs=5, batch_size=16,
          query_strategy="entropy", pool_subset=1000)


def build_runs(datasets: list[str], data_dir: str, seeds: list[int], rounds: int, epsilons: list[float],
               ks: list[int], variants: list[str], learner: str) -> list[dict]:
    """Every trial's run settings."""
    runs = []
    for dataset in datasets:
        base = dict(AL, dataset=dataset, data_dir=data_dir, rounds=rounds, learner=learner)
        for seed in seeds:
            for strategy in ("retrain", "finetune", "new_only"):
                runs.append(dict(base, strategy=strategy, seed=seed, finetune_epochs=5))
            for name in variants:
                for eps in epsilons:
                    for k in ks:
                        runs.append(dict(base, strategy="hybrid", seed=seed, epsilon=eps, k=k, **VARIANTS[name]))
    return runs


def ratio_table(summary_csv: Path) -> pd.DataFrame:
    """Per dataset: retrain, finetune, new_only and the best hybrid that keeps >= 99% of retrain's
    F1 (fewest samples), else the hybrid with the best F1."""
    table = pd.read_csv(summary_csv)
    rows = []
    for dataset, group in table.groupby("dataset"):
        retrain = group[group.strategy == "retrain"].iloc[0]
        hybrids = group[group.strategy == "hybrid"].copy()
        hybrids["f1_ratio"] = hybrids.final_test_f1_mean / retrain.final_test_f1_mean
        hybrids["cost_ratio"] = hybrids.total_train_samples_mean / retrain.total_train_samples_mean
        keep = hybrids[hybrids.f1_ratio >= 0.99].sort_values("cost_ratio")
        best = keep.iloc[0] if len(keep) else hybrids.sort_values("f1_ratio").iloc[-1]
        for label, row in [("retrain", retrain), *[(s, group[group.strategy == s].iloc[0])
                                                    for s in ("finetune", "new_only")], ("best hybrid", best)]:
            rows.append({
                "dataset": dataset, "strategy": label, "config": row.label,
                "test_f1": f"{row.final_test_f1_mean:.4f} ± {row.final_test_f1_std:.4f}",
                "aulc": f"{row.aulc_mean:.4f}",
                "train_s": f"{row.total_train_time_s_mean:.1f}",
                "train_samples": f"{row.total_train_samples_mean:.0f}",
                "f1_vs_retrain": f"{row.final_test_f1_mean / retrain.final_test_f1_mean:.3f}",
                "samples_vs_retrain": f"{row.total_train_samples_mean / retrain.total_train_samples_mean:.3f}",
                "time_vs_retrain": f"{row.total_train_time_s_mean / retrain.total_train_time_s_mean:.3f}",
                "n_seeds": int(row.n_seeds),
            })
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--datasets", default="ag_news,imdb,jigsaw", help="those present in --data-dir are run")
    p.add_argument("--learner", default="tfidf")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--epsilons", default="0.005,0.01,0.02")
    p.add_argument("--ks", default="1,2,3")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"subset of {','.join(VARIANTS)}")
    p.add_argument("--quick", action="store_true", help="one ε, one k: a smoke run")
    p.add_argument("--out", default=str(REPO / "docs" / "benchmark"))
    p.add_argument("--storage-path", default=str(REPO / "results"))
    p.add_argument("--name", default=f"bench_{time.strftime('%Y%m%d-%H%M%S')}")
    args = p.parse_args(argv)
    try:
        from hal import sweep

        data_dir = Path(args.data_dir).expanduser().resolve()
        datasets = [d for d in args.datasets.split(",") if (data_dir / d / "train.parquet").exists()]
        if not datasets:
            raise HalError(f"none of {args.datasets} found under --data-dir {data_dir}")
        eps = [0.01] if args.quick else sweep.parse_list(args.epsilons, float, "--epsilons")
        ks = [2] if args.quick else sweep.parse_list(args.ks, int, "--ks")
        variants = args.variants.split(",")
        unknown = [v for v in variants if v not in VARIANTS]
        if unknown:
            raise HalError(f"unknown variant {unknown[0]!r}: choose from {', '.join(VARIANTS)}")
        runs = build_runs(datasets, str(data_dir), sweep.parse_list(args.seeds, int, "--seeds"), args.rounds,
                          eps, ks, variants, args.learner)
        spec = sweep.SweepSpec(name=args.name, storage_path=args.storage_path, max_failures=1).validate()
        runs = [sweep.trial_overrides(sweep.SweepSpec(run=r, strategies=[r["strategy"]],
                                                      epsilon=[r.get("epsilon", 0.01)], k=[r.get("k", 2)],
                                                      query_size=[r["query_size"]], seed=[r["seed"]]))[0]
                for r in runs]
        sweep.init_ray(None)
        shared = sweep.prepare_shared(runs)
        print(f"benchmark {args.name}: {len(runs)} runs on {', '.join(datasets)}", flush=True)
        started = time.time()
        results = sweep.build_grid_tuner(spec, runs, shared).fit()
        wall = time.time() - started
    except HalError as exc:
        sys.stderr.write(f"strategies.py: error: {exc}\n")
        return EXIT_USAGE
    experiment = Path(sweep.experiment_path(spec))
    out = Path(args.out)
    subprocess.run([sys.executable, "-m", "analysis.report", str(experiment), "--out", str(out),
                    "--cost", "samples"], check=True, cwd=REPO)
    table = ratio_table(out / "summary.csv")
    table.to_csv(out / "strategies.csv", index=False)
    command = "python bench/strategies.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    meta = {"command": command, "date": time.strftime("%Y-%m-%d"), "wall_s": round(wall, 1),
            "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, "
                       f"{__import__('os').cpu_count()} cores, Python {platform.python_version()}",
            "runs": len(runs), "errors": len(results.errors)}
    (out / "strategies.md").write_text(
        f"# Strategy benchmark\n\n`{command}` — {meta['date']}, {meta['machine']}, "
        f"{meta['runs']} runs in {wall / 60:.1f} min\n\n" + table.to_markdown(index=False) + "\n")
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(table.to_string(index=False))
    print(f"\nwritten: {out}/strategies.md, strategies.csv and the analysis report\nreproduce: {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
