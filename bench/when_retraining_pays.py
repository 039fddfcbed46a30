"""When does retraining pay? Strategies, monitors and switch rules on four real datasets (issue 9).

For each dataset × learner × seed, in one process and without Ray, it runs the baselines (retrain,
finetune with 1-epoch warm rounds, new_only) and the hybrid with every monitor (``val``,
``holdout``, ``agreement``) and switch rule (``abs``, ``mean``) over a small ε × k grid, then
reports each configuration against retrain (same seeds): final validation and test macro-F1, AULC,
training samples, the monitor's label cost, and the cost/F1 and cost/AULC Pareto fronts (chosen on
validation scores; test is the outcome).

Shared prefixes: until it switches, a hybrid run *is* the retrain run with the same monitor and
seed. So each monitor's retrain trajectory runs once, every (rule, ε, k) trigger is replayed over
its signal series, and each distinct switch round forks a warm-started tail from that round's
snapshot. Every configuration still gets its complete records (prefix + tail) and its own cost, the
cost of running it alone; ``--verify`` checks one fork against an independent run.

    python bench/when_retraining_pays.py --data-dir ../shared/data                 # TF-IDF, 4 datasets
    python bench/when_retraining_pays.py --data-dir ../shared/data --learner embedding --datasets ag_news,banking77
    python bench/when_retraining_pays.py --report-only                              # tables + plots again
    python bench/when_retraining_pays.py --data-dir ../shared/data --head lbfgs --stop-set shared \
        --monitors val,agreement --results results/when_retraining_pays_lbfgs --out docs/when_retraining_pays_lbfgs

``--head`` picks what is trained over the features (``lbfgs``, ``mlp``: trained to a criterion, so
their warm rounds run to the same criterion and ``--warm-epochs`` does not apply); runs of a head
other than ``adamw`` are filed under ``<learner>-<head>``. ``--stop-set shared`` makes every run of a
seed hold out the same stop set, so retrain and the agreement hybrid query the same pool.

Results land in ``results/when_retraining_pays/`` (one folder per run with records.jsonl and
summary.json, plus ``runs.csv``, appended as units finish so a partial run is usable) and the
report in ``docs/when_retraining_pays/``.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import shlex
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

# One thread per process: on a shared 2-core machine two threads per process ran 3x slower.
torch.set_num_threads(int(os.environ.get("HAL_BENCH_THREADS", "1")))

from hal.core.config import make_config  # noqa: E402
from hal.core.errors import EXIT_USAGE, HalError  # noqa: E402
from hal.core.loop import ActiveLearningLoop  # noqa: E402
from hal.core.records import read_records, switch_signal, write_records, write_summary  # noqa: E402
from hal.core.switch import new_trigger, reflag, replay  # noqa: E402
from hal.data.inputs import prepare  # noqa: E402
from hal.runs.build import new_loop  # noqa: E402

DATASETS = ("ag_news", "imdb", "jigsaw", "banking77")
NAMES = {"ag_news": "AG News", "imdb": "IMDb", "jigsaw": "Jigsaw", "banking77": "BANKING77"}
# The seed study's AL settings on a CPU head (docs/benchmark.md).
AL = dict(initial_size=200, query_size=32, epochs=5, batch_size=16, query_strategy="entropy",
          pool_subset=1000, rounds=30)
BASELINES = {
    "retrain": dict(strategy="retrain", monitor="val"),
    "finetune_fe1": dict(strategy="finetune", finetune_epochs=1),
    "new_only": dict(strategy="new_only", finetune_epochs=5),
}
# The hybrids, grouped by monitor (each monitor is its own retrain trajectory): (rule, ε, k).
# ε is on the monitor's scale: ΔF1 for val/holdout, 1 − κ for agreement. ``mean`` uses window 3.
GRID = {
    "val": [("abs", e, k) for e in (0.01, 0.02, 0.04) for k in (1, 2, 3)]
           + [("mean", e, 1) for e in (0.005, 0.01, 0.02)],
    "holdout": [("abs", 0.02, 2), ("mean", 0.01, 1)],
    "agreement": [("abs", e, k) for e in (0.05, 0.1, 0.2, 0.3, 0.4) for k in (1, 2)]
                 + [("mean", e, 1) for e in (0.05, 0.1, 0.2, 0.3, 0.4)],
}
WINDOW = 3
# How the warm rounds of the heads in this process are described (set in main for a criterion head).
WARM_ROUNDS = "1-epoch warm rounds"
OUT_RESULTS = REPO / "results" / "when_retraining_pays"
OUT_DOCS = REPO / "docs" / "when_retraining_pays"
RUN_FIELDS = ("dataset", "learner", "seed", "name", "strategy", "monitor", "switch_rule", "epsilon", "k",
              "switch_round", "final_test_f1", "final_val_f1", "aulc", "total_train_samples",
              "total_train_time_s", "monitor_labels", "final_labeled")


def hybrid_name(monitor: str, rule: str, eps: float, k: int) -> str:
    return f"hybrid_{monitor}_{rule}_e{eps:g}_k{k}"


def run_unit(dataset: str, learner: str, seed: int, prepared, data_dir: str, out: Path,
             verify: bool = False, warm_epochs: int = 1, monitors: tuple[str, ...] = tuple(GRID),
             extra: dict | None = None, unit: str | None = None) -> list[dict]:
    """Every configuration of one (dataset, learner, seed); returns one summary row per config.
    ``warm_epochs`` != 1 runs a variant (names end in ``_fe<n>``): the hybrids' and finetune's warm
    rounds get that many epochs; retrain and new_only are not repeated."""
    base = dict(AL, dataset=dataset, data_dir=data_dir, learner=learner, seed=seed, **(extra or {}))
    unit = unit or learner  # the name runs are filed under (learner, or learner-head)
    rows = []
    suffix = "" if warm_epochs == 1 else f"_fe{warm_epochs}"

    def finish(name: str, loop: ActiveLearningLoop) -> None:
        summary = loop.summary()
        run_dir = out / unit / dataset / f"{name}_s{seed}"
        write_records(run_dir, loop.records)
        write_summary(run_dir, summary)
        cfg = loop.cfg
        rows.append(dict(dataset=dataset, learner=unit, seed=seed, name=name, strategy=cfg.strategy,
                         monitor=cfg.monitor, switch_rule=cfg.switch_rule if cfg.strategy == "hybrid" else "",
                         epsilon=cfg.epsilon if cfg.strategy == "hybrid" else np.nan,
                         k=cfg.k if cfg.strategy == "hybrid" else np.nan,
                         **{f: summary[f] for f in RUN_FIELDS[9:]}))

    for name in ("finetune_fe1", "new_only") if warm_epochs == 1 else ("finetune_fe1",):
        settings = dict(base, **BASELINES[name])
        if warm_epochs != 1:
            settings["finetune_epochs"] = warm_epochs
        loop = new_loop(make_config(settings).resolved(), prepared)
        for _ in loop:
            pass
        finish(name if warm_epochs == 1 else f"finetune_fe{warm_epochs}", loop)

    for monitor, grid in GRID.items():
        if monitor not in monitors:
            continue
        # The retrain trajectory of this monitor, a snapshot after every round.
        rcfg = make_config(dict(base, strategy="retrain", monitor=monitor)).resolved()
        trunk = new_loop(rcfg, prepared)
        snapshots = []
        for _ in trunk:
            snapshots.append(copy.deepcopy(trunk.checkpoint()))
        if monitor == "val" and warm_epochs == 1:
            finish("retrain", trunk)
        # the trajectory's own records (its signal series), for plots and for replaying other rules
        write_records(out / unit / dataset / f"trunk_{monitor}_s{seed}", trunk.records)
        tails: dict[int | None, ActiveLearningLoop] = {}
        for rule, eps, k in grid:
            hcfg = make_config(dict(base, strategy="hybrid", monitor=monitor, switch_rule=rule,
                                    switch_window=WINDOW, epsilon=eps, k=k, finetune_epochs=warm_epochs)).resolved()
            trigger = replay(new_trigger(hcfg), trunk.records)
            s = trigger.switch_round
            if s in tails:  # the same switch round: the same records, only the settings differ
                loop = tails[s]
                loop.cfg, loop.state.trigger = hcfg, trigger
            else:
                loop = tails[s] = fork(hcfg, prepared, snapshots, trigger)
            finish(hybrid_name(monitor, rule, eps, k) + suffix, loop)
            if verify and monitor == "val" and (rule, eps, k) == ("abs", 0.02, 2) and warm_epochs == 1:
                check = new_loop(hcfg, prepared)
                for _ in check:
                    pass
                a = [(r.val_f1, r.cum_train_samples, r.switched, r.mode) for r in loop.records]
                b = [(r.val_f1, r.cum_train_samples, r.switched, r.mode) for r in check.records]
                print(f"verify {dataset} seed {seed}: fork == independent run: {a == b} "
                      f"(switch round {trigger.switch_round})", flush=True)
                if a != b:
                    raise SystemExit("fork differs from an independent run")
    return rows


def fork(hcfg, prepared, snapshots: list[dict], trigger) -> ActiveLearningLoop:
    """The hybrid run of ``hcfg``: the trunk's rounds up to the switch, then its own tail
    (``ActiveLearningLoop.continue_from_fork``, as shared-prefix sweeps do); never switched, it is
    the trunk's run."""
    loop = new_loop(hcfg, prepared)
    s = trigger.switch_round
    if s is None:
        loop.restore(snapshots[-1], check_config=False)
        loop.state.trigger, loop.state.records = trigger, reflag(loop.state.records, None)
    else:
        loop.continue_from_fork(snapshots[s], s)
    for _ in loop:
        pass
    return loop


# ---------------------------------------------------------------------------------------------
# report


def label(name: str) -> str:
    if not name.startswith("hybrid_"):
        if name.startswith("finetune_fe"):
            n = name[len("finetune_fe"):]
            return f"finetune ({n}-epoch warm rounds)" if n != "1" else f"finetune ({WARM_ROUNDS})"
        return {"retrain": "retrain", "new_only": "new_only"}[name]
    _, monitor, rule, eps, k, *warm = name.split("_")
    extra = f", {warm[0][2:]}-epoch warm rounds" if warm else ""
    return f"hybrid {monitor} {rule} ε={eps[1:]} k={k[1:]}{extra}"


def trunks(results: Path) -> pd.DataFrame:
    """The retrain trajectory of each monitor (its records), summarised like a run."""
    from hal.core.records import aulc

    rows = []
    for path in sorted(results.glob("*/*/trunk_*_s*/records.jsonl")):
        recs = read_records(path)
        monitor, seed = path.parent.name[len("trunk_"):].rsplit("_s", 1)
        rows.append(dict(learner=path.parents[2].name, dataset=path.parents[1].name, monitor=monitor,
                         seed=int(seed), final_val_f1=recs[-1]["val_f1"], final_test_f1=recs[-1]["test_f1"],
                         aulc=aulc([r["labeled"] for r in recs], [r["val_f1"] for r in recs]),
                         total_train_samples=recs[-1]["cum_train_samples"]))
    return pd.DataFrame(rows)


def aggregate(runs: pd.DataFrame, trunk: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per dataset × learner × configuration: seed means/stds and ratios to retrain (same seeds);
    ``paired_*``: ratios to the retrain trajectory of the configuration's own monitor (same queries
    until the switch: the effect of switching alone, without the noise of different queries)."""
    out = []
    for (dataset, learner), part in runs.groupby(["dataset", "learner"], sort=False):
        retrain = part[part.name == "retrain"].set_index("seed")
        for name, cfg in part.groupby("name", sort=False):
            cfg = cfg.set_index("seed")
            seeds = cfg.index.intersection(retrain.index)
            if len(seeds) == 0:
                continue
            c, r = cfg.loc[seeds], retrain.loc[seeds]
            row = dict(dataset=dataset, learner=learner, name=name, label=label(name), seeds=len(seeds),
                       strategy=c.strategy.iloc[0], monitor=c.monitor.iloc[0],
                       switch_rule=c.switch_rule.iloc[0], epsilon=c.epsilon.iloc[0], k=c.k.iloc[0],
                       monitor_labels=c.monitor_labels.mean())
            for col in ("final_test_f1", "final_val_f1", "aulc", "total_train_samples"):
                row[col] = c[col].mean()
                row[col + "_std"] = c[col].std(ddof=1) if len(seeds) > 1 else np.nan
                ratio = c[col] / r[col]
                row[col + "_ratio"] = ratio.mean()
                row[col + "_ratio_std"] = ratio.std(ddof=1) if len(seeds) > 1 else np.nan
            if trunk is not None and not trunk.empty:
                own = trunk[(trunk.dataset == dataset) & (trunk.learner == learner)
                            & (trunk.monitor == (row["monitor"] if row["strategy"] == "hybrid" else "val"))]
                own = own.set_index("seed").reindex(seeds)
                for col in ("final_test_f1", "final_val_f1", "aulc"):
                    row["paired_" + col + "_ratio"] = (c[col] / own[col]).mean()
            sw = c.switch_round.astype(float)
            row["switch_rounds"] = ",".join("-" if np.isnan(v) else str(int(v)) for v in sw)
            out.append(row)
    table = pd.DataFrame(out)
    if table.empty:
        return table
    from analysis.pareto import front_by_group

    by = ("dataset", "learner")
    table["front_val_f1"] = front_by_group(table, "total_train_samples", "final_val_f1", by)
    table["front_aulc"] = front_by_group(table, "total_train_samples", "aulc", by)
    table["front_test_f1"] = front_by_group(table, "total_train_samples", "final_test_f1", by)
    table["meets_goal"] = ((table.final_test_f1_ratio >= 0.99) & (table.aulc_ratio >= 0.98)
                           & (table.total_train_samples_ratio <= 0.40))
    table["meets_goal_val"] = ((table.final_val_f1_ratio >= 0.99) & (table.aulc_ratio >= 0.98)
                               & (table.total_train_samples_ratio <= 0.40))
    return table


def selection(table: pd.DataFrame) -> pd.DataFrame:
    """Every hybrid configuration measured on every dataset × learner, ranked on VALIDATION scores:
    its worst case over the groups of final val F1 / retrain, AULC / retrain and samples / retrain,
    whether it meets the goal on validation everywhere, how many groups have it on both fronts.
    Test scores ride along as the outcome (never used to rank)."""
    groups = table.groupby(["dataset", "learner"]).ngroups
    rows = []
    for name, part in table[table.strategy == "hybrid"].groupby("name", sort=False):
        if len(part) < groups:
            continue
        rows.append(dict(
            name=name, label=part.label.iloc[0], monitor=part.monitor.iloc[0],
            min_val_f1_ratio=part.final_val_f1_ratio.min(), min_aulc_ratio=part.aulc_ratio.min(),
            max_samples_ratio=part.total_train_samples_ratio.max(),
            mean_samples_ratio=part.total_train_samples_ratio.mean(),
            goal_on_val=bool(part.meets_goal_val.all()),
            both_fronts=int((part.front_val_f1 & part.front_aulc).sum()), groups=len(part),
            min_test_f1_ratio=part.final_test_f1_ratio.min(), goal_on_test=bool(part.meets_goal.all()),
            monitor_labels=part.monitor_labels.max()))
    sel = pd.DataFrame(rows)
    if sel.empty:
        return sel
    # meets the goal everywhere first, then the largest worst-case margin to the goal's bars
    sel["margin"] = np.minimum.reduce([sel.min_val_f1_ratio - 0.99, sel.min_aulc_ratio - 0.98,
                                       0.40 - sel.max_samples_ratio])
    return sel.sort_values(["goal_on_val", "margin", "mean_samples_ratio"], ascending=[False, False, True])


def selection_markdown(sel: pd.DataFrame, top: int = 12) -> str:
    lines = ["| configuration | min val F1 / retrain | min AULC / retrain | max samples / retrain | "
             "goal met on val (all groups) | on both fronts (groups) | min test F1 / retrain | "
             "goal met on test | monitor labels (max) |", "|---|---|---|---|---|---|---|---|---|"]
    for _, r in sel.head(top).iterrows():
        lines.append(f"| {r.label} | {r.min_val_f1_ratio:.3f} | {r.min_aulc_ratio:.3f} | {r.max_samples_ratio:.3f} | "
                     f"{'yes' if r.goal_on_val else 'no'} | {r.both_fronts}/{r.groups} | {r.min_test_f1_ratio:.3f} | "
                     f"{'yes' if r.goal_on_test else 'no'} | {int(r.monitor_labels)} |")
    return "\n".join(lines) + "\n"


def fmt(mean: float, std: float, digits: int = 3) -> str:
    return f"{mean:.{digits}f}" + ("" if np.isnan(std) else f" ± {std:.{digits}f}")


def markdown(table: pd.DataFrame, names: list[str] | None = None) -> str:
    rows = table if names is None else table[table.name.isin(names)]
    lines = ["| dataset | learner | configuration | switch rounds (per seed) | test F1 | test F1 / retrain | "
             "val F1 / retrain | AULC / retrain | samples / retrain | monitor labels | fronts (val F1, AULC) | "
             "paired: test F1, val F1, AULC / own-trajectory retrain |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in rows.iterrows():
        fronts = ", ".join(n for n, f in (("F1", r.front_val_f1), ("AULC", r.front_aulc)) if f) or "–"
        lines.append(
            f"| {NAMES.get(r.dataset, r.dataset)} | {r.learner} | {r.label} | {r.switch_rounds} | "
            f"{fmt(r.final_test_f1, r.final_test_f1_std)} | {fmt(r.final_test_f1_ratio, r.final_test_f1_ratio_std)} | "
            f"{fmt(r.final_val_f1_ratio, r.final_val_f1_ratio_std)} | {fmt(r.aulc_ratio, r.aulc_ratio_std)} | "
            f"{r.total_train_samples_ratio:.3f} | {int(round(r.monitor_labels))} | {fronts} | "
            f"{r.get('paired_final_test_f1_ratio', np.nan):.3f}, {r.get('paired_final_val_f1_ratio', np.nan):.3f}, "
            f"{r.get('paired_aulc_ratio', np.nan):.3f} |")
    return "\n".join(lines) + "\n"


def plots(runs: pd.DataFrame, table: pd.DataFrame, out: Path, results: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for learner, lt in table.groupby("learner", sort=False):
        datasets = [d for d in DATASETS if d in set(lt.dataset)]
        for score, name in (("final_val_f1", "val F1"), ("aulc", "AULC")):
            fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.8), squeeze=False)
            for ax, dataset in zip(axes[0], datasets):
                part = lt[lt.dataset == dataset]
                for monitor, marker in (("val", "o"), ("holdout", "s"), ("agreement", "^")):
                    h = part[(part.strategy == "hybrid") & (part.monitor == monitor)]
                    ax.scatter(h.total_train_samples_ratio, h[score + "_ratio"], marker=marker, s=22,
                               alpha=0.7, label=f"hybrid, {monitor}")
                for base, color in (("retrain", "k"), ("finetune_fe1", "tab:red"), ("new_only", "tab:purple")):
                    b = part[part.name == base]
                    ax.scatter(b.total_train_samples_ratio, b[score + "_ratio"], marker="*", s=120,
                               color=color, label=label(base))
                front = part[part["front_" + ("val_f1" if score == "final_val_f1" else "aulc")]]
                front = front.sort_values("total_train_samples_ratio")
                ax.step(front.total_train_samples_ratio, front[score + "_ratio"], where="post", color="grey",
                        lw=1, label="Pareto front")
                ax.axhline(0.99 if score == "final_val_f1" else 0.98, color="grey", ls=":", lw=1)
                ax.axvline(0.40, color="grey", ls=":", lw=1)
                ax.set_title(f"{NAMES[dataset]} ({learner})")
                ax.set_xlabel("training samples / retrain")
                ax.set_ylabel(f"{name} / retrain")
            axes[0][0].legend(fontsize=7)
            fig.tight_layout()
            path = out / f"pareto_{score}_{learner}.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            written.append(path.name)
        # learning curves (val F1 per round, seed mean) of the baselines and default hybrids
        show = ["retrain", "finetune_fe1", "new_only", hybrid_name("val", "abs", 0.02, 2),
                hybrid_name("val", "mean", 0.01, 1), hybrid_name("agreement", "abs", 0.3, 2)]
        fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.8), squeeze=False)
        for ax, dataset in zip(axes[0], datasets):
            for name in show:
                curves = []
                for seed in sorted(runs[(runs.learner == learner) & (runs.dataset == dataset)].seed.unique()):
                    path = results / learner / dataset / f"{name}_s{seed}" / "records.jsonl"
                    if path.exists():
                        recs = read_records(path)
                        curves.append([r["val_f1"] for r in recs])
                if curves:
                    n = min(map(len, curves))
                    ax.plot(range(n), np.mean([c[:n] for c in curves], axis=0), label=label(name), lw=1.2)
            ax.set_title(f"{NAMES[dataset]} ({learner})")
            ax.set_xlabel("round")
            ax.set_ylabel("val macro-F1 (seed mean)")
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        path = out / f"learning_curves_{learner}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path.name)
        # the two signals on the retrain trajectory: ΔF1 (val) and 1 − κ (agreement)
        fig, axes = plt.subplots(2, len(datasets), figsize=(4.2 * len(datasets), 6.4), squeeze=False)
        for j, dataset in enumerate(datasets):
            for i, (monitor, what) in enumerate((("val", "ΔF1 on val"), ("agreement", "1 − κ on the stop set"))):
                ax = axes[i][j]
                for seed in sorted(runs[(runs.learner == learner) & (runs.dataset == dataset)].seed.unique()):
                    path = results / learner / dataset / f"trunk_{monitor}_s{seed}" / "records.jsonl"
                    if path.exists():
                        recs = read_records(path)
                        xs = [r["round"] for r in recs if switch_signal(r) is not None]
                        ys = [switch_signal(r) for r in recs if switch_signal(r) is not None]
                        ax.plot(xs, ys, lw=1, label=f"seed {seed}")
                ax.axhline(0, color="grey", lw=0.5)
                ax.set_title(f"{NAMES[dataset]} ({learner}): {what}", fontsize=9)
                ax.set_xlabel("round (retrain trajectory)")
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        path = out / f"signals_{learner}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path.name)
    return written


def report(results: Path, out: Path, command: str) -> pd.DataFrame:
    runs = pd.concat([pd.read_csv(p) for p in sorted(results.glob("runs*.csv"))], ignore_index=True)
    runs = runs.drop_duplicates(["dataset", "learner", "seed", "name"])
    table = aggregate(runs, trunks(results))
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "table.csv", index=False)
    seeds = sorted(runs.seed.unique())
    units = runs.groupby(["learner", "dataset"]).seed.nunique()
    header = (f"# When does retraining pay? (issue 9)\n\n`{command}`, {time.strftime('%Y-%m-%d')}, "
              f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}. "
              f"Seeds {', '.join(map(str, seeds))}; mean ± std over seeds; ratios against retrain "
              f"on the same seeds (mean of per-seed ratios). Units run: "
              + ", ".join(f"{d}/{lrn} ({n} seeds)" for (lrn, d), n in units.items()) + ".\n\n")
    sel = selection(table)
    sel.to_csv(out / "selection.csv", index=False)
    body = (header + "## Every configuration\n\n" + markdown(table)
            + "\n## Hybrid configurations ranked on validation (worst case over dataset × learner)\n\n"
            + selection_markdown(sel, top=len(sel))
            + "\n## Label-free (agreement) configurations ranked on validation\n\n"
            + selection_markdown(sel[sel.monitor == "agreement"], top=len(sel)))
    (out / "table.md").write_text(body)
    # headline: the baselines, today's defaults, and the configurations chosen on validation
    chosen = [sel.name.iloc[0]] if not sel.empty else []
    for monitor in ("agreement", "val"):
        part = sel[sel.monitor == monitor]
        if not part.empty:
            chosen.append(part.name.iloc[0])
    mean_rule = sel[sel.name.str.startswith("hybrid_val_mean_")]
    if not mean_rule.empty:
        chosen.append(mean_rule.name.iloc[0])
    names = ["retrain", "finetune_fe1", "new_only", hybrid_name("val", "abs", 0.02, 2),
             hybrid_name("holdout", "abs", 0.02, 2), *dict.fromkeys(chosen)]
    ordered = table.assign(order=table.name.map({n: i for i, n in enumerate(dict.fromkeys(names))}))
    ordered = ordered.dropna(subset=["order"]).sort_values(["learner", "dataset", "order"], kind="stable")
    (out / "headline.md").write_text(header + markdown(ordered) + "\nchosen on validation: "
                                     + ", ".join(label(n) for n in dict.fromkeys(chosen)) + "\n")
    written = plots(runs, table, out, results)
    print(header)
    print(f"written: {out}/table.md, table.csv, {', '.join(written)}")
    return table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--learner", default="tfidf", choices=("tfidf", "embedding"))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--results", default=str(OUT_RESULTS))
    p.add_argument("--out", default=str(OUT_DOCS))
    p.add_argument("--verify", action="store_true", help="check one fork against an independent run")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--warm-epochs", type=int, default=1, help="variant: epochs of warm rounds (names end in _fe<n>)")
    p.add_argument("--monitors", default=",".join(GRID), help="monitors whose hybrids to run")
    p.add_argument("--tag", default="", help="suffix of this process's runs CSV (parallel processes)")
    p.add_argument("--head", default="adamw", help="what is trained over the features (see python -m hal run)")
    p.add_argument("--C", type=float, default=None)
    p.add_argument("--tol", type=float, default=None)
    p.add_argument("--max-iter", type=int, default=None)
    p.add_argument("--stop-set", default="agreement", choices=("agreement", "shared"))
    args = p.parse_args(argv)
    extra = {k: v for k, v in (("head", args.head), ("C", args.C), ("tol", args.tol), ("max_iter", args.max_iter),
                               ("stop_set", args.stop_set)) if v is not None}
    unit = args.learner if args.head == "adamw" else f"{args.learner}-{args.head}"
    global WARM_ROUNDS
    if args.head in ("lbfgs", "mlp", "logreg", "sgd"):
        WARM_ROUNDS = "warm rounds to the criterion"
    results, out = Path(args.results), Path(args.out)
    command = "python bench/when_retraining_pays.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    try:
        if not args.report_only:
            data_dir = str(Path(args.data_dir).expanduser().resolve())
            results.mkdir(parents=True, exist_ok=True)
            csv = results / ("runs" + ("" if unit == "tfidf" else f"_{unit}")
                             + (f"_{args.tag}" if args.tag else "") + ".csv")
            done = set()
            for path in results.glob("runs*.csv") if args.warm_epochs == 1 else [csv]:
                if path.exists():
                    prev = pd.read_csv(path)
                    done |= set(zip(prev.dataset, prev.learner, prev.seed))
            seeds = [int(s) for s in args.seeds.split(",")]
            prepared = {}
            # seeds outside, datasets inside: a partial run covers every dataset with fewer seeds
            for seed in seeds:
                for dataset in args.datasets.split(","):
                    if (dataset, unit, seed) in done:
                        continue
                    if dataset not in prepared:
                        cfg = make_config(dict(AL, dataset=dataset, data_dir=data_dir,
                                               learner=args.learner, **extra)).resolved()
                        started = time.time()
                        prepared[dataset] = prepare(cfg)
                        print(f"{dataset}/{args.learner}: prepared in {time.time() - started:.0f}s", flush=True)
                    started = time.time()
                    rows = run_unit(dataset, args.learner, seed, prepared[dataset], data_dir, results,
                                    args.verify and seed == seeds[0], args.warm_epochs,
                                    tuple(args.monitors.split(",")), extra, unit)
                    frame = pd.DataFrame(rows, columns=list(RUN_FIELDS))
                    frame.to_csv(csv, mode="a", header=not csv.exists(), index=False)
                    print(f"{dataset}/{unit} seed {seed}: {len(rows)} configurations in "
                          f"{time.time() - started:.0f}s", flush=True)
    except HalError as exc:
        sys.stderr.write(f"when_retraining_pays.py: error: {exc}\n")
        return EXIT_USAGE
    report(results, out, command)
    print(f"reproduce: {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
