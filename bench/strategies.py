"""Real-data benchmark: does the hybrid keep retrain's F1 at a fraction of its training cost?

For every dataset found in --data-dir it runs retrain, finetune, new_only and the hybrid (an ε × k
grid, crossed with warm-start variants) over several seeds as one Ray Tune sweep, then writes the
analysis report and a table of each configuration against retrain (same seeds) into --out.

    python bench/strategies.py --data-dir ../shared/data                 # the published numbers
    python bench/strategies.py --data-dir ../shared/data --datasets ag_news --seeds 0 --quick
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402

from hal.core.errors import EXIT_USAGE, HalError  # noqa: E402

# Warm-start variants of the hybrid, each crossed with the ε × k grid. `plain` is DESIGN.md's
# literal hybrid (warm rounds as long as cold ones); the others are the cost levers of issue 5.
VARIANTS = {
    "plain": {"finetune_epochs": 5},
    "fe1": {"finetune_epochs": 1},
    "fe2": {"finetune_epochs": 2},
    "fe2_replay50": {"finetune_epochs": 2, "replay_fraction": 0.5},
    "fe1_sp": {"finetune_epochs": 1, "shrink": 0.9, "perturb": 0.01},
}
# Baselines: DESIGN.md's three, plus fine-tuning with the hybrid's short warm rounds, the fair
# comparison for a hybrid that warm-starts with one epoch.
BASELINES = {
    "retrain": {"strategy": "retrain", "finetune_epochs": 5},
    "finetune": {"strategy": "finetune", "finetune_epochs": 5},
    "new_only": {"strategy": "new_only", "finetune_epochs": 5},
    "finetune_fe1": {"strategy": "finetune", "finetune_epochs": 1},
}
# What `--strategy hybrid` does when given nothing else (hal/core/config.py), picked from this benchmark.
DEFAULT_HYBRID = {"epsilon": 0.02, "k": 2, "finetune_epochs": 1}
AL = dict(learner="tfidf", initial_size=200, query_size=32, epochs=5, batch_size=16,
          query_strategy="entropy", pool_subset=1000)


def build_runs(datasets: list[str], data_dir: str, seeds: list[int], rounds: int, epsilons: list[float],
               ks: list[int], variants: list[str], baselines: list[str], learner: str) -> list[dict]:
    """Every trial's run settings."""
    runs = []
    for dataset in datasets:
        base = dict(AL, dataset=dataset, data_dir=data_dir, rounds=rounds, learner=learner)
        for seed in seeds:
            for name in baselines:
                runs.append(dict(base, seed=seed, **BASELINES[name]))
            for name in variants:
                for eps in epsilons:
                    for k in ks:
                        runs.append(dict(base, strategy="hybrid", seed=seed, epsilon=eps, k=k, **VARIANTS[name]))
    return runs


def ratio_table(summary_csv: Path) -> pd.DataFrame:
    """Per dataset: each baseline, the hybrid with HAL's default settings, and the cheapest hybrid
    that keeps >= 99% of retrain's final *validation* F1 (else the hybrid with the best validation
    F1), all against retrain on the same seeds. Test F1 is reported, never used to pick."""
    table = pd.read_csv(summary_csv)
    rows = []
    for dataset, group in table.groupby("dataset"):
        retrain = group[group.strategy == "retrain"]
        if retrain.empty:
            continue
        retrain = retrain.iloc[0]
        hybrids = group[group.strategy == "hybrid"].assign(
            val_ratio=lambda g: g.final_val_f1_mean / retrain.final_val_f1_mean,
            cost_ratio=lambda g: g.total_train_samples_mean / retrain.total_train_samples_mean)
        picks = [(row.strategy + (" (1-epoch warm rounds)" if row.finetune_epochs == 1 else ""), row)
                 for _, row in group[group.strategy != "hybrid"].iterrows()]
        default = hybrids[(hybrids.epsilon == DEFAULT_HYBRID["epsilon"]) & (hybrids.k == DEFAULT_HYBRID["k"])
                          & (hybrids.finetune_epochs == DEFAULT_HYBRID["finetune_epochs"])
                          & (hybrids.get("replay_fraction", 1.0) == 1.0)]
        if "shrink" in hybrids:
            default = default[default.shrink.fillna(1.0) == 1.0]
        if len(default):
            picks.append(("hybrid, HAL default", default.iloc[0]))
        if len(hybrids):
            keep = hybrids[hybrids.val_ratio >= 0.99].sort_values("cost_ratio")
            best = keep.iloc[0] if len(keep) else hybrids.sort_values("val_ratio").iloc[-1]
            picks.append(("hybrid, cheapest at >= 99% val F1" if len(keep) else "hybrid, best val F1", best))
        for label, row in picks:
            rows.append({
                "dataset": dataset, "row": label, "config": row.config,
                "val_f1": f"{row.final_val_f1_mean:.4f} ± {row.final_val_f1_std:.4f}",
                "test_f1 (outcome)": f"{row.final_test_f1_mean:.4f} ± {row.final_test_f1_std:.4f}",
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
    p.add_argument("--ks", default="1,2")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"hybrid variants: {','.join(VARIANTS)}")
    p.add_argument("--baselines", default=",".join(BASELINES), help=f"subset of {','.join(BASELINES)}")
    p.add_argument("--out", default=str(REPO / "docs" / "benchmark"))
    p.add_argument("--storage-path", default=str(REPO / "results" / "bench"),
                   help="sweeps go here; the report covers every sweep in it")
    p.add_argument("--name", default=f"bench_{time.strftime('%Y%m%d-%H%M%S')}")
    p.add_argument("--report-only", action="store_true", help="only rebuild the report from --storage-path")
    args = p.parse_args(argv)
    wall = None
    try:
        from hal.sweep.flags import parse_list
        from hal.sweep.spec import SweepSpec, checked_run
        from hal.sweep.tuners import grid_tuner, init_ray, prepare_shared

        if not args.report_only:
            data_dir = Path(args.data_dir).expanduser().resolve()
            datasets = [d for d in args.datasets.split(",") if (data_dir / d / "train.parquet").exists()]
            if not datasets:
                raise HalError(f"none of {args.datasets} found under --data-dir {data_dir}")
            variants, baselines = args.variants.split(","), args.baselines.split(",")
            for name in variants + baselines:
                if name not in {**VARIANTS, **BASELINES}:
                    raise HalError(f"unknown variant or baseline {name!r}")
            runs = build_runs(datasets, str(data_dir), parse_list(args.seeds, int, "--seeds"),
                              args.rounds, parse_list(args.epsilons, float, "--epsilons"),
                              parse_list(args.ks, int, "--ks"), variants, baselines, args.learner)
            runs = [checked_run(run) for run in runs]
            spec = SweepSpec(name=args.name, storage_path=args.storage_path, max_failures=1).validate()
            init_ray(None)
            shared = prepare_shared(runs)
            print(f"benchmark {args.name}: {len(runs)} runs on {', '.join(datasets)}", flush=True)
            started = time.time()
            results = grid_tuner(spec, runs, shared).fit()
            wall = time.time() - started
            if results.errors:
                print(f"{len(results.errors)} runs failed; see their error.txt", file=sys.stderr)
    except HalError as exc:
        sys.stderr.write(f"strategies.py: error: {exc}\n")
        return EXIT_USAGE
    out = Path(args.out)
    subprocess.run([sys.executable, "-m", "analysis.report", args.storage_path, "--out", str(out),
                    "--cost", "samples"], check=True, cwd=REPO)
    table = ratio_table(out / "summary.csv")
    table.to_csv(out / "strategies.csv", index=False)
    command = "python bench/strategies.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    machine = (f"{platform.machine()}, {os.cpu_count()} cores, {psutil_gib()} GiB, "
               f"Python {platform.python_version()}, torch {torch_version()}")
    header = f"`{command}` on {time.strftime('%Y-%m-%d')}, {machine}"
    if wall is not None:
        header += f", {len(runs)} runs in {wall / 60:.1f} min"
    else:
        header += (f": the table rebuilt from every sweep under `{args.storage_path}` "
                   "(docs/benchmark.md lists the commands that ran them)")
    (out / "strategies.md").write_text("# Strategy benchmark\n\n" + header + "\n\n"
                                       + table.to_markdown(index=False) + "\n")
    print(table.to_string(index=False))
    print(f"\nwritten: {out}/strategies.md, strategies.csv and the analysis report\nreproduce: {command}")
    return 0


def psutil_gib() -> int:
    import psutil

    return round(psutil.virtual_memory().total / 2**30)


def torch_version() -> str:
    import torch

    return torch.__version__


if __name__ == "__main__":
    sys.exit(main())
