"""The active-learning loop, runnable without Ray.

Each round queries (after round 0), trains according to the strategy, evaluates and yields one
``RoundRecord``. All randomness is derived from (seed, round, purpose), so a loop restored from a
checkpoint after any round continues exactly as an uninterrupted one would. The loop is given its
corpus and learner (``hal.runs.build`` makes both from a config).

Over 300 lines: the loop and the split helpers (initial set, stop set, ``split_indices``) stay
in one module because they share its seeding, so one file holds every source of a run's randomness.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from hal.core.checkpoint import CHECKPOINT_FILE, damaged_checkpoint, read_checkpoint, save_checkpoint
from hal.core.config import RunConfig
from hal.core.corpus import Corpus
from hal.core.errors import HalError
from hal.core.learner import Learner
from hal.core.metrics import macro_f1, prediction_agreement, predictions
from hal.core.query.registry import check_learner, select
from hal.core.records import RoundRecord, summarize
from hal.core.strategies import NEW_ONLY, RETRAIN, round_mode
from hal.core.identity import PATH_KEYS, RULE_KEYS, WARM_START_KEYS
from hal.core.switch import SwitchTrigger, new_trigger, reflag, replay

# Settings a fork's retrain run and the hybrid continuing it may differ in (see hal.core.identity).
PREFIX_FREE = {"strategy", *RULE_KEYS, *WARM_START_KEYS, *PATH_KEYS}
# Purposes keep the random streams of one round independent of each other.
_INITIAL, _QUERY, _HOLDOUT, _REPLAY, _FIT, _PERTURB, _STOP_SET = range(7)


def _rng(seed: int, round_index: int, purpose: int) -> np.random.Generator:
    return np.random.default_rng([seed, round_index, purpose])


def _seed(seed: int, round_index: int, purpose: int) -> int:
    return int(np.random.SeedSequence([seed, round_index, purpose]).generate_state(1)[0] >> 1)


def holds_stop_set(cfg: RunConfig) -> bool:
    """Whether a run holds out the unlabeled stop set: the ``agreement`` monitor always does, and
    every run with ``stop_set`` ``shared`` (so runs of one seed query the same pool)."""
    return cfg.monitor == "agreement" or cfg.stop_set == "shared"


def initial_set(cfg: RunConfig, corpus: Corpus) -> np.ndarray:
    """The round-0 labeled set of a run of ``cfg`` on ``corpus`` (corpus row indices, draw order)."""
    return _rng(cfg.seed, 0, _INITIAL).choice(corpus.pool, size=cfg.initial_size, replace=False)


def stop_set(cfg: RunConfig, corpus: Corpus, initial: np.ndarray) -> np.ndarray:
    """The stop set (sorted corpus row indices) drawn after ``initial`` (``initial_set``), so that
    the initial set is the same with or without one. Empty when the run holds none."""
    if not holds_stop_set(cfg):
        return np.zeros(0, dtype=np.int64)
    rest = np.setdiff1d(corpus.pool, initial)
    stop = _rng(cfg.seed, 0, _STOP_SET).choice(rest, size=min(cfg.stop_set_size, len(rest)), replace=False)
    return np.sort(stop).astype(np.int64)


@dataclass
class SplitIndices:
    """What a run of one seed starts from, as corpus row indices (rows: the train file's rows in
    order, then the test file's): the pool AL queries from, the validation and test splits, the
    round-0 labeled set and the stop set (empty when the run holds none). Enough for another tool
    to run the same job (``python -m hal export-split`` writes it)."""

    pool: np.ndarray
    val: np.ndarray
    test: np.ndarray
    initial: np.ndarray
    stop_set: np.ndarray


def split_indices(cfg: RunConfig, corpus: Corpus) -> SplitIndices:
    """The ``SplitIndices`` of a run of ``cfg`` (its seed, sizes and stop-set setting) on ``corpus``."""
    initial = initial_set(cfg, corpus)
    return SplitIndices(pool=corpus.pool, val=corpus.val, test=corpus.test,
                        initial=np.asarray(initial, dtype=np.int64), stop_set=stop_set(cfg, corpus, initial))


@dataclass
class LoopState:
    """Everything besides the model weights that a resumed run needs."""

    next_round: int = 0
    labeled: list[int] = field(default_factory=list)
    monitor: list[int] = field(default_factory=list)
    trigger: SwitchTrigger | None = None
    records: list[RoundRecord] = field(default_factory=list)
    # ``agreement`` monitor: the unlabeled stop set (never queried, never trained on) and the
    # previous round's hard predictions on it
    stop_set: list[int] = field(default_factory=list)
    stop_predictions: list | None = None


class ActiveLearningLoop:
    """One AL run of ``cfg`` on ``corpus`` with ``learner`` (at its initial weights); iterate it
    to run the remaining rounds."""

    def __init__(self, cfg: RunConfig, corpus: Corpus, learner: Learner) -> None:
        self.cfg = cfg
        self.corpus = corpus
        check_sizes(cfg, corpus)
        self.learner = learner
        check_learner(cfg.query_strategy, learner, f"the {cfg.learner} learner")
        self.state = LoopState(trigger=new_trigger(cfg))

    @property
    def done(self) -> bool:
        return self.state.next_round >= self.cfg.rounds

    @property
    def records(self) -> list[RoundRecord]:
        return self.state.records

    def __iter__(self) -> Iterator[RoundRecord]:
        while not self.done:
            yield self.run_round()

    def run_round(self) -> RoundRecord:
        """Query (after round 0), train, evaluate; return the round's record."""
        cfg, corpus, state = self.cfg, self.corpus, self.state
        t = state.next_round
        new, held, query_time = self._query(t)
        state.monitor.extend(int(i) for i in held)
        old = np.asarray(state.labeled, dtype=np.int64)
        state.labeled.extend(int(i) for i in new)
        labeled = np.asarray(state.labeled, dtype=np.int64)

        mode = round_mode(cfg.strategy, t, state.trigger.switched)
        if mode == RETRAIN:
            self.learner.reset()
            train_idx, epochs, lr = labeled, cfg.epochs, cfg.lr
        else:
            self.learner.warm_start(cfg.shrink, cfg.perturb, _seed(cfg.seed, t, _PERTURB))
            train_idx = new if mode == NEW_ONLY else np.concatenate([new, self._replay(t, old)])
            epochs, lr = cfg.finetune_epochs, cfg.finetune_lr
        fit = self.learner.fit(train_idx, corpus.labels[train_idx], epochs, lr,
                               seed=_seed(cfg.seed, t, _FIT), patience=cfg.early_stop_patience)

        start = time.perf_counter()
        val_f1 = self._f1(corpus.val)
        prev = state.records[-1] if state.records else None
        if cfg.monitor == "agreement":
            score, signal = self._agreement()  # κ with the previous model, and 1 − κ
        else:
            score = val_f1 if cfg.monitor == "val" else self._f1(np.asarray(state.monitor))
            signal = None if prev is None or prev.monitor_score is None else score - prev.monitor_score
        is_f1 = cfg.monitor != "agreement"
        last = t == cfg.rounds - 1
        test_f1 = self._f1(corpus.test) if (last or cfg.eval_test_every_round) else None
        eval_time = time.perf_counter() - start

        switched = cfg.strategy == "hybrid" and state.trigger.update(t, signal)
        record = RoundRecord(
            round=t, labeled=len(labeled), queried=0 if t == 0 else len(new) + len(held), mode=mode,
            switched=int(switched), val_f1=val_f1, monitor_f1=score if is_f1 else None,
            delta_f1=signal if is_f1 else None, monitor_score=score, signal=signal,
            test_f1=test_f1, train_time_s=fit.seconds,
            cum_train_time_s=(prev.cum_train_time_s if prev else 0.0) + fit.seconds,
            train_samples=fit.samples,
            cum_train_samples=(prev.cum_train_samples if prev else 0) + fit.samples,
            query_time_s=query_time, eval_time_s=eval_time, monitor_size=len(state.monitor),
            held_out=len(held), epochs_run=fit.epochs_run,
            fit_converged=None if fit.converged is None else int(fit.converged))
        state.records.append(record)
        state.next_round = t + 1
        return record

    def _query(self, t: int) -> tuple[np.ndarray, np.ndarray, float]:
        """The examples added this round for training and those held back for monitoring."""
        cfg, corpus = self.cfg, self.corpus
        start = time.perf_counter()
        if t == 0:
            chosen = initial_set(cfg, corpus)
            fraction_of = cfg.initial_size
            # drawn after the initial set, which so stays the same with or without a stop set
            self.state.stop_set = [int(i) for i in stop_set(cfg, corpus, chosen)]
        else:
            taken = np.concatenate([self.state.labeled, self.state.monitor,
                                    self.state.stop_set]).astype(np.int64)
            unlabeled = np.setdiff1d(corpus.pool, taken, assume_unique=True)
            chosen = select(cfg.query_strategy, unlabeled, np.asarray(self.state.labeled, dtype=np.int64),
                            cfg.query_size, _rng(cfg.seed, t, _QUERY), self.learner,
                            multilabel=corpus.multilabel, pool_subset=cfg.pool_subset)
            fraction_of = len(chosen)
        query_time = 0.0 if t == 0 else time.perf_counter() - start
        if cfg.monitor != "holdout":
            return np.asarray(chosen, dtype=np.int64), np.zeros(0, dtype=np.int64), query_time
        # Held-back examples feed the monitor set only: they are never trained on.
        n_held = max(1, round(fraction_of * cfg.holdout_fraction))
        is_held = np.zeros(len(chosen), dtype=bool)
        is_held[_rng(cfg.seed, t, _HOLDOUT).choice(len(chosen), size=n_held, replace=False)] = True
        return (np.asarray(chosen[~is_held], dtype=np.int64),
                np.asarray(chosen[is_held], dtype=np.int64), query_time)

    def _replay(self, t: int, old: np.ndarray) -> np.ndarray:
        """The part of the earlier labeled set a warm-started ``finetune`` round trains on again."""
        if self.cfg.replay_fraction >= 1.0:
            return old
        size = int(round(len(old) * self.cfg.replay_fraction))
        return np.sort(_rng(self.cfg.seed, t, _REPLAY).choice(old, size=size, replace=False))

    def _agreement(self) -> tuple[float | None, float | None]:
        """Cohen's κ between this round's and the previous round's predictions on the stop set,
        and the change signal 1 − κ the switch rule thresholds; ``(None, None)`` in round 0."""
        stop = np.asarray(self.state.stop_set, dtype=np.int64)
        current = predictions(self.learner.predict_proba(stop), self.corpus.multilabel)
        previous, self.state.stop_predictions = self.state.stop_predictions, current.tolist()
        if previous is None:
            return None, None
        kappa = prediction_agreement(np.asarray(previous), current, self.corpus.multilabel)
        return kappa, 1.0 - kappa

    def _f1(self, idx: np.ndarray) -> float:
        if len(idx) == 0:
            return float("nan")
        return macro_f1(self.corpus.labels[idx], self.learner.predict_proba(idx), self.corpus.multilabel)

    def summary(self) -> dict[str, Any]:
        """The DESIGN.md run summary (call once the run is done)."""
        return run_summary(self.cfg, self.corpus, self.state.records)

    def continue_from_fork(self, ckpt: dict[str, Any], switch_round: int) -> None:
        """Take the state of the retrain run ``ckpt`` was saved from after ``switch_round``, as this
        hybrid's own: the same queries, weights and records (flagged as switched from
        ``switch_round``), and this run's trigger replayed on them. ``HalError`` when the fork is
        not this run's prefix (other data or settings, another round, another switch round)."""
        differ = sorted(k for k in {*ckpt["config"], *self.cfg.to_dict()}
                        if k not in PREFIX_FREE and ckpt["config"].get(k) != self.cfg.to_dict().get(k))
        if differ or ckpt["next_round"] != switch_round + 1:
            raise HalError(f"the fork after round {switch_round} is not this run's prefix (it differs in "
                           f"{', '.join(differ) or 'its round'})")
        self.restore(ckpt, check_config=False)
        trigger = replay(new_trigger(self.cfg), self.state.records)
        if trigger.switch_round != switch_round:
            raise HalError(f"this run switches after round {trigger.switch_round}, not {switch_round}, on "
                           "the fork's records")
        self.state.trigger = trigger
        self.state.records = reflag(self.state.records, switch_round)

    # --- checkpoints -------------------------------------------------------------------------

    def checkpoint(self) -> dict[str, Any]:
        """Loop state + current weights as plain types and tensors (loads with weights_only)."""
        state = self.state
        return {
            "config": self.cfg.to_dict(),
            "next_round": state.next_round,
            "labeled": list(state.labeled),
            "monitor": list(state.monitor),
            "trigger": dataclasses.asdict(state.trigger),
            "records": [r.to_dict() for r in state.records],
            "stop_set": list(state.stop_set),
            "stop_predictions": state.stop_predictions,
            "model": self.learner.state_dict(),
        }

    def restore(self, ckpt: dict[str, Any], check_config: bool = True) -> None:
        """Continue from ``checkpoint()`` output taken after any round. ``check_config=False``
        takes another run's state (a shared-prefix fork: see ``hal.sweep.prefix``)."""
        if check_config and ckpt["config"] != self.cfg.to_dict():
            changed = sorted(k for k, v in ckpt["config"].items() if self.cfg.to_dict().get(k) != v)
            raise HalError(f"checkpoint was written with a different config ({', '.join(changed)}): "
                           "resume with the same settings or start a new --out")
        self.state = LoopState(next_round=ckpt["next_round"], labeled=list(ckpt["labeled"]),
                               monitor=list(ckpt["monitor"]), trigger=SwitchTrigger(**ckpt["trigger"]),
                               records=[RoundRecord.from_dict(r) for r in ckpt["records"]],
                               stop_set=list(ckpt.get("stop_set", [])),
                               stop_predictions=ckpt.get("stop_predictions"))
        self.learner.load_state_dict(ckpt["model"])

    def save(self, directory: Path) -> None:
        """Write ``checkpoint.pt`` atomically into ``directory``."""
        save_checkpoint(self.checkpoint(), directory)

    def load(self, directory: Path) -> None:
        """Restore from ``directory/checkpoint.pt``; a damaged file is a ``HalError`` that says
        how to start over."""
        path = Path(directory) / CHECKPOINT_FILE
        ckpt = read_checkpoint(path)
        try:
            self.restore(ckpt)
        except HalError:
            raise
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:  # wrong keys or shapes
            raise damaged_checkpoint(path, f"not a HAL run state: {type(exc).__name__}") from None


def monitor_labels(cfg: RunConfig, corpus: Corpus, records: list[RoundRecord]) -> int:
    """Labels the switch monitor consumes: the validation split for a hybrid on ``val`` (labels a
    real AL user would have to buy), the examples held back for ``holdout`` (any strategy: they are
    never trained on), none for ``agreement`` or for a strategy that never switches."""
    if cfg.monitor == "holdout":
        return records[-1].monitor_size if records else 0
    if cfg.monitor == "val" and cfg.strategy == "hybrid":
        return len(corpus.val)
    return 0


def run_summary(cfg: RunConfig, corpus: Corpus, records: list[RoundRecord]) -> dict[str, Any]:
    """The DESIGN.md summary of a finished run, from its records alone (no learner needed: a
    shared-prefix copy writes it for records another trial computed)."""
    summary = summarize(records, cfg.to_dict())
    summary["dataset"] = corpus.name
    summary["monitor_labels"] = monitor_labels(cfg, corpus, records)
    summary["synthetic"] = corpus.synthetic
    return summary


def check_sizes(cfg: RunConfig, corpus: Corpus) -> None:
    """Raise ``HalError`` when the pool cannot supply the initial set and every query."""
    pool = len(corpus.pool)
    if cfg.initial_size > pool:
        raise HalError(f"initial_size {cfg.initial_size} is larger than the pool ({pool} examples): "
                       "lower --initial-size")
    if not corpus.multilabel and cfg.initial_size < corpus.num_classes:
        raise HalError(f"initial_size {cfg.initial_size} is smaller than the number of classes "
                       f"({corpus.num_classes}): raise --initial-size")
    needed = cfg.initial_size + (cfg.rounds - 1) * cfg.query_size
    if holds_stop_set(cfg):
        if needed + cfg.stop_set_size > pool:
            owner = "the agreement monitor's" if cfg.monitor == "agreement" else "the shared"
            raise HalError(f"{owner} stop set ({cfg.stop_set_size}) plus "
                           f"{cfg.initial_size} initial and {cfg.rounds - 1} x {cfg.query_size} queried "
                           f"examples need {needed + cfg.stop_set_size} pool examples but the pool has "
                           f"{pool}: lower --stop-set-size, --rounds or --query-size")
    if needed > pool:
        fit = 1 + (pool - cfg.initial_size) // cfg.query_size
        raise HalError(f"{cfg.rounds} rounds of {cfg.query_size} after {cfg.initial_size} initial "
                       f"examples need {needed} pool examples but the pool has {pool}: use at most "
                       f"--rounds {fit} or a smaller --query-size")
