"""Switch monitors and rules: the label-free ``agreement`` monitor, its stop set, the ``mean`` rule,
and each monitor's label cost in the run summary."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from hal.core.config import make_config
from hal.core.errors import HalError
from hal.core.loop import ActiveLearningLoop
from hal.core.metrics import cohen_kappa, prediction_agreement
from hal.core.records import RoundRecord
from hal.core.switch import SwitchTrigger, replay
from hal.data.inputs import Prepared
from hal.data.tfidf import tfidf_features
from hal.learners.head import HeadLearner
from hal.runs.build import new_loop
from tests.conftest import make_toy_corpus


def _cfg(**kw):
    base = dict(dataset="toy", learner="tfidf", initial_size=30, query_size=10, rounds=6, epochs=3,
                batch_size=16, seed=3, lr=0.05, stop_set_size=100)
    base.update(kw)
    return make_config(base).resolved()


class SpyLearner(HeadLearner):
    """Records every fit's indices and every predict_proba's indices."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.fitted, self.scored = [], []

    def fit(self, idx, y, epochs, lr, seed, patience=0):
        self.fitted.append(np.array(idx))
        return super().fit(idx, y, epochs, lr, seed, patience)


class ScriptedLearner(HeadLearner):
    """A learner whose stop-set predictions follow a script, one row of labels per round."""

    def __init__(self, script, stop_set_size, *a, **kw):
        super().__init__(*a, **kw)
        self.script, self.stop_set_size, self.round = script, stop_set_size, -1

    def fit(self, idx, y, epochs, lr, seed, patience=0):
        self.round += 1
        return super().fit(idx, y, epochs, lr, seed, patience)

    def predict_proba(self, idx):
        probs = super().predict_proba(idx)
        if len(idx) != self.stop_set_size:
            return probs
        labels = np.asarray(self.script[self.round])
        out = np.zeros((len(idx), probs.shape[1]), dtype=np.float32)
        out[np.arange(len(idx)), labels] = 1.0
        return out


def _learner(cls, cfg, prepared, *a):
    c = prepared.corpus
    return cls(*a, prepared.features, c.num_classes, multilabel=c.multilabel, hidden_size=cfg.hidden_size,
               seed=cfg.seed, batch_size=cfg.batch_size, weight_decay=cfg.weight_decay)


# --- agreement -------------------------------------------------------------------------------------

def test_cohen_kappa_matches_sklearn_and_is_defined_for_constant_predictions():
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = rng.integers(0, 4, 80)
        b = np.where(rng.random(80) < 0.6, a, rng.integers(0, 4, 80))
        assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    assert cohen_kappa([2, 2, 2], [2, 2, 2]) == 1.0  # sklearn: NaN
    assert cohen_kappa([0, 0, 0], [1, 1, 1]) == 0.0


def test_multilabel_agreement_pools_every_label_decision():
    prev = np.array([[1, 0], [0, 0], [1, 1], [0, 1]])
    cur = np.array([[1, 0], [1, 0], [1, 1], [0, 1]])
    expected = cohen_kappa_score(prev.ravel(), cur.ravel())
    assert prediction_agreement(prev, cur, multilabel=True) == pytest.approx(expected)


def test_one_flipped_rare_label_barely_moves_multilabel_agreement():
    """1,000 stop examples × 3 labels; a rare label goes from 0 to 1 positive: 1 decision of 3,000
    changed. The mean of per-label κ made that 1 − κ 0.33 (above the default ε 0.3); pooled it is
    0.001, while a real change on every label still registers in proportion."""
    rng = np.random.default_rng(0)
    prev = np.zeros((1000, 3), dtype=np.int64)
    prev[:, 0] = rng.random(1000) < 0.4
    prev[:, 1] = rng.random(1000) < 0.2
    cur = prev.copy()
    cur[7, 2] = 1
    per_label = np.mean([cohen_kappa(prev[:, j], cur[:, j]) for j in range(3)])
    assert 1 - per_label == pytest.approx(1 / 3)
    assert 1 - prediction_agreement(prev, cur, multilabel=True) == pytest.approx(0.001, abs=5e-4)
    changed = [prev.copy() for _ in range(3)]
    for fraction, c in zip((0.02, 0.1, 0.2), changed):
        flip = rng.random(c.shape) < fraction
        c[flip] = 1 - c[flip]
    signals = [1 - prediction_agreement(prev, c, multilabel=True) for c in changed]
    assert signals == sorted(signals) and signals[0] > 0.02  # monotone in the change


def test_agreement_monitor_switch_rounds_on_a_scripted_prediction_sequence(prepared):
    """Stop-set predictions scripted per round: 1 − κ = 1, 1, 0, 0.1, 0, 0; with ε 0.2, k 2 the rule
    counts rounds 3 and 4, so the run switches after round 4 and fine-tunes from round 5."""
    n = 100
    base = np.arange(n) % 3
    flipped = (base + 1) % 3
    small = base.copy()
    small[:5] = (small[:5] + 1) % 3  # 5% of the predictions change
    script = [base, flipped, base, base, small, small, small, small]
    cfg = _cfg(strategy="hybrid", monitor="agreement", epsilon=0.2, k=2, rounds=8, stop_set_size=n)
    learner = _learner(ScriptedLearner, cfg, prepared, script, n)
    loop = ActiveLearningLoop(cfg, prepared.corpus, learner)
    records = list(loop)
    signal = [r.signal for r in records]
    assert signal[0] is None and records[0].monitor_score is None
    # κ is no F1: the F1-named fields stay null, the generic ones hold κ and 1 − κ
    assert all(r.monitor_f1 is None and r.delta_f1 is None for r in records)
    kappa_small = cohen_kappa(base, small)
    assert signal[1:] == pytest.approx([1 - cohen_kappa(base, flipped), 1 - cohen_kappa(flipped, base), 0.0,
                                        1 - kappa_small, 0.0, 0.0, 0.0])
    assert [r.monitor_score for r in records[1:]] == pytest.approx([1 - s for s in signal[1:]])
    assert 1 - kappa_small < 0.2
    assert loop.summary()["switch_round"] == 4
    assert [r.mode for r in records] == ["retrain"] * 5 + ["finetune"] * 3
    # the same series through the trigger alone gives the same round: one place for the rule
    trigger = SwitchTrigger(0.2, 2)
    for r in records:
        trigger.update(r.round, r.signal)
    assert trigger.switch_round == 4
    # records written before monitor_score/signal existed held the signal in monitor_f1/delta_f1
    old = [{k: v for k, v in r.to_dict().items() if k not in ("monitor_score", "signal")}
           | {"monitor_f1": r.monitor_score, "delta_f1": r.signal} for r in records]
    assert [RoundRecord.from_dict(o).signal for o in old] == signal
    assert replay(SwitchTrigger(0.2, 2), old).switch_round == 4


def test_stop_set_is_never_queried_nor_trained_on(prepared):
    cfg = _cfg(strategy="hybrid", monitor="agreement", epsilon=0.0, rounds=8, query_size=20,
               stop_set_size=150, pool_subset=0)
    learner = _learner(SpyLearner, cfg, prepared)
    loop = ActiveLearningLoop(cfg, prepared.corpus, learner)
    records = list(loop)
    stop = set(loop.state.stop_set)
    assert len(stop) == 150 and stop <= set(prepared.corpus.pool.tolist())
    trained = set().union(*(set(i.tolist()) for i in learner.fitted))
    assert not stop & trained and not stop & set(loop.state.labeled)
    assert len(loop.state.labeled) == cfg.initial_size + 7 * cfg.query_size
    assert all(r.signal is not None for r in records[1:])
    # seeded: the same seed draws the same stop set; the initial set is that of any other monitor
    again = new_loop(cfg, prepared)
    again.run_round()
    assert again.state.stop_set == loop.state.stop_set
    val = new_loop(_cfg(strategy="retrain"), prepared)
    val.run_round()
    assert val.state.labeled == loop.state.labeled[: cfg.initial_size]


def test_stop_set_is_excluded_even_when_the_pool_runs_dry(toy_corpus):
    corpus = make_toy_corpus(n_train=300, n_test=50)
    prep = Prepared(corpus, "tfidf", tfidf_features(corpus, 2000))
    pool = len(corpus.pool)  # 240
    cfg = _cfg(strategy="retrain", monitor="agreement", initial_size=40, query_size=20, rounds=6,
               stop_set_size=pool - 40 - 5 * 20)
    loop = new_loop(cfg, prep)
    list(loop)
    assert set(loop.state.labeled) | set(loop.state.stop_set) == set(corpus.pool.tolist())
    with pytest.raises(HalError, match="stop set"):
        new_loop(dataclasses.replace(cfg, stop_set_size=cfg.stop_set_size + 1), prep)


def test_agreement_resumes_exactly_from_a_checkpoint(prepared):
    cfg = _cfg(strategy="hybrid", monitor="agreement", epsilon=0.3, k=1, rounds=6)
    full = [r.to_dict() for r in new_loop(cfg, prepared)]
    first = new_loop(cfg, prepared)
    for _ in range(3):
        first.run_round()
    second = new_loop(cfg, prepared)
    second.restore(first.checkpoint())
    rest = [r.to_dict() for r in second]
    strip = lambda r: {k: v for k, v in r.items() if not k.endswith("time_s")}  # noqa: E731
    assert [strip(r) for r in full[3:]] == [strip(r) for r in rest]


def test_agreement_works_for_multilabel_data():
    corpus = make_toy_corpus(multilabel=True)
    prep = Prepared(corpus, "tfidf", tfidf_features(corpus, 2000))
    cfg = _cfg(strategy="hybrid", monitor="agreement", rounds=4)
    records = list(new_loop(cfg, prep))
    assert all(r.signal is not None and -1 <= r.monitor_score <= 1 for r in records[1:])


def test_agreement_has_its_own_default_threshold():
    from hal.core.switch import DEFAULT_EPSILONS

    assert _cfg(monitor="agreement").epsilon == DEFAULT_EPSILONS["agreement"]
    assert _cfg(monitor="val").epsilon == DEFAULT_EPSILONS["val"] == 0.02
    assert _cfg(monitor="agreement", epsilon=0.3).epsilon == 0.3


# --- label cost ------------------------------------------------------------------------------------

@pytest.mark.parametrize("strategy, monitor, expected", [
    ("hybrid", "val", "val"), ("hybrid", "holdout", "held"), ("hybrid", "agreement", 0),
    ("retrain", "val", 0), ("finetune", "agreement", 0), ("retrain", "holdout", "held")])
def test_summary_states_the_monitors_label_cost(prepared, strategy, monitor, expected):
    cfg = _cfg(strategy=strategy, monitor=monitor, rounds=3, epsilon=0.0)
    loop = new_loop(cfg, prepared)
    records = list(loop)
    want = {"val": len(prepared.corpus.val), "held": records[-1].monitor_size}.get(expected, expected)
    assert loop.summary()["monitor_labels"] == want
    if expected == "held":
        assert want == sum(r.held_out for r in records) > 0


# --- switch rules ----------------------------------------------------------------------------------

RISING = [None, 0.06, 0.015, 0.012, 0.05, 0.018, 0.011, 0.045, 0.01, 0.008, 0.004, -0.003, 0.002]


def _feed(trigger, series):
    for t, value in enumerate(series):
        trigger.update(t, value)
    return trigger.switch_round


def test_literal_rule_fires_on_a_rising_curve_the_mean_rule_does_not():
    """F1 still rising ~0.025 per round with two small steps in a row: |ΔF1| < 0.02 for k = 2 fires
    at round 3; the 3-round mean (0.029, 0.026, ..., 0.021) stays above ε until the curve flattens."""
    assert _feed(SwitchTrigger(0.02, 2), RISING) == 3
    mean = SwitchTrigger(0.02, 1, rule="mean", window=3)
    assert _feed(mean, RISING) == 10
    # the mean of the last 3 steps at the switch is below ε, and no earlier window was
    for t in range(3, 10):
        assert abs(np.mean(RISING[t - 2:t + 1])) >= 0.02
    assert abs(np.mean(RISING[8:11])) < 0.02


def test_literal_rule_is_unchanged():
    assert _feed(SwitchTrigger(0.02, 2), [None, 0.01, 0.03, 0.01, 0.02, 0.019, -0.019]) == 6
    assert _feed(SwitchTrigger(0.0, 1), [None, 0.0, 0.0]) is None  # ε exactly does not count
    assert _feed(SwitchTrigger(0.05, 1), [None, float("nan"), None, 0.01]) == 3


def test_mean_rule_needs_a_full_window_and_counts_k():
    assert _feed(SwitchTrigger(0.1, 1, rule="mean", window=3), [None, 0.0, 0.0, 0.0]) == 3
    assert _feed(SwitchTrigger(0.1, 2, rule="mean", window=3), [None, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0]) == 8
    # signed: alternating ups and downs of a flat curve cancel
    assert _feed(SwitchTrigger(0.02, 1, rule="mean", window=2), [None, 0.05, -0.05]) == 2


def test_trigger_state_round_trips_as_a_plain_dataclass():
    trigger = SwitchTrigger(0.02, 2, rule="mean", window=3)
    for t, value in enumerate(RISING[:6]):
        trigger.update(t, value)
    copy = SwitchTrigger(**dataclasses.asdict(trigger))
    assert copy == trigger
    assert _feed(copy, [None] * 6 + RISING[6:]) == _feed(trigger, [None] * 6 + RISING[6:])
    old = {"epsilon": 0.02, "k": 2, "count": 1, "switch_round": None}  # a checkpoint from before
    assert SwitchTrigger(**old).rule == "abs"
    with pytest.raises(ValueError):
        SwitchTrigger(0.02, 2, rule="slope")


def test_loop_applies_the_configured_rule(prepared):
    cfg = _cfg(strategy="hybrid", switch_rule="mean", switch_window=2, epsilon=0.5, k=1, rounds=5)
    loop = new_loop(cfg, prepared)
    records = list(loop)
    assert (loop.state.trigger.rule, loop.state.trigger.window) == ("mean", 2)
    assert loop.summary()["switch_round"] == 2  # first full window of 2 signals, |mean| < 0.5
    assert [r.mode for r in records] == ["retrain"] * 3 + ["finetune"] * 2
    with pytest.raises(HalError, match="switch_rule"):
        _cfg(switch_rule="slope")
