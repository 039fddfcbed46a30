"""The AL loop: strategy semantics, the hybrid switch, the record schema, determinism, resume."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hal.core.config import make_config
from hal.core.errors import HalError
from hal.core.loop import ActiveLearningLoop
from hal.core.records import TIMING_FIELDS
from hal.core.switch import SwitchTrigger
from hal.data.inputs import Prepared
from hal.data.tfidf import tfidf_features
from hal.learners.head import HeadLearner
from hal.runs.build import new_loop


def _cfg(**kw):
    base = dict(dataset="toy", learner="tfidf", initial_size=30, query_size=10, rounds=6, epochs=3,
                batch_size=16, seed=3, lr=0.05)
    base.update(kw)
    return make_config(base).resolved()


class SpyLearner(HeadLearner):
    """Records what every fit call started from and trained on."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.calls = []

    def fit(self, idx, y, epochs, lr, seed, patience=0):
        start = {k: v.clone() for k, v in self.model.state_dict().items()}
        result = super().fit(idx, y, epochs, lr, seed, patience)
        end = {k: v.clone() for k, v in self.model.state_dict().items()}
        self.calls.append({"idx": np.array(idx), "epochs": epochs, "lr": lr, "start": start, "end": end})
        return result


def _spy(cfg, prepared):
    c = prepared.corpus
    return SpyLearner(prepared.features, c.num_classes, multilabel=c.multilabel, hidden_size=cfg.hidden_size,
                      seed=cfg.seed, batch_size=cfg.batch_size, weight_decay=cfg.weight_decay)


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def _run(cfg, prepared, learner=None):
    loop = new_loop(cfg, prepared) if learner is None else ActiveLearningLoop(cfg, prepared.corpus, learner)
    return loop, list(loop)


# --- switch trigger on hand-made ΔF1 sequences --------------------------------------------------

@pytest.mark.parametrize("deltas, eps, k, expected", [
    ([None, 0.05, 0.001, 0.002, 0.0], 0.01, 2, 3),          # stable in rounds 2 and 3 -> decided at 3
    ([None, 0.001, 0.02, 0.001, 0.001], 0.01, 2, 4),        # an unstable round resets the count
    ([None, 0.01, 0.01, 0.01, 0.01], 0.01, 1, None),        # exactly ε is not below ε
    ([None, 0.001, -0.5, 0.001, 0.0005], 0.01, 2, 4),       # a large drop resets too (|ΔF1|)
    ([None, 0.3, -0.009, 0.2], 0.01, 1, 2),                 # k = 1: first stable round switches
    ([None, 0.001], 0.01, 1, 1),                            # earliest possible switch is round 1
    ([0.0, 0.5, 0.5, 0.5], 0.01, 1, None),                  # round 0 never counts, never switching
])
def test_switch_round_follows_the_rule(deltas, eps, k, expected):
    trigger = SwitchTrigger(eps, k)
    flags = [trigger.update(t, d) for t, d in enumerate(deltas)]
    assert trigger.switch_round == expected
    if expected is not None:
        assert flags == [t >= expected for t in range(len(deltas))]
        # one way: nothing after the switch turns it off
        assert trigger.update(len(deltas), 1.0) is True


def test_nan_delta_does_not_count():
    trigger = SwitchTrigger(0.01, 1)
    assert trigger.update(1, float("nan")) is False
    assert trigger.count == 0


# --- strategy semantics ----------------------------------------------------------------------------

def test_retrain_starts_every_round_from_the_initial_weights(prepared):
    cfg = _cfg(strategy="retrain")
    learner = _spy(cfg, prepared)
    initial = {k: v.clone() for k, v in learner.model.state_dict().items()}
    loop, records = _run(cfg, prepared, learner)
    assert [r.mode for r in records] == ["retrain"] * cfg.rounds
    for call, rec in zip(learner.calls, records):
        assert _same(call["start"], initial)
        assert len(call["idx"]) == rec.labeled and call["epochs"] == cfg.epochs
    # trains on all of L: each round's indices contain the previous round's
    for prev, cur in zip(learner.calls, learner.calls[1:]):
        assert set(prev["idx"]) < set(cur["idx"])


def test_finetune_continues_from_the_previous_round_on_all_labeled(prepared):
    cfg = _cfg(strategy="finetune", finetune_epochs=2, finetune_lr=0.01)
    learner = _spy(cfg, prepared)
    _, records = _run(cfg, prepared, learner)
    assert [r.mode for r in records] == ["retrain"] + ["finetune"] * (cfg.rounds - 1)
    for prev, cur, rec in zip(learner.calls, learner.calls[1:], records[1:]):
        assert _same(cur["start"], prev["end"])
        assert len(cur["idx"]) == rec.labeled
        assert cur["epochs"] == 2 and cur["lr"] == 0.01


def test_new_only_fits_only_the_newly_queried_examples(prepared):
    cfg = _cfg(strategy="new_only")
    learner = _spy(cfg, prepared)
    _, records = _run(cfg, prepared, learner)
    seen = set(learner.calls[0]["idx"])
    for prev, cur, rec in zip(learner.calls, learner.calls[1:], records[1:]):
        assert _same(cur["start"], prev["end"])
        assert len(cur["idx"]) == rec.queried == cfg.query_size
        assert not seen & set(cur["idx"])
        seen |= set(cur["idx"])
        assert rec.train_samples == cfg.epochs * cfg.query_size


def test_hybrid_switches_where_the_rule_says_and_then_fine_tunes(prepared):
    cfg = _cfg(strategy="hybrid", epsilon=0.05, k=2, rounds=10)
    learner = _spy(cfg, prepared)
    loop, records = _run(cfg, prepared, learner)
    trigger = SwitchTrigger(cfg.epsilon, cfg.k)
    for r in records:
        trigger.update(r.round, r.delta_f1)
    s = trigger.switch_round
    assert s is not None, "choose epsilon so this run switches"
    assert loop.summary()["switch_round"] == s
    assert [r.switched for r in records] == [int(r.round >= s) for r in records]
    assert [r.mode for r in records] == ["retrain" if r.round <= s else "finetune" for r in records]
    for prev, cur, r in zip(learner.calls, learner.calls[1:], records[1:]):
        if r.mode == "finetune":
            assert _same(cur["start"], prev["end"])
        else:
            assert _same(cur["start"], learner._initial_state)


def test_hybrid_with_tiny_epsilon_never_switches(prepared):
    cfg = _cfg(strategy="hybrid", epsilon=0.0, k=1)
    loop, records = _run(cfg, prepared)
    assert all(r.mode == "retrain" and r.switched == 0 for r in records)
    assert loop.summary()["switch_round"] is None


def test_replay_fraction_trains_on_new_plus_part_of_old(prepared):
    cfg = _cfg(strategy="finetune", replay_fraction=0.5)
    learner = _spy(cfg, prepared)
    _, records = _run(cfg, prepared, learner)
    for prev_rec, rec, call in zip(records, records[1:], learner.calls[1:]):
        assert len(call["idx"]) == cfg.query_size + round(prev_rec.labeled * 0.5)
        assert len(set(call["idx"])) == len(call["idx"])


def test_shrink_perturb_warm_start(prepared):
    cfg = _cfg(strategy="finetune", shrink=0.5, perturb=0.1)
    learner = _spy(cfg, prepared)
    _run(cfg, prepared, learner)
    prev_end, start = learner.calls[0]["end"], learner.calls[1]["start"]
    fresh = learner.fresh_state(0)
    # start = 0.5 * previous + 0.1 * some fresh init: scale check on the weight matrix
    w = start["weight"] - 0.5 * prev_end["weight"]
    assert not torch.allclose(w, torch.zeros_like(w))
    assert w.abs().max() <= 0.1 * fresh["weight"].abs().max() * 1.5


# --- holdout monitor --------------------------------------------------------------------------------

def test_holdout_examples_are_never_trained_on_and_never_dropped(prepared):
    cfg = _cfg(strategy="hybrid", monitor="holdout", holdout_fraction=0.2, epsilon=0.0)
    learner = _spy(cfg, prepared)
    loop, records = _run(cfg, prepared, learner)
    monitor = set(loop.state.monitor)
    trained = set().union(*(set(c["idx"]) for c in learner.calls))
    assert monitor and not monitor & trained
    assert len(monitor) == records[-1].monitor_size
    # every queried example went to exactly one side
    assert len(trained) + len(monitor) == cfg.initial_size + (cfg.rounds - 1) * cfg.query_size
    for r in records[1:]:
        assert r.held_out == round(cfg.query_size * 0.2) and r.queried == cfg.query_size
    assert records[0].held_out == round(cfg.initial_size * 0.2)
    assert all(r.monitor_f1 is not None for r in records)


# --- record schema and invariants -------------------------------------------------------------------

DESIGN_FIELDS = ["round", "labeled", "queried", "mode", "switched", "val_f1", "monitor_f1", "delta_f1",
                 "test_f1", "train_time_s", "cum_train_time_s", "train_samples", "cum_train_samples",
                 "query_time_s", "eval_time_s"]


def test_records_carry_the_design_fields_and_invariants(prepared):
    cfg = _cfg(strategy="hybrid", epsilon=0.05, k=1)
    loop, records = _run(cfg, prepared)
    for r in records:
        assert list(r.to_dict())[: len(DESIGN_FIELDS)] == DESIGN_FIELDS
    assert [r.round for r in records] == list(range(cfg.rounds))
    assert records[0].queried == 0 and records[0].delta_f1 is None
    assert all(r.queried == cfg.query_size for r in records[1:])
    assert [r.labeled for r in records] == [cfg.initial_size + t * cfg.query_size for t in range(cfg.rounds)]
    assert np.allclose(np.cumsum([r.train_time_s for r in records]), [r.cum_train_time_s for r in records])
    assert np.cumsum([r.train_samples for r in records]).tolist() == [r.cum_train_samples for r in records]
    for prev, cur in zip(records, records[1:]):
        assert math.isclose(cur.delta_f1, cur.monitor_f1 - prev.monitor_f1)
    assert all(r.monitor_f1 == r.val_f1 for r in records)  # monitor = val
    # the generic switch-signal fields equal the F1 ones for an F1 monitor
    assert all(r.monitor_score == r.monitor_f1 and r.signal == r.delta_f1 for r in records)
    assert records[-1].test_f1 is not None and all(r.test_f1 is None for r in records[:-1])
    summary = loop.summary()
    for key in ("config", "final_test_f1", "final_val_f1", "switch_round", "total_train_time_s",
                "total_train_samples", "aulc", "seed"):
        assert key in summary
    assert summary["total_train_samples"] == records[-1].cum_train_samples
    assert 0 <= summary["aulc"] <= 1


def test_eval_test_every_round(prepared):
    _, records = _run(_cfg(strategy="retrain", rounds=3, eval_test_every_round=True), prepared)
    assert all(r.test_f1 is not None for r in records)


def test_early_stopping_cuts_epochs(prepared):
    _, records = _run(_cfg(strategy="retrain", epochs=30, early_stop_patience=1, rounds=2), prepared)
    assert all(r.epochs_run < 30 for r in records)
    assert records[-1].train_samples == records[-1].epochs_run * records[-1].labeled


def test_learning_happens(prepared):
    _, records = _run(_cfg(strategy="retrain", rounds=8, query_size=30), prepared)
    assert records[-1].val_f1 > records[0].val_f1
    assert records[-1].test_f1 > 0.6


# --- determinism and resume -------------------------------------------------------------------------

def _without_timing(records):
    return [{k: v for k, v in r.to_dict().items() if k not in TIMING_FIELDS} for r in records]


def test_same_seed_same_records(prepared):
    cfg = _cfg(strategy="hybrid", epsilon=0.05, k=1)
    _, a = _run(cfg, prepared)
    _, b = _run(cfg, prepared)
    _, c = _run(_cfg(strategy="hybrid", epsilon=0.05, k=1, seed=4), prepared)
    assert _without_timing(a) == _without_timing(b)
    assert _without_timing(a) != _without_timing(c)


@pytest.mark.parametrize("stop_after", [1, 3])
def test_resume_equals_uninterrupted(prepared, tmp_path, stop_after):
    cfg = _cfg(strategy="hybrid", epsilon=0.05, k=1, monitor="holdout")
    _, full = _run(cfg, prepared)
    first = new_loop(cfg, prepared)
    for _ in range(stop_after):
        first.run_round()
    first.save(tmp_path)
    resumed = new_loop(cfg, prepared)
    resumed.load(tmp_path)
    rest = list(resumed)
    assert len(rest) == cfg.rounds - stop_after
    assert _without_timing(resumed.records) == _without_timing(full)


def test_resume_with_another_config_is_refused(prepared, tmp_path):
    loop = new_loop(_cfg(), prepared)
    loop.run_round()
    loop.save(tmp_path)
    other = new_loop(_cfg(k=3), prepared)
    with pytest.raises(HalError, match="different config"):
        other.load(tmp_path)


# --- sizes ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw, phrase", [
    (dict(initial_size=100000), "larger than the pool"),
    (dict(initial_size=2), "smaller than the number of classes"),
    (dict(rounds=1000), "at most --rounds"),
])
def test_size_errors(prepared, kw, phrase):
    with pytest.raises(HalError, match=phrase):
        new_loop(_cfg(**kw), prepared)


def test_multilabel_loop_runs():
    from tests.conftest import make_toy_corpus

    corpus = make_toy_corpus(multilabel=True)
    prep = Prepared(corpus, "tfidf", tfidf_features(corpus, 3000))
    cfg = _cfg(strategy="hybrid", epsilon=0.05, k=1, rounds=3)
    _, records = _run(cfg, prep)
    assert all(0 <= r.val_f1 <= 1 for r in records)
