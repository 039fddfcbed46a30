"""``python -m hal run``: one active-learning run from a YAML config and/or flags, no Ray needed.

Over 300 lines because the command's flags, its rules for the output folder (resume, restart,
lock, unwritable paths) and its messages are read together; the run itself is ``hal.runs.build``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import stat
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Iterator, Sequence

from hal.core.checkpoint import CHECKPOINT_FILE, read_checkpoint
from hal.core.config import RunConfig, config_from_yaml, make_config
from hal.core.errors import EXIT_USAGE, HalError, OneLineParser
from hal.core.paths import path_error, readable_dir, writable_dir
from hal.core.records import RECORDS_FILE, SUMMARY_FILE, RoundRecord
from hal.core.requirements import require_torch
from hal.runs.lock import folder_lock

FIELD_HELP = {
    "dataset": "synthetic, ag_news, imdb, jigsaw, banking77, or a directory with train/test .parquet/.csv",
    "data_dir": "directory holding <dataset>/train.parquet and test.parquet (or set HAL_DATA_DIR)",
    "learner": "tfidf | embedding | transformer",
    "model": "transformer checkpoint or embedding encoder: hub name or local path",
    "strategy": "retrain | finetune | new_only | hybrid",
    "epsilon": "hybrid: a monitor signal below this counts as stable (default: 0.02 for ΔF1 on "
               "val/holdout, 0.3 for 1 - kappa on agreement)",
    "k": "hybrid: switch after this many consecutive stable rounds (default 2)",
    "monitor": "hybrid's switch signal: val | holdout (ΔF1, costs labels) | agreement (1 - Cohen's "
               "kappa of consecutive models on an unlabeled stop set, label-free)",
    "switch_rule": "abs: |signal| < epsilon (DESIGN.md) | mean: |mean of the last --switch-window "
                   "signals| < epsilon",
    "switch_window": "rounds averaged by --switch-rule mean (default 3)",
    "stop_set_size": "agreement monitor: unlabeled pool examples set aside, never queried (default 1000)",
    "query_strategy": "random | entropy | margin | least_confidence | badge | coreset | bald (needs "
                      "dropout) | cal | embedding_kmeans (docs/query_strategies.md)",
    "pool_subset": "query from a random subset of this many pool examples (0 = whole pool; random "
                   "sampling always draws from the whole pool)",
    "rounds": "rounds in total, round 0 (initial set) included",
    "finetune_epochs": "epochs of warm-started rounds (default: 1 for hybrid, else --epochs)",
    "finetune_lr": "learning rate of warm-started rounds (default: --lr)",
    "lr": "learning rate (default: 2e-5 transformer, 1e-2 heads)",
    "early_stop_patience": "stop a round after this many epochs without training-loss gain (0 = off)",
    "shrink": "warm start: scale previous weights by this (shrink-and-perturb)",
    "perturb": "warm start: add this times a freshly initialised model's weights",
    "replay_fraction": "finetune rounds replay this fraction of the earlier labeled set",
    "hidden_size": "heads: hidden units of the MLP head (0 = linear; --head mlp: 0 = 512)",
    "dropout": "adamw/mlp heads: dropout on the hidden layer, in training and for bald's MC samples (0 = none)",
    "head": "what is trained over tfidf/embedding features: adamw (fixed --epochs) | lbfgs (linear, "
            "to --tol) | mlp (to a loss --tol) | logreg | linearsvc | sgd (scikit-learn)",
    "C": "lbfgs, logreg, linearsvc: inverse L2 strength, as scikit-learn's C (lbfgs default 100)",
    "tol": "lbfgs: gradient tolerance relative to zero weights (1e-2); mlp: training-loss target "
           "(0.03); scikit-learn heads: the estimator's tol",
    "max_iter": "lbfgs: iteration cap (500); mlp: epoch cap (200); scikit-learn heads: the estimator's",
    "stop_set": "agreement: only the agreement monitor holds out the stop set | shared: every run does "
                "(runs of one seed query the same pool)",
    "device": "auto | cpu | cuda",
}


def add_config_flags(parser: argparse.ArgumentParser, skip: Sequence[str] = ()) -> None:
    """One ``--flag`` per ``RunConfig`` field; unset flags stay ``None`` so config files win."""
    for f in fields(RunConfig):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                                help=FIELD_HELP.get(f.name))
        else:
            parser.add_argument(flag, dest=f.name, default=None, metavar=f.name.upper(),
                                help=FIELD_HELP.get(f.name, f"default: {f.default}"))


def config_overrides(args: argparse.Namespace) -> dict:
    """The config fields given on the command line."""
    names = {f.name for f in fields(RunConfig)}
    return {k: v for k, v in vars(args).items() if k in names and v is not None}


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m hal", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    run = sub.add_parser("run", help="run one active-learning experiment",
                         description="Run one AL experiment; writes records.jsonl, summary.json and "
                                     "a per-round checkpoint.pt to --out.")
    run.add_argument("--config", help="YAML file of run settings; flags override it")
    run.add_argument("--out", help="output directory (default: runs/<dataset>-<strategy>-<time>)")
    run.add_argument("--resume", action="store_true", help="continue the unfinished run in --out")
    run.add_argument("--restart", action="store_true",
                     help="discard the run in --out, unfinished or finished (its records.jsonl, "
                          "summary.json, checkpoint.pt and TensorBoard events), and start it over, "
                          "e.g. after a damaged checkpoint")
    run.add_argument("--quiet", action="store_true", help="no per-round lines")
    add_config_flags(run)
    export = sub.add_parser("export-split", help="write a run's split, initial set and stop set as JSON",
                            description="Write the pool, validation and test rows, the seeded initial "
                                        "set and the stop set (with --stop-set shared or --monitor "
                                        "agreement) of a run of these settings, and the labels, to "
                                        "one JSON file: what another tool needs to run the same job.")
    export.add_argument("--config", help="YAML file of run settings; flags override it")
    export.add_argument("--out", required=True, help="JSON file to write")
    add_config_flags(export)
    return parser


def export_command(args: argparse.Namespace) -> int:
    """``export-split``: load the dataset and write the indices of a run of these settings."""
    from hal.data.datasets import load_corpus
    from hal.runs.export_split import write_split

    overrides = config_overrides(args)
    cfg = (config_from_yaml(args.config, overrides) if args.config else make_config(overrides)).resolved()
    out = Path(args.out).expanduser()
    if out.is_dir():
        raise HalError(f"--out {str(out)!r} is a folder: pass the JSON file to write")
    corpus = load_corpus(cfg)
    try:
        record = write_split(cfg, corpus, out)
    except OSError as exc:
        raise path_error("--out", out, exc, "choose a file you can write") from None
    print(f"{corpus.name} seed {cfg.seed}: pool {len(record['pool'])}, val {len(record['val'])}, "
          f"test {len(record['test'])}, initial {len(record['initial'])}, stop set "
          f"{len(record['stop_set'])} -> {out}")
    return 0


def format_record(r: RoundRecord, monitor: str = "val") -> str:
    """The one line printed per round; the switch signal is ΔF1, or 1 − κ for ``agreement``."""
    name = "1−κ" if monitor == "agreement" else "ΔF1"
    delta = "     —" if r.signal is None else f"{r.signal:+.4f}"
    test = "" if r.test_f1 is None else f" | test F1 {r.test_f1:.4f}"
    # Printed once, on the round after which the switch was decided (it trained as retrain);
    # the rounds after it say "finetune" in the mode column.
    flag = f" *switch: fine-tuning from round {r.round + 1}*" if r.switched and r.mode == "retrain" else ""
    return (f"round {r.round:3d} | labeled {r.labeled:6d} | {r.mode:8s} | val F1 {r.val_f1:.4f} | "
            f"{name} {delta} | train {r.train_time_s:6.2f}s (cum {r.cum_train_time_s:7.2f}s) | "
            f"query {r.query_time_s:5.2f}s{test}{flag}")


def prepare_out_dir(out: Path, resume: bool, restart: bool = False) -> None:
    """Refuse to overwrite results; check the directory is readable and writable before any work.

    ``resume`` continues an unfinished run (its checkpoint must load); ``restart`` discards a
    run, finished or not. The caller holds the folder's lock.
    """
    if resume and restart:
        raise HalError("--resume and --restart exclude each other: --resume continues the run in "
                       "--out, --restart discards it and starts over")
    fix = "choose another --out, or fix the folder's permissions"
    _check_out_path(out, fix)
    has_ckpt = (out / CHECKPOINT_FILE).exists()
    if (out / SUMMARY_FILE).exists():
        if not restart:
            raise HalError(f"--out {out} already holds a finished run: choose another --out, or "
                           "pass --restart to discard it and run again")
        discard_run(out)
        has_ckpt = False
    if resume and not has_ckpt:
        raise HalError(f"--resume: {out} has no checkpoint.pt to continue from: drop --resume to start anew")
    if resume:
        read_checkpoint(out / CHECKPOINT_FILE)  # a damaged checkpoint fails now, not after loading data
    elif has_ckpt or (out / RECORDS_FILE).exists():
        if not restart:
            raise HalError(f"--out {out} holds an unfinished run: pass --resume to continue it, "
                           "--restart to discard it and start over, or choose another --out")
        discard_run(out)
    writable_dir(out, "--out", "choose a directory you can write to")


def _check_out_path(out: Path, fix: str) -> None:
    """``out`` must be an enterable folder, or a path that can become one."""
    try:
        mode = os.stat(out).st_mode
    except FileNotFoundError:
        return  # writable_dir creates it (and reports a parent it cannot create)
    except OSError as exc:
        raise path_error("--out", out, exc, fix) from None
    if not stat.S_ISDIR(mode):
        raise HalError(f"--out {str(out)!r} is a file, not a folder: {fix}")
    readable_dir(out, "--out", fix)


def discard_run(out: Path) -> None:
    """Delete the files a run wrote in ``out`` (and only those), for ``--restart``. The summary
    goes first: without it the folder no longer looks finished if a later delete fails."""
    names = (SUMMARY_FILE, CHECKPOINT_FILE, f".{CHECKPOINT_FILE}.tmp", RECORDS_FILE)
    doomed = [out / n for n in names] + sorted(out.glob("events.out.tfevents.*"))
    try:
        for path in doomed:
            path.unlink(missing_ok=True)
    except OSError as exc:
        raise path_error("--out", out, exc, "delete its summary.json, records.jsonl and checkpoint.pt "
                         "by hand or choose another --out") from None


def check_inputs(cfg: RunConfig) -> None:
    """What can be checked before any work: the device, and the cache folder of learners that
    use one (tokens, embeddings)."""
    from hal.core.device import resolve_device

    resolve_device(cfg.device)
    if cfg.learner in ("embedding", "transformer") and cfg.cache_dir:
        writable_dir(cfg.cache_dir, "--cache-dir",
                     "pass --cache-dir with a folder you can write to (or set HAL_CACHE_DIR)")


def run_command(args: argparse.Namespace) -> int:
    """``run``: resolve the config and the output directory, then run."""
    require_torch()  # torch is the user's choice of build, not a pip requirement (setup.cfg)
    overrides = config_overrides(args)
    cfg = config_from_yaml(args.config, overrides) if args.config else make_config(overrides)
    cfg = cfg.resolved()
    check_inputs(cfg)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or f"runs/{Path(cfg.dataset).name}-{cfg.strategy}-{stamp}").expanduser()
    created = not os.path.lexists(out)
    _check_out_path(out, "choose another --out, or fix the folder's permissions")
    try:
        # One writer per --out: taken before any file in it is read or written, held to the end.
        with folder_lock(out, what="run", flag="--out"):
            prepare_out_dir(out, args.resume, args.restart)
            return _run(cfg, out, args)
    except BaseException:
        if created:
            _remove_if_empty(out)  # a failure before the first round leaves nothing behind
        raise


def _remove_if_empty(out: Path) -> None:
    try:
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()
    except OSError:
        pass  # e.g. the folder became unreadable: the error being raised says so already


def _run(cfg: RunConfig, out: Path, args: argparse.Namespace) -> int:
    from hal.data.inputs import prepare
    from hal.runs.build import new_loop
    from hal.runs.output import RunFiles

    try:
        prepared = prepare(cfg)
    except OSError as exc:  # e.g. a cache file that cannot be written
        raise path_error("path", exc.filename or cfg.cache_dir, exc,
                         "check the permissions of --cache-dir and the dataset files") from None
    loop = new_loop(cfg, prepared)
    if args.resume:
        loop.load(out)
    name = prepared.corpus.name + (" (synthetic)" if prepared.corpus.synthetic else "")
    print(f"HAL run: {name}, {cfg.learner} learner, strategy {cfg.strategy}, seed {cfg.seed} -> {out}")
    for record in loop.records:
        if not args.quiet:
            print(format_record(record, cfg.monitor) + "  (restored)")
    with _writing(out, loop):
        files = RunFiles(out, cfg.to_dict(), fresh=not args.resume)
    for record in loop:
        with _writing(out, loop):
            files.round(loop.records, record)
            loop.save(out)
        if not args.quiet:
            print(format_record(record, cfg.monitor), flush=True)
    with _writing(out, loop):
        summary = files.finish(loop.summary())
    switch = summary["switch_round"]
    print(f"done: final test F1 {summary['final_test_f1']:.4f}, AULC {summary['aulc']:.4f}, "
          f"train {summary['total_train_time_s']:.1f}s / {summary['total_train_samples']} samples"
          + (f", switched after round {switch}" if switch is not None else "")
          + f"\nresults: {out / RECORDS_FILE}, {out / SUMMARY_FILE}")
    return 0


@contextlib.contextmanager
def _writing(out: Path, loop) -> Iterator[None]:
    """Turn a failed write to ``out`` (made unwritable, full, removed) into one line naming the
    path and the rounds that are safe: every write is atomic, so the files keep finished rounds."""
    try:
        yield
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        outside = exc.filename and Path(exc.filename).parent != out  # not one of our own files
        where = f", writing {exc.filename}" if outside else ""
        done = _saved_rounds(out)
        kept = (f"rounds 0-{done - 1} are saved in {out / CHECKPOINT_FILE} and {RECORDS_FILE}"
                if done else "no round was saved yet")
        raise HalError(f"cannot write to --out {str(out)!r} ({reason}{where}): {kept}; make it "
                       "writable again (or free space) and continue with --resume") from None


def _saved_rounds(out: Path) -> int:
    """How many rounds the checkpoint in ``out`` holds (0 if none can be read)."""
    try:
        return int(read_checkpoint(out / CHECKPOINT_FILE)["next_round"])
    except (HalError, OSError, KeyError, TypeError, ValueError):
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m hal``; user errors exit with code 2 and one line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return export_command(args) if args.command == "export-split" else run_command(args)
    except HalError as exc:
        sys.stderr.write(f"hal: error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write(("hal: interrupted" if args.command == "export-split"
                          else _interrupted_message(args)) + "\n")
        return 130


def _interrupted_message(args: argparse.Namespace) -> str:
    """What Ctrl-C leaves behind, truthfully: resumable rounds, or nothing to resume."""
    if getattr(args, "out", None) is None:
        return ("hal: interrupted; if a round finished, continue with --resume --out DIR (DIR as printed "
                "after '->' above); if none finished, nothing was saved and there is nothing to resume")
    out = Path(args.out).expanduser()
    done = _saved_rounds(out)
    if not done:
        return ("hal: interrupted before the first round finished: nothing was saved, so there is "
                "nothing to resume; start the run again")
    return (f"hal: interrupted; rounds 0-{done - 1} are saved in {out}: continue with --resume --out {out} "
            "and the same settings")


if __name__ == "__main__":
    sys.exit(main())
