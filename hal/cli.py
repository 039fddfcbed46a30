"""``python -m hal run``: one active-learning run from a YAML config and/or flags, no Ray needed."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Sequence

from hal.config import RunConfig, config_from_yaml, make_config
from hal.errors import EXIT_USAGE, HalError
from hal.records import RECORDS_FILE, SUMMARY_FILE, RoundRecord

FIELD_HELP = {
    "dataset": "synthetic, ag_news, imdb, jigsaw, or a directory with train/test .parquet/.csv",
    "data_dir": "directory holding <dataset>/train.parquet and test.parquet (or set HAL_DATA_DIR)",
    "learner": "tfidf | embedding | transformer",
    "model": "transformer checkpoint or embedding encoder: hub name or local path",
    "strategy": "retrain | finetune | new_only | hybrid",
    "epsilon": "hybrid: |ΔF1| below this counts as stable (default 0.02)",
    "k": "hybrid: switch after this many consecutive stable rounds (default 2)",
    "monitor": "hybrid's ΔF1 source: val | holdout",
    "query_strategy": "random | entropy | margin | least_confidence",
    "pool_subset": "score only a random subset of this many pool examples (0 = whole pool)",
    "rounds": "rounds in total, round 0 (initial set) included",
    "finetune_epochs": "epochs of warm-started rounds (default: 1 for hybrid, else --epochs)",
    "finetune_lr": "learning rate of warm-started rounds (default: --lr)",
    "lr": "learning rate (default: 2e-5 transformer, 1e-2 heads)",
    "early_stop_patience": "stop a round after this many epochs without training-loss gain (0 = off)",
    "shrink": "warm start: scale previous weights by this (shrink-and-perturb)",
    "perturb": "warm start: add this times a freshly initialised model's weights",
    "replay_fraction": "finetune rounds replay this fraction of the earlier labeled set",
    "hidden_size": "heads: hidden units of the MLP head (0 = linear)",
    "device": "auto | cpu | cuda",
}


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2 (used by every HAL command)."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse hook
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        sys.exit(EXIT_USAGE)


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
    run.add_argument("--quiet", action="store_true", help="no per-round lines")
    add_config_flags(run)
    return parser


def format_record(r: RoundRecord) -> str:
    """The one line printed per round."""
    delta = "     —" if r.delta_f1 is None else f"{r.delta_f1:+.4f}"
    test = "" if r.test_f1 is None else f" | test F1 {r.test_f1:.4f}"
    flag = " *switched*" if r.switched else ""
    return (f"round {r.round:3d} | labeled {r.labeled:6d} | {r.mode:8s} | val F1 {r.val_f1:.4f} | "
            f"ΔF1 {delta} | train {r.train_time_s:6.2f}s (cum {r.cum_train_time_s:7.2f}s){test}{flag}")


def prepare_out_dir(out: Path, resume: bool) -> None:
    """Refuse to overwrite results; check the directory is writable before any work."""
    has_ckpt = (out / "checkpoint.pt").exists()
    if (out / SUMMARY_FILE).exists():
        raise HalError(f"--out {out} already holds a finished run: choose another --out or delete it")
    if resume and not has_ckpt:
        raise HalError(f"--resume: {out} has no checkpoint.pt to continue from: drop --resume to start anew")
    if not resume and (has_ckpt or (out / RECORDS_FILE).exists()):
        raise HalError(f"--out {out} holds an unfinished run: pass --resume to continue it, "
                       "or choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write_test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise HalError(f"--out {out} is not writable ({exc.strerror}): choose a directory you can "
                       "write to") from None


def run_command(args: argparse.Namespace) -> int:
    """``run``: resolve the config and the output directory, then run."""
    overrides = config_overrides(args)
    cfg = config_from_yaml(args.config, overrides) if args.config else make_config(overrides)
    cfg = cfg.resolved()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or f"runs/{Path(cfg.dataset).name}-{cfg.strategy}-{stamp}").expanduser()
    created = not out.exists()
    prepare_out_dir(out, args.resume)
    try:
        return _run(cfg, out, args)
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # a failure before the first round leaves nothing behind
        raise


def _run(cfg: RunConfig, out: Path, args: argparse.Namespace) -> int:
    from hal.loop import ActiveLearningLoop
    from hal.prepare import prepare
    from hal.run_files import RunFiles

    prepared = prepare(cfg)
    loop = ActiveLearningLoop(cfg, prepared)
    if args.resume:
        loop.load(out)
    name = prepared.corpus.name + (" (synthetic)" if prepared.corpus.synthetic else "")
    print(f"HAL run: {name}, {cfg.learner} learner, strategy {cfg.strategy}, seed {cfg.seed} -> {out}")
    for record in loop.records:
        if not args.quiet:
            print(format_record(record) + "  (restored)")
    files = RunFiles(out, cfg.to_dict(), fresh=not args.resume)
    for record in loop:
        files.round(loop, record)
        loop.save(out)
        if not args.quiet:
            print(format_record(record), flush=True)
    summary = files.finish(loop)
    switch = summary["switch_round"]
    print(f"done: final test F1 {summary['final_test_f1']:.4f}, AULC {summary['aulc']:.4f}, "
          f"train {summary['total_train_time_s']:.1f}s / {summary['total_train_samples']} samples"
          + (f", switched after round {switch}" if switch is not None else "")
          + f"\nresults: {out / RECORDS_FILE}, {out / SUMMARY_FILE}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m hal``; user errors exit with code 2 and one line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return run_command(args)
    except HalError as exc:
        sys.stderr.write(f"hal: error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("hal: interrupted; finished rounds are saved, continue with --resume\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
