"""CPU learners against the peer, and what warm starting changes apart from the training budget
(issue 15).

For each dataset × features × seed, in one process and without Ray, with the seed study's AL
settings (initial 200, query 32, 30 rounds, entropy over 1,000 random pool examples) and the stop
set held out by every run (``--stop-set shared``: all runs of a seed query the same pool), it runs

- HAL's learners under ``retrain`` and ``finetune`` (warm rounds with the *same* per-round budget
  as retrain): the torch linear head for 5 AdamW epochs (``adamw``, the old default) and to
  convergence (``lbfgs``); scikit-learn's LinearSVC (retrain only: it cannot warm-start) and
  LogisticRegression (``logreg``); on embeddings also the one-hidden-layer head for 5 epochs
  (``adamw`` with ``--hidden-size 512``) and to its loss criterion (``mlp``);
- the peer reference in the same run: small-text 1.4.1 + scikit-learn (LinearSVC, and
  LogisticRegression), in its own environment (``--peer-python``), on HAL's feature matrix and the
  split, initial set and stop set ``hal.runs.export_split`` writes for each seed.

Each cell is a 2 × 2 per model family: budget (a fixed 5 epochs, or trained to a criterion) ×
start (``retrain`` from the initial weights, or ``finetune`` from the previous round's). The
warm-start effect is finetune − retrain at one budget; the budget effect is criterion − 5 epochs
under one start.

    python bench/cpu_learners.py --data-dir ../shared/data --features tfidf
    python bench/cpu_learners.py --data-dir ../shared/data --features embedding
    python bench/cpu_learners.py --report-only

Results: ``results/cpu_learners/`` (records and summary of every run, ``runs_<features>.csv``,
the peer's JSON lines); report: ``docs/cpu_learners/``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy/torch: one thread, as every run here

import argparse  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

from hal.core.config import make_config  # noqa: E402
from hal.core.records import write_records, write_summary  # noqa: E402
from hal.data.inputs import prepare  # noqa: E402
from hal.runs.build import new_loop  # noqa: E402
from hal.runs.export_split import write_split  # noqa: E402

DATASETS = ("ag_news", "imdb", "jigsaw", "banking77")
NAMES = {"ag_news": "AG News", "imdb": "IMDb", "jigsaw": "Jigsaw", "banking77": "BANKING77"}
AL = dict(initial_size=200, query_size=32, query_strategy="entropy", pool_subset=1000, rounds=30,
          batch_size=16, monitor="val", stop_set="shared", stop_set_size=1000)
# name -> (settings, family, budget, strategies). Warm rounds get retrain's per-round budget.
LEARNERS = {
    "adamw": (dict(head="adamw", epochs=5, finetune_epochs=5), "linear", "5 epochs", ("retrain", "finetune")),
    "lbfgs": (dict(head="lbfgs"), "linear", "criterion", ("retrain", "finetune")),
    "lbfgs_c1": (dict(head="lbfgs", C=1.0), "linear C=1", "criterion", ("retrain",)),
    "linearsvc": (dict(head="linearsvc"), "linearsvc", "criterion", ("retrain",)),
    "logreg": (dict(head="logreg"), "logreg", "criterion", ("retrain", "finetune")),
    "mlp_5ep": (dict(head="adamw", hidden_size=512, lr=1e-3, epochs=5, finetune_epochs=5), "mlp",
                "5 epochs", ("retrain", "finetune")),
    "mlp": (dict(head="mlp"), "mlp", "criterion", ("retrain", "finetune")),
}
FEATURE_LEARNERS = {"tfidf": ("adamw", "lbfgs", "linearsvc", "logreg"),
                    "embedding": ("adamw", "lbfgs", "lbfgs_c1", "linearsvc", "logreg", "mlp_5ep", "mlp")}
PEERS = ("svc", "logreg")
PEER_NAMES = {"svc": "small-text + LinearSVC", "logreg": "small-text + LogisticRegression"}
LABELS = {"adamw": "linear head, 5 AdamW epochs (old default)", "lbfgs": "linear head, L-BFGS to tol",
          "lbfgs_c1": "linear head, L-BFGS to tol, C=1",
          "linearsvc": "scikit-learn LinearSVC", "logreg": "scikit-learn LogisticRegression",
          "mlp_5ep": "MLP 512, 5 AdamW epochs", "mlp": "MLP 512 to its loss criterion"}
OUT_RESULTS = REPO / "results" / "cpu_learners"
OUT_DOCS = REPO / "docs" / "cpu_learners"
FIELDS = ("dataset", "features", "seed", "learner", "strategy", "family", "budget", "final_test_f1",
          "final_val_f1", "aulc", "total_train_samples", "total_passes", "rounds_at_cap",
          "train_s", "wall_s", "cpu_s")


def run_one(dataset: str, features: str, seed: int, name: str, strategy: str, prepared, data_dir: str,
            results: Path) -> dict:
    """One HAL run; its records and summary land in ``results``; returns its row."""
    settings, family, budget, _ = LEARNERS[name]
    cfg = make_config(dict(AL, dataset=dataset, data_dir=data_dir, learner=features, seed=seed,
                           strategy=strategy, **settings)).resolved()
    loop = new_loop(cfg, prepared)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in loop:
        pass
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    summary = loop.summary()
    run_dir = results / features / dataset / f"{name}_{strategy}_s{seed}"
    write_records(run_dir, loop.records)
    write_summary(run_dir, dict(summary, wall_s=wall, cpu_s=cpu))
    return dict(dataset=dataset, features=features, seed=seed, learner=name, strategy=strategy,
                family=family, budget=budget, final_test_f1=summary["final_test_f1"],
                final_val_f1=summary["final_val_f1"], aulc=summary["aulc"],
                total_train_samples=summary["total_train_samples"], total_passes=summary["total_passes"],
                rounds_at_cap=sum(r.fit_converged == 0 for r in loop.records),
                train_s=summary["total_train_time_s"], wall_s=wall, cpu_s=cpu)


def export_job(dataset: str, features: str, seeds: list[int], prepared, data_dir: str, folder: Path) -> tuple[Path, list[Path]]:
    """HAL's feature matrix (npz) and, per seed, its split, initial set and stop set (export-split's
    JSON): the peer's whole input."""
    folder.mkdir(parents=True, exist_ok=True)
    x = prepared.features
    npz = folder / f"{dataset}_{features}.npz"
    if sp.issparse(x):
        x = x.tocsr()
        np.savez(npz, data=x.data, indices=x.indices, indptr=x.indptr, shape=np.array(x.shape))
    else:
        np.savez(npz, x=np.asarray(x, dtype=np.float32))
    splits = []
    for seed in seeds:
        cfg = make_config(dict(AL, dataset=dataset, data_dir=data_dir, learner=features, seed=seed)).resolved()
        path = folder / f"{dataset}_s{seed}.json"
        write_split(cfg, prepared.corpus, path)
        splits.append(path)
    return npz, splits


def run_peer(python: str, npz: Path, splits: list[Path], clf: str, out: Path) -> None:
    subprocess.run([python, str(REPO / "bench" / "peer_small_text.py"), "--features", str(npz),
                    "--split", *map(str, splits), "--clf", clf, "--out", str(out)], check=True,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})


def peer_rows(results: Path) -> pd.DataFrame:
    """The peer's runs as rows like HAL's."""
    rows = []
    for path in sorted(results.glob("*/*/peer_*.jsonl")):
        features, dataset = path.parents[1].name, path.parent.name
        recs = pd.read_json(path, lines=True)
        for seed, part in recs.groupby("seed"):
            part = part.sort_values("round")
            x, y = part.labeled.to_numpy(float), part.val_f1.to_numpy(float)
            last = part.iloc[-1]
            rows.append(dict(dataset=dataset, features=features, seed=int(seed), learner="peer_" + last.clf,
                             strategy="retrain", family="peer", budget="criterion",
                             final_test_f1=last.test_f1, final_val_f1=last.val_f1,
                             aulc=float(np.trapezoid(y, x) / (x[-1] - x[0])),
                             test_f1_smalltext=last.test_f1_smalltext, total_train_samples=np.nan,
                             total_passes=np.nan, rounds_at_cap=np.nan, train_s=part.fit_s.sum(),
                             wall_s=last.run_wall_s, cpu_s=last.run_cpu_s))
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# report


def fmt(values: pd.Series, digits: int = 3) -> str:
    values = values.dropna()
    if values.empty:
        return "–"
    std = f" ± {values.std(ddof=1):.{digits}f}" if len(values) > 1 else ""
    return f"{values.mean():.{digits}f}{std}"


def label(name: str) -> str:
    return PEER_NAMES.get(name[5:], name) if name.startswith("peer_") else LABELS.get(name, name)


def goal_table(runs: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """Every learner under retrain beside the peer, per dataset × features; the verdict compares
    the HAL learner chosen on validation (best seed-mean AULC) with the best peer (on test F1 and
    AULC, the outcome) and their median wall seconds per run."""
    lines = ["| dataset | features | learner | test F1 (outcome) | AULC (val) | final val F1 | "
             "wall s / run (median) | CPU s / run (median) | train samples / run | rounds at cap |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    verdicts = []
    for (features, dataset), part in runs[runs.strategy == "retrain"].groupby(["features", "dataset"], sort=False):
        order = part.groupby("learner").aulc.mean().sort_values(ascending=False).index
        for name in order:
            r = part[part.learner == name]
            lines.append(f"| {NAMES.get(dataset, dataset)} | {features} | {label(name)} | {fmt(r.final_test_f1)} | "
                         f"{fmt(r.aulc)} | {fmt(r.final_val_f1)} | {r.wall_s.median():.1f} | "
                         f"{r.cpu_s.median():.1f} | {r.total_train_samples.mean():,.0f} | "
                         f"{r.rounds_at_cap.mean():.1f} |".replace("nan", "–"))
        hal = part[~part.learner.str.startswith("peer_")]
        peer = part[part.learner.str.startswith("peer_")]
        if hal.empty or peer.empty:
            continue
        means = lambda frame: frame.groupby("learner")[["final_test_f1", "aulc", "final_val_f1"]].mean()  # noqa: E731
        walls = lambda frame: frame.groupby("learner").wall_s.median()  # noqa: E731
        best = means(hal).sort_values(["aulc", "final_val_f1"], ascending=False).index[0]
        pm, pw = means(peer), walls(peer)
        chosen = pm.sort_values(["aulc", "final_val_f1"], ascending=False).index[0]  # as HAL's: on val
        verdicts.append(dict(dataset=dataset, features=features, hal=best, peer=chosen,
                             peer_chosen_test_f1=pm.loc[chosen, "final_test_f1"],
                             peer_chosen_aulc=pm.loc[chosen, "aulc"], peer_chosen_wall=pw[chosen],
                             hal_test_f1=means(hal).loc[best, "final_test_f1"], hal_aulc=means(hal).loc[best, "aulc"],
                             hal_wall=walls(hal)[best], peer_test_f1=pm.final_test_f1.max(),
                             peer_test_by=pm.final_test_f1.idxmax(), peer_aulc=pm.aulc.max(),
                             peer_aulc_by=pm.aulc.idxmax(), peer_wall=pw.min(),
                             lbfgs_test_f1=means(hal).final_test_f1.get("lbfgs", np.nan),
                             lbfgs_aulc=means(hal).aulc.get("lbfgs", np.nan),
                             lbfgs_wall=walls(hal).get("lbfgs", np.nan)))
    return "\n".join(lines) + "\n", pd.DataFrame(verdicts)


def verdict_markdown(v: pd.DataFrame) -> str:
    """Two readings of "the best peer": chosen on validation like HAL's learner, or the best of the
    two peers on each outcome separately (stricter: a maximum over two noisy numbers)."""
    lines = ["| dataset | features | HAL learner (chosen on val AULC) | its test F1 / AULC / wall s | "
             "peer chosen on val AULC: test F1 / AULC / wall s | met (F1, AULC, time) | "
             "best peer on each: test F1 / AULC / wall s | met (F1, AULC, time) | "
             "`lbfgs` test F1 / AULC / wall s |", "|---|---|---|---|---|---|---|---|---|"]
    yes = lambda flags: ", ".join("yes" if o else "no" for o in flags)  # noqa: E731
    for _, r in v.iterrows():
        chosen = [r.hal_test_f1 >= r.peer_chosen_test_f1, r.hal_aulc >= r.peer_chosen_aulc,
                  r.hal_wall <= r.peer_chosen_wall]
        strict = [r.hal_test_f1 >= r.peer_test_f1, r.hal_aulc >= r.peer_aulc, r.hal_wall <= r.peer_wall]
        lines.append(f"| {NAMES.get(r.dataset, r.dataset)} | {r.features} | {label(r.hal)} | "
                     f"{r.hal_test_f1:.3f} / {r.hal_aulc:.3f} / {r.hal_wall:.1f} | "
                     f"{r.peer_chosen_test_f1:.3f} / {r.peer_chosen_aulc:.3f} / {r.peer_chosen_wall:.1f} "
                     f"({label(r.peer)[13:]}) | {yes(chosen)} | "
                     f"{r.peer_test_f1:.3f} ({label(r.peer_test_by)[13:]}) / {r.peer_aulc:.3f} / {r.peer_wall:.1f} | "
                     f"{yes(strict)} | {r.lbfgs_test_f1:.3f} / {r.lbfgs_aulc:.3f} / {r.lbfgs_wall:.1f} |")
    return "\n".join(lines) + "\n"


def budget_table(runs: pd.DataFrame) -> str:
    """Per model family: retrain and finetune at each budget, and the two effects (seed-paired)."""
    lines = ["| dataset | features | model | budget | retrain test F1 | finetune test F1 | warm-start effect on "
             "test F1 (finetune − retrain) | on AULC | finetune samples / retrain | budget effect on retrain "
             "test F1 (criterion − 5 epochs) | on AULC |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    hal = runs[~runs.learner.str.startswith("peer_")]
    for (features, dataset, family), part in hal.groupby(["features", "dataset", "family"], sort=False):
        if family in ("linearsvc", "linear C=1"):
            continue
        key = ["seed"]
        for budget, cell in part.groupby("budget", sort=False):
            rt = cell[cell.strategy == "retrain"].set_index(key)
            ft = cell[cell.strategy == "finetune"].set_index(key)
            seeds = rt.index.intersection(ft.index)
            warm_f1 = (ft.final_test_f1 - rt.final_test_f1).loc[seeds]
            warm_aulc = (ft.aulc - rt.aulc).loc[seeds]
            ratio = (ft.total_train_samples / rt.total_train_samples).loc[seeds]
            other = part[(part.budget != budget) & (part.strategy == "retrain")].set_index(key)
            if budget == "criterion" and not other.empty:
                s2 = rt.index.intersection(other.index)
                bud_f1 = fmt((rt.final_test_f1 - other.final_test_f1).loc[s2])
                bud_aulc = fmt((rt.aulc - other.aulc).loc[s2])
            else:
                bud_f1 = bud_aulc = "–"
            lines.append(f"| {NAMES.get(dataset, dataset)} | {features} | {family} | {budget} | "
                         f"{fmt(rt.final_test_f1)} | {fmt(ft.final_test_f1)} | {fmt(warm_f1)} | {fmt(warm_aulc)} | "
                         f"{fmt(ratio, 2)} | {bud_f1} | {bud_aulc} |")
    return "\n".join(lines) + "\n"


def report(results: Path, out: Path, command: str) -> None:
    frames = [pd.read_csv(p) for p in sorted(results.glob("runs_*.csv"))]
    runs = pd.concat(frames + [peer_rows(results)], ignore_index=True)
    runs = runs.drop_duplicates(["dataset", "features", "seed", "learner", "strategy"], keep="last")
    out.mkdir(parents=True, exist_ok=True)
    runs.to_csv(out / "runs.csv", index=False)
    goal, verdicts = goal_table(runs)
    verdicts.to_csv(out / "goal.csv", index=False)
    seeds = sorted(runs.seed.unique())
    units = runs.groupby(["features", "dataset"]).seed.nunique()
    header = (f"# CPU learners and the peer (issue 15)\n\n`{command}`, {time.strftime('%Y-%m-%d')}, "
              f"{platform.machine()}, {os.cpu_count()} cores (shared), Python {platform.python_version()}, "
              f"one thread per run. Seeds {', '.join(map(str, seeds))}; mean ± std over seeds, seconds as "
              "medians. Units: " + ", ".join(f"{d}/{f} ({n} seeds)" for (f, d), n in units.items()) + ".\n\n")
    body = (header + "## The goal: HAL's best CPU learner under retrain vs the best peer\n\n"
            + verdict_markdown(verdicts) + "\n## Every learner under retrain\n\n" + goal
            + "\n## Warm start vs training budget\n\n" + budget_table(runs))
    (out / "table.md").write_text(body)
    print(body)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--features", default="tfidf", choices=tuple(FEATURE_LEARNERS))
    p.add_argument("--learners", default="", help="comma list (default: all for the features)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--peer-python", default="/work/venvs/peer/bin/python",
                   help="python of an environment with small-text 1.4.1 (empty: no peer rows)")
    p.add_argument("--results", default=str(OUT_RESULTS))
    p.add_argument("--out", default=str(OUT_DOCS))
    p.add_argument("--report-only", action="store_true")
    args = p.parse_args(argv)
    results, out = Path(args.results), Path(args.out)
    command = "python bench/cpu_learners.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    if not args.report_only:
        data_dir = str(Path(args.data_dir).expanduser().resolve())
        seeds = [int(s) for s in args.seeds.split(",")]
        names = args.learners.split(",") if args.learners else FEATURE_LEARNERS[args.features]
        csv = results / f"runs_{args.features}.csv"
        results.mkdir(parents=True, exist_ok=True)
        done = set()
        if csv.exists():
            prev = pd.read_csv(csv)
            done = set(zip(prev.dataset, prev.seed, prev.learner, prev.strategy))
        for dataset in args.datasets.split(","):
            cfg = make_config(dict(AL, dataset=dataset, data_dir=data_dir, learner=args.features)).resolved()
            started = time.time()
            prepared = prepare(cfg)
            print(f"{dataset}/{args.features}: prepared in {time.time() - started:.0f}s", flush=True)
            folder = results / args.features / dataset
            if args.peer_python:
                npz, splits = export_job(dataset, args.features, seeds, prepared, data_dir, folder)
            # seed by seed, the peer's runs right before HAL's: their seconds are measured under
            # the same load on a shared machine
            for seed, split in zip(seeds, splits if args.peer_python else [None] * len(seeds)):
                for clf in PEERS if args.peer_python else ():
                    target = folder / f"peer_{clf}_s{seed}.jsonl"
                    if not target.exists():
                        run_peer(args.peer_python, npz, [split], clf, target.with_suffix(".tmp"))
                        target.with_suffix(".tmp").replace(target)
                for name in names:
                    for strategy in LEARNERS[name][3]:
                        if (dataset, seed, name, strategy) in done:
                            continue
                        row = run_one(dataset, args.features, seed, name, strategy, prepared, data_dir, results)
                        pd.DataFrame([row], columns=list(FIELDS)).to_csv(csv, mode="a", header=not csv.exists(),
                                                                         index=False)
                        print(f"{dataset}/{args.features} seed {seed} {name} {strategy}: test F1 "
                              f"{row['final_test_f1']:.3f} AULC {row['aulc']:.3f} wall {row['wall_s']:.1f}s "
                              f"passes {row['total_passes']}", flush=True)
            if args.peer_python:
                npz.unlink()  # large; the peer has read it
    report(results, out, command)
    print(f"reproduce: {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
