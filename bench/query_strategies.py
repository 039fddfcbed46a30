"""Do warm starts keep retrain's accuracy under each query strategy? (issue 22)

For each dataset × features × query strategy × seed, in one process per core and without Ray,
with the seed study's AL settings (initial 200, query 32, 30 rounds) querying from the whole pool
(every strategy sees the same candidates: on these pools, at most 9,002 examples), it runs

- ``retrain`` (from the initial weights every round), keeping a snapshot after every round;
- ``finetune`` (warm start from the previous round, all labeled data);
- the ``val``-monitor hybrid over ε × k (``GRID``): each (ε, k) is replayed on the retrain
  trajectory's ΔF1 series and each distinct switch round forks one warm-started tail from that
  round's snapshot (the records equal an independent run's: ``hal.core.loop.continue_from_fork``).

The report chooses on validation: the hybrid of a cell is the (ε, k) with the fewest training
samples among those whose seed-mean final validation F1 and validation AULC are within
``TOLERANCE`` of retrain's (else the best validation F1); test F1 is the outcome. Query seconds
are reported beside training seconds, and per round for the speed goal (query round of ``badge`` or
``coreset`` ≤ 3 × the training time of that round, BANKING77 TF-IDF, ``lbfgs``).

    python bench/query_strategies.py --data-dir ../shared/data --features tfidf --jobs 2
    python bench/query_strategies.py --data-dir ../shared/data --features embedding --jobs 2
    python bench/query_strategies.py --data-dir ../shared/data --features embedding --head mlp \\
        --dropout 0.1 --strategies random,entropy,bald,badge --jobs 2
    python bench/query_strategies.py --report-only

Results: ``results/query_strategies/`` (records and summary of every run, ``runs*.csv``, appended
as units finish, so an interrupted run continues where it stopped); report:
``docs/query_strategies/``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy/torch: one thread per process

import argparse  # noqa: E402
import copy  # noqa: E402
import multiprocessing  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

from hal.core.config import QUERY_STRATEGIES, make_config  # noqa: E402
from hal.core.records import write_records, write_summary  # noqa: E402
from hal.core.switch import new_trigger, replay  # noqa: E402
from hal.data.inputs import prepare  # noqa: E402
from hal.runs.build import new_loop  # noqa: E402
from when_retraining_pays import fork  # noqa: E402  (bench/ is on the path: this script's folder)

DATASETS = ("banking77", "ag_news")
NAMES = {"ag_news": "AG News", "banking77": "BANKING77", "imdb": "IMDb", "jigsaw": "Jigsaw"}
AL = dict(initial_size=200, query_size=32, rounds=30)
GRID = [(e, k) for e in (0.005, 0.01, 0.02) for k in (1, 2, 3)]
DEFAULT_HYBRID = (0.02, 2)
TOLERANCE = 0.005  # of validation F1 and AULC: "keeps retrain's accuracy" when within it
OUT_RESULTS = REPO / "results" / "query_strategies"
OUT_DOCS = REPO / "docs" / "query_strategies"
COMMANDS_FILE = "commands.txt"  # the commands whose runs are in the results folder, one per line
RUN_FIELDS = ("dataset", "unit", "query_strategy", "seed", "name", "strategy", "epsilon", "k", "switch_round",
              "final_val_f1", "aulc", "final_test_f1", "total_train_samples", "total_train_time_s",
              "total_query_time_s", "query_train_ratio_median", "query_train_ratio_max")

_PREPARED: dict = {}  # dataset -> Prepared, filled before the worker processes fork


def hybrid_name(eps: float, k: int) -> str:
    return f"hybrid_e{eps:g}_k{k}"


def run_unit(job: tuple) -> list[dict]:
    """Every configuration of one (dataset, unit, query strategy, seed); one summary row each."""
    dataset, unit, query_strategy, seed, settings, out = job
    prepared = _PREPARED[dataset]
    base = dict(AL, **settings, dataset=dataset, query_strategy=query_strategy, seed=seed)
    rows = []

    def finish(name, loop):
        summary = loop.summary()
        run_dir = Path(out) / unit / dataset / query_strategy / f"{name}_s{seed}"
        write_records(run_dir, loop.records)
        write_summary(run_dir, summary)
        ratios = [r.query_time_s / r.train_time_s for r in loop.records[1:] if r.train_time_s > 0]
        cfg = loop.cfg
        rows.append(dict(dataset=dataset, unit=unit, query_strategy=query_strategy, seed=seed, name=name,
                         strategy=cfg.strategy, epsilon=cfg.epsilon if cfg.strategy == "hybrid" else np.nan,
                         k=cfg.k if cfg.strategy == "hybrid" else np.nan, switch_round=summary["switch_round"],
                         **{f: summary[f] for f in RUN_FIELDS[9:15]},
                         query_train_ratio_median=float(np.median(ratios)) if ratios else np.nan,
                         query_train_ratio_max=float(np.max(ratios)) if ratios else np.nan))

    trunk = new_loop(make_config(dict(base, strategy="retrain")).resolved(), prepared)
    snapshots = []
    for _ in trunk:
        snapshots.append(copy.deepcopy(trunk.checkpoint()))
    finish("retrain", trunk)
    tails: dict = {}
    for eps, k in GRID:
        cfg = make_config(dict(base, strategy="hybrid", epsilon=eps, k=k)).resolved()
        trigger = replay(new_trigger(cfg), trunk.records)
        s = trigger.switch_round
        if s in tails:  # the same switch round: the same records, only ε and k differ
            loop = tails[s]
            loop.cfg, loop.state.trigger = cfg, trigger
        else:
            loop = tails[s] = fork(cfg, prepared, snapshots, trigger)
        finish(hybrid_name(eps, k), loop)
    loop = new_loop(make_config(dict(base, strategy="finetune")).resolved(), prepared)
    for _ in loop:
        pass
    finish("finetune", loop)
    return rows


# ---------------------------------------------------------------------------------------------
# report


def paired(runs: pd.DataFrame) -> pd.DataFrame:
    """Per configuration of every cell (dataset × unit × query strategy): seed means and stds,
    and the per-seed differences and ratios to retrain of the same seed."""
    out = []
    for (dataset, unit, qs), cell in runs.groupby(["dataset", "unit", "query_strategy"], sort=False):
        ref = cell[cell.name == "retrain"].set_index("seed")
        for name, part in cell.groupby("name", sort=False):
            part = part.set_index("seed")
            seeds = part.index.intersection(ref.index)
            p, r = part.loc[seeds], ref.loc[seeds]
            row = dict(dataset=dataset, unit=unit, query_strategy=qs, name=name, strategy=p.strategy.iloc[0],
                       epsilon=p.epsilon.iloc[0], k=p.k.iloc[0], seeds=len(seeds),
                       switch_rounds=",".join("-" if pd.isna(v) else str(int(v)) for v in p.switch_round))
            for col in ("final_val_f1", "aulc", "final_test_f1", "total_train_samples", "total_train_time_s",
                        "total_query_time_s", "query_train_ratio_median", "query_train_ratio_max"):
                row[col] = p[col].mean()
                row[col + "_std"] = p[col].std(ddof=1) if len(seeds) > 1 else np.nan
            for col in ("final_val_f1", "aulc", "final_test_f1"):
                diff = p[col] - r[col]
                row[col + "_diff"], row[col + "_diff_std"] = diff.mean(), diff.std(ddof=1)
            for col in ("total_train_samples", "total_train_time_s"):
                row[col + "_ratio"] = (p[col] / r[col]).mean()
            out.append(row)
    return pd.DataFrame(out)


def choose_hybrid(table: pd.DataFrame) -> pd.DataFrame:
    """Per cell, the hybrid chosen on validation: the fewest mean training samples among those
    within ``TOLERANCE`` of retrain on both validation F1 and validation AULC, else the best
    validation F1. Marked ``chosen``."""
    table = table.assign(chosen=False)
    for _, cell in table[table.strategy == "hybrid"].groupby(["dataset", "unit", "query_strategy"], sort=False):
        keeps = cell[(cell.final_val_f1_diff >= -TOLERANCE) & (cell.aulc_diff >= -TOLERANCE)]
        pick = (keeps.sort_values(["total_train_samples", "final_val_f1"], ascending=[True, False])
                if len(keeps) else cell.sort_values("final_val_f1", ascending=False))
        table.loc[pick.index[0], "chosen"] = True
    return table


def verdict(row: pd.Series) -> str:
    """Does it keep retrain's test F1 and AULC? Within ``TOLERANCE`` on both: yes; a shortfall
    smaller than its own seed spread: within spread; else no."""
    diffs = [(row.final_test_f1_diff, row.final_test_f1_diff_std), (row.aulc_diff, row.aulc_diff_std)]
    if all(d >= -TOLERANCE for d, _ in diffs):
        return "yes"
    if all(d >= -TOLERANCE or (not np.isnan(s) and -d <= s) for d, s in diffs):
        return "within spread"
    return "no"


def fmt(mean: float, std: float = np.nan, digits: int = 3, sign: bool = False) -> str:
    if pd.isna(mean):
        return "–"
    text = f"{mean:+.{digits}f}" if sign else f"{mean:.{digits}f}"
    return text + ("" if pd.isna(std) else f" ± {std:.{digits}f}")


def cell_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Retrain, finetune, the default hybrid and the chosen one, per cell, in strategy order."""
    keep = table[(table.name.isin(["retrain", "finetune", hybrid_name(*DEFAULT_HYBRID)])) | table.chosen]
    order = {q: i for i, q in enumerate(QUERY_STRATEGIES)}
    kind = {"retrain": 0, "finetune": 1}
    keep = keep.assign(_q=keep.query_strategy.map(order),
                       _k=[kind.get(n, 3 if c else 2) for n, c in zip(keep.name, keep.chosen)])
    return keep.sort_values(["unit", "dataset", "_q", "_k"]).drop(columns=["_q", "_k"])


def label(row: pd.Series) -> str:
    if row.strategy != "hybrid":
        return row.strategy
    what = "chosen on val" if row.chosen else "default"
    if row.chosen and (row.epsilon, row.k) == DEFAULT_HYBRID:
        what = "default = chosen on val"
    return f"hybrid ε={row.epsilon:g} k={int(row.k)} ({what})"


def markdown(table: pd.DataFrame) -> str:
    lines = ["| dataset | learner | query strategy | configuration | switch rounds | test F1 | Δ test F1 vs retrain | "
             "Δ val AULC vs retrain | keeps retrain's F1 and AULC | train samples / retrain | train s | query s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in cell_rows(table).iterrows():
        retrain = r.strategy == "retrain"
        lines.append(
            f"| {NAMES.get(r.dataset, r.dataset)} | {r.unit} | {r.query_strategy} | {label(r)} | "
            f"{'–' if r.strategy != 'hybrid' else r.switch_rounds} | {fmt(r.final_test_f1, r.final_test_f1_std)} | "
            f"{'–' if retrain else fmt(r.final_test_f1_diff, r.final_test_f1_diff_std, sign=True)} | "
            f"{'–' if retrain else fmt(r.aulc_diff, r.aulc_diff_std, sign=True)} | "
            f"{'–' if retrain else verdict(r)} | {fmt(r.total_train_samples_ratio, digits=2)} | "
            f"{fmt(r.total_train_time_s, r.total_train_time_s_std, 1)} | "
            f"{fmt(r.total_query_time_s, r.total_query_time_s_std, 1)} |")
    return "\n".join(lines) + "\n"


def speed_markdown(runs: pd.DataFrame) -> str:
    """The speed goal: per query strategy, the median and worst round of query seconds ÷ that
    round's training seconds in the retrain runs (the same machine, the same moment)."""
    lines = ["| dataset | learner | query strategy | query ÷ train, median round | worst round (max over seeds) | "
             "query s per run | train s per run |", "|---|---|---|---|---|---|---|"]
    part = runs[runs.name == "retrain"]
    order = {q: i for i, q in enumerate(QUERY_STRATEGIES)}
    part = part.assign(_q=part.query_strategy.map(order)).sort_values(["unit", "dataset", "_q"], kind="stable")
    for (dataset, unit, qs), g in part.groupby(["dataset", "unit", "query_strategy"], sort=False):
        lines.append(f"| {NAMES.get(dataset, dataset)} | {unit} | {qs} | {g.query_train_ratio_median.median():.2f} | "
                     f"{g.query_train_ratio_max.max():.2f} | {g.total_query_time_s.mean():.1f} | "
                     f"{g.total_train_time_s.mean():.1f} |")
    return "\n".join(lines) + "\n"


def plots(table: pd.DataFrame, out: Path) -> list[str]:
    """warm_vs_retrain.png (one row per learner; per dataset Δ test F1 and Δ val AULC of finetune
    and the chosen hybrid) and cost.png (training and querying seconds per run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = table[~table.unit.str.contains("subset")]  # the pool-subset runs are a speed check: tables only
    units = sorted(set(table.unit), key=lambda u: (not u.startswith("tfidf"), u))  # TF-IDF first
    datasets = [d for d in DATASETS if d in set(table.dataset)] + sorted(set(table.dataset) - set(DATASETS))
    warm = ((lambda part: part.name == "finetune", "finetune", "tab:red"),
            (lambda part: part.chosen, "hybrid (chosen on val)", "tab:blue"))
    fig, axes = plt.subplots(len(units), 2 * len(datasets), figsize=(4.2 * 2 * len(datasets), 3.3 * len(units)),
                             squeeze=False)
    for i, unit in enumerate(units):
        for j, dataset in enumerate(datasets):
            part = table[(table.unit == unit) & (table.dataset == dataset)]
            strategies = [q for q in QUERY_STRATEGIES if q in set(part.query_strategy)]
            x = np.arange(len(strategies))
            for m, (col, what) in enumerate((("final_test_f1_diff", "Δ test F1"), ("aulc_diff", "Δ val AULC"))):
                ax = axes[i][2 * j + m]
                if part.empty:  # this learner did not run on this dataset
                    ax.axis("off")
                    continue
                for offset, (select, name, color) in enumerate(warm):
                    rows = part[select(part)].set_index("query_strategy").reindex(strategies)
                    ax.errorbar(x + (offset - 0.5) * 0.25, rows[col], yerr=rows[col + "_std"], fmt="o",
                                color=color, capsize=3, label=name)
                ax.axhline(0, color="k", lw=0.8)
                ax.axhspan(-TOLERANCE, TOLERANCE, color="grey", alpha=0.15, lw=0)
                ax.set_xticks(x, strategies, rotation=35, ha="right", fontsize=8)
                ax.set_ylabel(f"{what} vs retrain", fontsize=8)
                ax.set_title(f"{NAMES.get(dataset, dataset)}, {unit}: {what}", fontsize=9)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"Warm starts vs retrain under each query strategy: mean ± std over 3 seeds, paired by seed "
                 f"(grey: ±{TOLERANCE})", fontsize=10)
    fig.tight_layout()
    path = out / "warm_vs_retrain.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)

    fig, axes = plt.subplots(len(units), len(datasets), figsize=(5.2 * len(datasets), 3.4 * len(units)),
                             squeeze=False)
    runs = ((lambda part: part.name == "retrain", "retrain", "dimgrey"), *warm)
    for i, unit in enumerate(units):
        for j, dataset in enumerate(datasets):
            ax = axes[i][j]
            part = table[(table.unit == unit) & (table.dataset == dataset)]
            if part.empty:
                ax.axis("off")
                continue
            strategies = [q for q in QUERY_STRATEGIES if q in set(part.query_strategy)]
            x = np.arange(len(strategies))
            for offset, (select, name, color) in enumerate(runs):
                rows = part[select(part)].set_index("query_strategy").reindex(strategies)
                where = x + (offset - 1) * 0.27
                ax.bar(where, rows.total_train_time_s, 0.25, color=color, alpha=0.6, label=f"{name}: training")
                ax.bar(where, rows.total_query_time_s, 0.25, bottom=rows.total_train_time_s, facecolor="none",
                       edgecolor=color, hatch="///", label=f"{name}: querying")
            ax.set_xticks(x, strategies, rotation=35, ha="right", fontsize=8)
            ax.set_ylabel("seconds per run (seed mean)", fontsize=8)
            ax.set_title(f"{NAMES.get(dataset, dataset)}, {unit}", fontsize=9)
    axes[0][0].legend(fontsize=6, ncol=2)
    fig.suptitle("What a run costs: training (solid) and querying (hatched) seconds, one thread", fontsize=10)
    fig.tight_layout()
    cost = out / "cost.png"
    fig.savefig(cost, dpi=100)
    plt.close(fig)
    return [path.name, cost.name]


def report(results: Path, out: Path, command: str) -> pd.DataFrame:
    runs = pd.concat([pd.read_csv(p) for p in sorted(results.glob("runs*.csv"))], ignore_index=True)
    runs = runs.drop_duplicates(["dataset", "unit", "query_strategy", "seed", "name"])
    table = choose_hybrid(paired(runs))
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "table.csv", index=False)
    seeds = sorted(runs.seed.unique())
    units = runs.groupby(["unit", "dataset"]).query_strategy.nunique()
    ran = (results / COMMANDS_FILE).read_text().splitlines() if (results / COMMANDS_FILE).exists() else []
    header = ("Runs made by " + ", ".join(f"`{c}`" for c in ran) + f"; report by `{command}`, "
              f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, "
              f"Python {platform.python_version()}, torch {torch.__version__}. Seeds {', '.join(map(str, seeds))}; "
              "mean ± std over seeds; Δ and ratios against retrain of the same seed (mean of per-seed "
              "values). Cells: " + ", ".join(f"{d}/{u} ({n} strategies)" for (u, d), n in units.items()) + ".\n\n")
    body = ("# Warm starts under each query strategy (issue 22)\n\n" + header
            + "## Retrain, finetune and the hybrid per query strategy\n\n" + markdown(table)
            + "\n## Query cost per round (retrain runs)\n\n" + speed_markdown(runs))
    (out / "table.md").write_text(body)
    written = plots(table, out)
    print(body)
    print(f"written: {out}/table.md, table.csv, {', '.join(written)}")
    return table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--features", default="tfidf", choices=("tfidf", "embedding"))
    p.add_argument("--head", default="lbfgs", choices=("lbfgs", "mlp"))
    p.add_argument("--dropout", type=float, default=0.0, help="mlp head: dropout (bald needs it)")
    p.add_argument("--strategies", default=",".join(q for q in QUERY_STRATEGIES if q != "bald"))
    p.add_argument("--pool-subset", type=int, default=0, help="choose from this many random pool examples "
                                                                 "(0: the whole pool, as the report's main runs)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (one thread each)")
    p.add_argument("--results", default=str(OUT_RESULTS))
    p.add_argument("--out", default=str(OUT_DOCS))
    p.add_argument("--report-only", action="store_true")
    args = p.parse_args(argv)
    results, out = Path(args.results), Path(args.out)
    command = "python bench/query_strategies.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    if not args.report_only:
        unit = (f"{args.features}-{args.head}" + (f"-dropout{args.dropout:g}" if args.dropout else "")
                + (f"-subset{args.pool_subset}" if args.pool_subset else ""))
        settings = dict(data_dir=str(Path(args.data_dir).expanduser().resolve()), learner=args.features,
                        head=args.head, pool_subset=args.pool_subset,
                        **({"dropout": args.dropout} if args.dropout else {}))
        results.mkdir(parents=True, exist_ok=True)
        ran = (results / COMMANDS_FILE).read_text().splitlines() if (results / COMMANDS_FILE).exists() else []
        if command not in ran:
            (results / COMMANDS_FILE).write_text("".join(f"{c}\n" for c in [*ran, command]))
        csv = results / f"runs_{unit}.csv"
        done = set()
        if csv.exists():
            prev = pd.read_csv(csv)
            done = set(zip(prev.dataset, prev.query_strategy, prev.seed))
        jobs = [(d, unit, q, int(s), settings, str(results)) for s in args.seeds.split(",")
                for d in args.datasets.split(",") for q in args.strategies.split(",") if (d, q, int(s)) not in done]
        for dataset in dict.fromkeys(j[0] for j in jobs):
            started = time.time()
            _PREPARED[dataset] = prepare(make_config(dict(AL, **settings, dataset=dataset)).resolved())
            print(f"{dataset}/{args.features}: prepared in {time.time() - started:.0f}s", flush=True)
        ctx = multiprocessing.get_context("fork")  # workers share the prepared features
        with ctx.Pool(args.jobs) as pool:
            for rows in pool.imap_unordered(run_unit, jobs):
                frame = pd.DataFrame(rows, columns=list(RUN_FIELDS))
                frame.to_csv(csv, mode="a", header=not csv.exists(), index=False)
                r = rows[0]
                print(f"{r['dataset']}/{unit}/{r['query_strategy']} seed {r['seed']}: {len(rows)} configurations, "
                      f"retrain test F1 {r['final_test_f1']:.3f}, train {r['total_train_time_s']:.1f}s, "
                      f"query {r['total_query_time_s']:.1f}s", flush=True)
    report(results, out, command)
    print(f"reproduce: {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
