"""Do HAL's query strategies pick what small-text's pick? (issue 22)

For each dataset × features × seed, HAL runs a retrain trajectory (entropy sampling, the seed
study's settings) and, after rounds ``ROUNDS``, freezes one query: ``CANDIDATES`` random unlabeled
pool examples, the labeled set, and the model's probabilities, representation (the input of its
output layer) and, where it has dropout, 10 MC-dropout samples of all of them. Every strategy of
HAL and of small-text 1.4.1 then chooses a batch of 32 from exactly these arrays (HAL's through a
stand-in learner that returns them, small-text's in its own environment through a stand-in
classifier: bench/peer_query_small_text.py), with the same integer seed where a strategy draws
random numbers. Agreement = |HAL's batch ∩ small-text's batch| / 32.

Deterministic strategies should agree exactly. Where HAL departs from small-text on purpose the
report says how and measures it: CAL (HAL searches neighbours in the labeled set as the paper does;
small-text among all examples — HAL's scores over small-text's neighbour set are checked too) and
BADGE (small-text's gradient embedding and seeding differ; its random state cannot be seeded, so
two of its own calls are compared as well, and HAL with two seeds).

    python -m venv /work/venvs/peer && /work/venvs/peer/bin/pip install small-text==1.4.1 scikit-learn torch
    python bench/query_agreement.py --data-dir ../shared/data --peer-python /work/venvs/peer/bin/python

Writes ``results/query_agreement/`` (the cases and the peer's picks) and
``docs/query_strategies/agreement.md`` + ``agreement.csv``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
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
from hal.core.learner import Representation  # noqa: E402
from hal.core.query.bald import SAMPLES  # noqa: E402
from hal.core.query.cal import cal_scores  # noqa: E402
from hal.core.query.geometry import GradientEmbedding, gradient_scale, unit_rows  # noqa: E402
from hal.core.query.registry import STRATEGIES  # noqa: E402
from hal.core.query.request import Query  # noqa: E402
from hal.data.inputs import prepare  # noqa: E402
from hal.runs.build import new_loop  # noqa: E402

DATASETS = ("banking77", "ag_news")
NAMES = {"ag_news": "AG News", "banking77": "BANKING77"}
UNITS = {"tfidf-lbfgs": dict(learner="tfidf", head="lbfgs"),
         "embedding-lbfgs": dict(learner="embedding", head="lbfgs"),
         "embedding-mlp-dropout0.1": dict(learner="embedding", head="mlp", dropout=0.1)}
COMPARED = ("entropy", "margin", "least_confidence", "coreset", "embedding_kmeans", "cal", "badge")
ROUNDS = (1, 15)
CANDIDATES = 2000
SIZE = 32
# small-text's BADGE materialises (candidates, classes × features) float64: beyond this it is not run
PEER_BADGE_LIMIT = 2e9  # bytes
OUT_RESULTS = REPO / "results" / "query_agreement"
OUT_DOCS = REPO / "docs" / "query_strategies"


class Frozen:
    """A stand-in learner answering from one round's arrays (positions into the case)."""

    def __init__(self, probs, embedding, mc=None) -> None:
        self.probs, self.embedding, self.mc, self.calls = probs, embedding, mc, 0
        self.has_dropout = mc is not None

    def predict_proba(self, idx, dropout_seed=None):
        if dropout_seed is None:
            return self.probs[idx]
        self.calls += 1
        return self.mc[self.calls - 1][idx]

    def represent(self, idx):
        return Representation(self.probs[idx], self.embedding[idx])


def freeze(loop, rng: np.random.Generator, with_dropout: bool) -> dict:
    """One query of ``loop``'s current model: candidates (random unlabeled pool rows) then labeled."""
    corpus, labeled = loop.corpus, np.asarray(loop.state.labeled)
    unlabeled = np.setdiff1d(corpus.pool, labeled)
    candidates = np.sort(rng.choice(unlabeled, size=min(CANDIDATES, len(unlabeled)), replace=False))
    rows = np.concatenate([candidates, labeled])
    rep = loop.learner.represent(rows)
    case = {"rows": rows, "n_unlabeled": len(candidates), "probs": rep.probs.astype(np.float64),
            "embedding": rep.embedding.astype(np.float64)}
    if with_dropout:
        case["mc"] = np.stack([loop.learner.predict_proba(rows, dropout_seed=1000 + t) for t in range(SAMPLES)]
                              ).astype(np.float64)
    return case


def hal_picks(case: dict, strategy: str, seed: int) -> list[int]:
    """HAL's batch (positions in the case) for ``case``, from ``np.random.default_rng(seed)``."""
    learner = Frozen(case["probs"], case["embedding"], case.get("mc"))
    n_u = case["n_unlabeled"]
    q = Query(np.arange(n_u), np.arange(n_u, len(case["rows"])), SIZE, np.random.default_rng(seed), learner, False)
    return sorted(int(i) for i in STRATEGIES[strategy].pick(q))


def random_state_seed(seed: int) -> int:
    """The integer HAL's ``Query.random_state`` seeds its RandomState with (its first draw)."""
    return int(np.random.default_rng(seed).integers(2**31 - 1))


def write_case(path: Path, case: dict, strategy: str, seed: int) -> None:
    arrays = {"probs": case["probs"], "n_unlabeled": case["n_unlabeled"], "size": SIZE,
              "seed": random_state_seed(seed), "strategy": strategy}
    emb = case["embedding"]
    if sp.issparse(emb):
        emb = emb.tocsr()
        arrays.update(emb_data=emb.data, emb_indices=emb.indices, emb_indptr=emb.indptr,
                      emb_shape=np.array(emb.shape))
    else:
        arrays["embedding"] = emb
    if "mc" in case:
        arrays["mc"] = case["mc"]
    np.savez(path, **arrays)


def _entropy(probs: np.ndarray) -> np.ndarray:
    return -(probs * np.log(np.clip(probs, 1e-12, 1))).sum(axis=1)


def overlap(a: list[int], b: list[int]) -> float:
    return len(set(a) & set(b)) / SIZE


def badge_embedding_check(case: dict) -> dict:
    """small-text 1.4.1's ``get_badge_embeddings`` formula (−p in every class block, the plain
    representation for two classes) against the loss gradient HAL uses, on this case's rows."""
    probs, emb = case["probs"][:200], case["embedding"][:200]
    emb = emb.toarray() if sp.issparse(emb) else emb
    ours = GradientEmbedding(gradient_scale(probs, False), emb).materialize()
    k = probs.shape[1]
    theirs = emb if k == 2 else (-probs[:, :, None] * emb[:, None, :]).reshape(len(emb), -1)
    predicted = probs.argmax(1)
    blocks = np.arange(k)[None, :] == predicted[:, None]
    if k == 2:
        return {"badge_embedding": "plain representation (no gradient) for 2 classes"}
    o, t = ours.reshape(len(emb), k, -1), theirs.reshape(len(emb), k, -1)
    return {"other_blocks_equal_up_to_sign": bool(np.allclose(o[~blocks], -t[~blocks])),
            "predicted_block_max_abs_diff": float(np.abs(o[blocks] - t[blocks]).max())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--peer-python", help="python of an environment with small-text 1.4.1 (not for --report-only)")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--results", default=str(OUT_RESULTS))
    p.add_argument("--out", default=str(OUT_DOCS))
    p.add_argument("--report-only", action="store_true", help="the report again from the saved picks")
    args = p.parse_args(argv)
    results, out = Path(args.results), Path(args.out)
    results.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    command = "python bench/query_agreement.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    if args.report_only:
        report(results, out, command)
        return 0
    data_dir = str(Path(args.data_dir).expanduser().resolve())
    rows, cases = [], []
    for dataset in DATASETS:
        for unit, settings in UNITS.items():
            base = dict(dataset=dataset, data_dir=data_dir, initial_size=200, query_size=32, rounds=max(ROUNDS) + 1,
                        pool_subset=1000, query_strategy="entropy", strategy="retrain", **settings)
            prepared = prepare(make_config(base).resolved())
            for seed in map(int, args.seeds.split(",")):
                loop = new_loop(make_config(dict(base, seed=seed)).resolved(), prepared)
                for record in loop:
                    if record.round not in ROUNDS:
                        continue
                    case = freeze(loop, np.random.default_rng([seed, record.round]), "dropout" in settings)
                    strategies = ("bald",) if "dropout" in settings else COMPARED
                    for strategy in strategies:
                        name = f"{dataset}_{unit}_s{seed}_r{record.round}_{strategy}"
                        info = dict(case=name, dataset=dataset, unit=unit, seed=seed, round=record.round,
                                    strategy=strategy, candidates=case["n_unlabeled"],
                                    labeled=len(case["rows"]) - case["n_unlabeled"])
                        info["hal"] = hal_picks(case, strategy, seed)
                        if strategy == "badge":
                            info["hal_other_seed"] = hal_picks(case, strategy, seed + 100)
                            info["entropy_candidates"] = float(_entropy(case["probs"][:case["n_unlabeled"]]).mean())
                            info["entropy_hal"] = float(_entropy(case["probs"][info["hal"]]).mean())
                            info.update(badge_embedding_check(case))
                            width = case["probs"].shape[1] * case["embedding"].shape[1]
                            if case["n_unlabeled"] * width * 8 > PEER_BADGE_LIMIT:
                                info["peer_skipped"] = (f"small-text would materialise {case['n_unlabeled']:,} x "
                                                        f"{width:,} float64 = {case['n_unlabeled'] * width * 8 / 1e9:.1f} GB")
                        if strategy == "embedding_kmeans" and sp.issparse(case["embedding"]):
                            # small-text cannot take sparse rows here (np.matmul): it gets them dense
                            info["hal_dense"] = hal_picks({**case, "embedding": case["embedding"].toarray()},
                                                          strategy, seed)
                        if strategy == "cal":  # HAL's scores over small-text's neighbour set
                            n_u = case["n_unlabeled"]
                            emb = unit_rows(case["embedding"])
                            scores = cal_scores(emb[:n_u], case["probs"][:n_u], emb, case["probs"], False)
                            info["hal_with_peer_neighbours"] = sorted(np.argsort(-scores, kind="stable")[:SIZE].tolist())
                        if "peer_skipped" not in info:
                            write_case(results / f"{name}.npz", case, strategy, seed)
                            cases.append(results / f"{name}.npz")
                        rows.append(info)
                    print(f"{dataset}/{unit} seed {seed} round {record.round}: frozen", flush=True)
    (results / "hal.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (results / "command.txt").write_text(command + "\n")
    started = time.time()
    subprocess.run([args.peer_python, str(REPO / "bench" / "peer_query_small_text.py"), *map(str, cases),
                    "--out", str(results / "peer.jsonl")], check=True)
    print(f"peer: {len(cases)} cases in {time.time() - started:.0f}s", flush=True)
    report(results, out, command)
    return 0


def report(results: Path, out: Path, command: str) -> None:
    """agreement.md and agreement.csv from HAL's picks (hal.jsonl) and the peer's (peer.jsonl)."""
    rows = [json.loads(line) for line in (results / "hal.jsonl").read_text().splitlines()]
    command = (results / "command.txt").read_text().strip() if (results / "command.txt").exists() else command
    cases = {row["case"]: np.load(results / f"{row['case']}.npz") for row in rows
             if row["strategy"] == "badge" and (results / f"{row['case']}.npz").exists()}
    peer_out = results / "peer.jsonl"
    peer: dict[str, list[list[int]]] = {}
    for line in peer_out.read_text().splitlines():
        record = json.loads(line)
        peer.setdefault(record["case"], []).append(record["picks"])
    table = []
    for info in rows:
        theirs = peer.get(info["case"])
        row = {k: v for k, v in info.items() if not isinstance(v, list)}
        row["agreement"] = overlap(info["hal"], theirs[0]) if theirs else np.nan
        if "hal_with_peer_neighbours" in info and theirs:
            row["agreement_hal_scores_peer_neighbours"] = overlap(info["hal_with_peer_neighbours"], theirs[0])
        if "hal_dense" in info and theirs:
            row["agreement_hal_on_dense_rows"] = overlap(info["hal_dense"], theirs[0])
        if info["case"] in cases and theirs:
            row["entropy_peer"] = float(_entropy(cases[info["case"]]["probs"][theirs[0]]).mean())
        if "hal_other_seed" in info:
            row["hal_vs_hal_other_seed"] = overlap(info["hal"], info["hal_other_seed"])
            if theirs:
                row["peer_vs_peer_second_call"] = overlap(theirs[0], theirs[1])
        table.append(row)
    frame = pd.DataFrame(table)
    frame.to_csv(out / "agreement.csv", index=False)
    (out / "agreement.md").write_text(agreement_markdown(frame, command))
    print((out / "agreement.md").read_text())


def agreement_markdown(frame: pd.DataFrame, command: str) -> str:
    head = (f"# Agreement with small-text's query strategies (issue 22)\n\n`{command}`, {time.strftime('%Y-%m-%d')}, "
            f"{platform.machine()}, Python {platform.python_version()}; small-text 1.4.1 in its own environment. "
            f"{len(frame)} frozen queries: {CANDIDATES:,} random unlabeled candidates + the labeled set after rounds "
            f"{', '.join(map(str, ROUNDS))} of an entropy retrain run, seeds {', '.join(map(str, sorted(frame.seed.unique())))}; "
            f"batch {SIZE}. "
            "Agreement = shared picks / 32 (mean, min over cases).\n\n")
    lines = ["| strategy | learner | cases | agreement with small-text (mean, min) | notes |", "|---|---|---|---|---|"]
    for (strategy, unit), g in frame.groupby(["strategy", "unit"], sort=False):
        notes = []
        if "agreement_hal_scores_peer_neighbours" in g and g.agreement_hal_scores_peer_neighbours.notna().any():
            notes.append(f"HAL's scores over small-text's neighbour set: {g.agreement_hal_scores_peer_neighbours.mean():.3f} "
                         f"(min {g.agreement_hal_scores_peer_neighbours.min():.3f})")
        if "agreement_hal_on_dense_rows" in g and g.agreement_hal_on_dense_rows.notna().any():
            notes.append("small-text needs the TF-IDF rows dense; HAL on the same dense rows: "
                         f"{g.agreement_hal_on_dense_rows.mean():.3f} (min {g.agreement_hal_on_dense_rows.min():.3f})")
        both = g[g.agreement.notna()]  # the cases small-text ran: like against like
        if "entropy_hal" in g and g.entropy_hal.notna().any() and len(both):
            notes.append(f"mean prediction entropy of the picks ({len(both)} cases both ran): HAL "
                         f"{both.entropy_hal.mean():.3f}, small-text {both.entropy_peer.mean():.3f}, all candidates "
                         f"{both.entropy_candidates.mean():.3f}")
        if "hal_vs_hal_other_seed" in g and g.hal_vs_hal_other_seed.notna().any() and len(both):
            notes.append(f"HAL vs HAL with another seed: {both.hal_vs_hal_other_seed.mean():.3f}")
        if "peer_vs_peer_second_call" in g and g.peer_vs_peer_second_call.notna().any():
            notes.append(f"small-text vs its own second call: {g.peer_vs_peer_second_call.mean():.3f}")
        if "peer_skipped" in g and g.peer_skipped.notna().any():
            notes.append(f"small-text not run on {int(g.peer_skipped.notna().sum())} case(s): {g.peer_skipped.dropna().iloc[0]}")
        if "predicted_block_max_abs_diff" in g and g.predicted_block_max_abs_diff.notna().any():
            notes.append("small-text's gradient embedding: other class blocks = −HAL's (a sign) "
                         f"{'in every case' if g.other_blocks_equal_up_to_sign.all() else 'NOT in every case'}; "
                         f"predicted-class block differs by up to {g.predicted_block_max_abs_diff.max():.3f}")
        if "badge_embedding" in g and g.badge_embedding.notna().any():
            notes.append(f"small-text: {g.badge_embedding.dropna().iloc[0]}")
        agree = g.agreement.dropna()
        cell = f"{agree.mean():.3f}, {agree.min():.3f}" if len(agree) else "–"
        lines.append(f"| {strategy} | {unit} | {len(g)} | {cell} | {'; '.join(notes)} |")
    return head + "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
