"""Our own per-round TensorBoard scalars and an HParams entry written when a run *starts*, so
runs are comparable in the HParams tab while they are still going (Ray's automatic TensorBoard
output files everything under ``ray/tune/`` and writes HParams only at trial end).

Every run also declares the HParams *experiment* (which hyperparameters are columns and which
metrics exist). TensorBoard lists the columns by name, those marked ``differs`` first, and the
page ticks the first five: the declaration marks strategy, ε, k, query size and seed (a sweep's
axes), so those are the columns a reader sees. All runs write the same declaration, so whichever
one TensorBoard reads first is right.

Tag names decide what the Time Series tab opens on: it groups tags by the part before the first
"/", orders the groups by a natural sort in which upper case comes first, and opens only the first
two. Hence ``F1/*`` (first) and ``cost/*`` (second, with the labeled count: labels are AL's own
cost); ``final/*`` and ``switch/*`` stay folded.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hal.core.records import RoundRecord

SCALARS = {
    "F1/val": "val_f1",
    "F1/monitor": "monitor_f1",
    "F1/delta": "delta_f1",
    "F1/test": "test_f1",
    "cost/train_time_s": "train_time_s",
    "cost/cum_train_time_s": "cum_train_time_s",
    "cost/train_samples": "train_samples",
    "cost/cum_train_samples": "cum_train_samples",
    "cost/query_time_s": "query_time_s",
    "cost/eval_time_s": "eval_time_s",
    "cost/labeled": "labeled",
    # The switch rule's state and, for the agreement monitor, its signal: κ is no F1 and its ε has
    # another scale, so it is not drawn beside the F1 curves (F1 monitors' signal is F1/delta).
    "switch/switched": "switched",
    "switch/kappa": "monitor_score",
    "switch/signal": "signal",
}
# (name, description): the columns of the HParams tab. TensorBoard sorts them by name, those
# declared `differs` first, and its page ticks the first five: SHOWN are the ones marked so.
HPARAMS = (
    ("strategy", "training strategy: retrain | finetune | new_only | hybrid"),
    ("epsilon", "hybrid: threshold of the switch signal, |ΔF1| or 1 − κ (empty for baselines)"),
    ("k", "hybrid: consecutive stable rounds before switching (empty for baselines)"),
    ("query_size", "examples queried per round"),
    ("seed", "run seed"),
    ("monitor", "hybrid: where ΔF1 is measured, val | holdout | agreement (empty for baselines)"),
    ("dataset", "dataset"),
    ("learner", "model backend"),
    ("head", "what is trained over tfidf/embedding features: adamw | lbfgs | mlp | logreg | linearsvc | sgd"),
    ("query_strategy", "acquisition function"),
    ("finetune_epochs", "epochs of warm-started rounds (empty for retrain)"),
    ("replay_fraction", "share of earlier labels replayed in warm rounds (empty for retrain)"),
)
SHOWN = ("strategy", "epsilon", "k", "query_size", "seed")
# Settings a run does not use are left out of its session, so their cells stay empty instead of
# showing a default that never acted (ε 0.02 and k 2 on a retrain row).
HYBRID_ONLY = ("epsilon", "k", "monitor")
WARM_ONLY = ("finetune_epochs", "replay_fraction")
# (tag, summary key, description): the metric columns. Validation scores choose; test is the outcome.
FINAL_METRICS = (
    ("final/val_f1", "final_val_f1", "final validation macro-F1 (chooses)"),
    ("final/aulc", "aulc", "area under the validation-F1 vs labeled curve (chooses)"),
    ("final/train_samples", "total_train_samples", "total training samples (exact cost)"),
    ("final/train_time_s", "total_train_time_s", "total training seconds (noisy cost)"),
    ("final/test_f1", "final_test_f1", "final test macro-F1 (outcome, not for choosing)"),
    # sixth: a column of the table, not ticked on the page (which ticks five)
    ("final/query_time_s", "total_query_time_s", "total seconds spent choosing examples (query cost)"),
)


def hparams_of(config: dict[str, Any]) -> dict[str, Any]:
    """The HParams values of one run: every declared hyperparameter the run uses, in the types
    TensorBoard accepts (numbers, strings, bools); the ones it does not use are absent."""
    strategy = config.get("strategy")
    unused = set()
    if strategy != "hybrid":
        unused.update(HYBRID_ONLY)
    if strategy == "retrain":
        unused.update(WARM_ONLY)
    if config.get("learner") == "transformer":
        unused.add("head")  # the transformer has no head setting
    values = {}
    for name, _ in HPARAMS:
        value = config.get(name)
        if name in unused or value is None:
            continue
        values[name] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return values


def hparams_summaries(config: dict[str, Any], trial_id: str | None = None) -> list:
    """Summary protos: the experiment declaration and this run's session start info."""
    from tensorboard.plugins.hparams import summary_v2 as hp

    session = hp.hparams_pb(hparams_of(config), trial_id=trial_id, start_time_secs=time.time())
    return [_experiment_summary(), session]


def _experiment_summary():
    """The HParams experiment: its columns and metrics. ``hp.hparams_config_pb`` cannot mark a
    column ``differs``, and TensorBoard orders and ticks by that mark, so the proto is built here."""
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
    from tensorboard.plugins.hparams import summary_v2 as hp

    experiment = api_pb2.Experiment(
        hparam_infos=[api_pb2.HParamInfo(name=name, description=text, differs=name in SHOWN)
                      for name, text in HPARAMS],
        metric_infos=[hp.Metric(tag, display_name=tag.split("/", 1)[1], description=text).as_proto()
                      for tag, _, text in FINAL_METRICS],
        time_created_secs=time.time())
    return _hparams_summary(metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment))


def _session_end_summary():
    """Marks the session finished (the HParams tab shows its status)."""
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    info = plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS, end_time_secs=time.time())
    return _hparams_summary(metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=info))


def _hparams_summary(tag: str, data):
    """A summary holding one HParams plugin message under ``tag``."""
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import metadata

    summary = summary_pb2.Summary()
    summary.value.add(tag=tag, metadata=metadata.create_summary_metadata(data), tensor=metadata.NULL_TENSOR)
    return summary


class RoundWriter:
    """Writes one run's rounds to TensorBoard as they arrive (step = round)."""

    def __init__(self, log_dir: Path, config: dict[str, Any], write_hparams: bool = True) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir), flush_secs=5)
        self.tags = dict(SCALARS)
        # Duplicates clutter the Scalars tab: the monitor F1 *is* the val F1 with the val monitor
        # (and for baselines, which have no switch), and a test F1 measured only in the last round
        # is a single dot that final/test_f1 already shows.
        if config.get("monitor", "val") == "val" or config.get("strategy") != "hybrid":
            del self.tags["F1/monitor"]
        if not config.get("eval_test_every_round"):
            del self.tags["F1/test"]
        if config.get("strategy") != "hybrid":
            del self.tags["switch/switched"]  # always 0: only the hybrid switches
        if config.get("strategy") != "hybrid" or config.get("monitor") != "agreement":
            del self.tags["switch/kappa"], self.tags["switch/signal"]
        if write_hparams:
            for summary in hparams_summaries(config, trial_id=Path(log_dir).name):
                self.writer.file_writer.add_summary(summary)

    def log(self, *records: RoundRecord) -> None:
        """Scalars of rounds (flushed once, so TensorBoard shows them as they arrive); null values
        (ΔF1 in round 0, test F1 mid-run) are skipped."""
        for record in records:
            values = record.to_dict()
            for tag, field in self.tags.items():
                if values[field] is not None:
                    self.writer.add_scalar(tag, values[field], global_step=record.round)
        self.writer.flush()

    def finish(self, summary: dict[str, Any]) -> None:
        """The final metrics the HParams tab shows for this run, and the session's end."""
        step = summary["rounds"] - 1
        for tag, key, _ in FINAL_METRICS:
            if summary.get(key) is not None:
                self.writer.add_scalar(tag, summary[key], global_step=step)
        self.writer.file_writer.add_summary(_session_end_summary())
        self.writer.close()
