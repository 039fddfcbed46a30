"""Learners trained to a criterion (``--head lbfgs``, ``mlp``), scikit-learn estimators as
learners (``--head logreg|linearsvc|sgd``), the shared stop set and ``export-split``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression, SGDClassifier

from hal.core.config import make_config
from hal.core.errors import HalError
from hal.core.loop import ActiveLearningLoop, split_indices
from hal.data.inputs import Prepared
from hal.learners.factory import make_learner
from hal.learners.lbfgs import LbfgsHeadLearner
from hal.learners.sklearn_head import SklearnLearner
from hal.runs.build import new_loop
from hal.runs.cli import main
from tests.conftest import make_toy_corpus


def _cfg(**kw):
    base = dict(dataset="toy", learner="tfidf", initial_size=30, query_size=10, rounds=5, seed=3)
    base.update(kw)
    return make_config(base).resolved()


def _gaussian(n=200, d=20, k=3, seed=0):
    """A small strictly convex problem: overlapping Gaussian classes."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    x = rng.normal(size=(n, d)) + 1.5 * np.eye(k, d)[y]
    return x, y


def _strip(record: dict) -> dict:
    return {k: v for k, v in record.items() if not k.endswith("time_s")}


# --- lbfgs: a convex head trained to a criterion -------------------------------------------------

def test_converged_lbfgs_head_reaches_the_same_optimum_under_retrain_and_finetune():
    x, y = _gaussian()
    order = np.random.default_rng(1).permutation(len(y))
    kw = dict(multilabel=False, C=1.0, tol=1e-9, max_iter=2000, dtype=torch.float64)
    warm = LbfgsHeadLearner(x, 3, **kw)
    for size in (80, 110, 140, 170, 200):
        idx = order[:size]
        warm.fit(idx, y[idx], 5, 0.1, seed=0)                              # continues (finetune)
        fresh = LbfgsHeadLearner(x, 3, **kw)
        result = fresh.fit(idx, y[idx], 5, 0.1, seed=0)                    # from zero (retrain)
        assert result.converged
        np.testing.assert_allclose(warm.weight, fresh.weight, atol=1e-5)
        # softmax biases are unpenalised, so only defined up to a common shift
        np.testing.assert_allclose(warm.bias - warm.bias.mean(), fresh.bias - fresh.bias.mean(), atol=1e-5)
        assert np.array_equal(warm.predict_proba(np.arange(200)).argmax(1),
                              fresh.predict_proba(np.arange(200)).argmax(1))


def test_lbfgs_head_minimises_scikit_learns_logistic_regression_objective(prepared):
    """Over sparse TF-IDF only the labeled rows' columns are optimised: the optimum is still that
    of LogisticRegression with the same C over all columns."""
    corpus, x = prepared.corpus, prepared.features
    idx = corpus.pool[:120]
    head = LbfgsHeadLearner(x, corpus.num_classes, multilabel=False, C=10.0, tol=1e-9, max_iter=5000,
                            dtype=torch.float64)
    head.fit(idx, corpus.labels[idx], 1, 0.1, seed=0)
    reference = LogisticRegression(C=10.0, tol=1e-10, max_iter=10000).fit(x[idx], corpus.labels[idx])
    np.testing.assert_allclose(head.predict_proba(corpus.val), reference.predict_proba(x[corpus.val]),
                               atol=1e-3)  # two solvers, each stopped at its own tolerance


def test_lbfgs_cost_is_examples_times_passes_and_the_budget_is_recorded(prepared):
    loop = new_loop(_cfg(head="lbfgs", strategy="finetune"), prepared)
    records = list(loop)
    for record in records:
        assert record.train_samples == record.labeled * record.epochs_run
        assert record.fit_converged == 1
    retrain = list(new_loop(_cfg(head="lbfgs", strategy="retrain"), prepared))
    assert sum(r.epochs_run for r in records[1:]) < sum(r.epochs_run for r in retrain[1:])  # warm: fewer
    summary = loop.summary()
    assert summary["total_passes"] == sum(r.epochs_run for r in records)
    assert summary["config"]["head"] == "lbfgs" and summary["config"]["tol"] == 1e-2
    assert summary["config"]["C"] == 100.0 and summary["config"]["max_iter"] == 500


def test_lbfgs_stops_at_its_iteration_cap_and_says_so(prepared):
    loop = new_loop(_cfg(head="lbfgs", tol=1e-12, max_iter=3, rounds=2), prepared)
    assert [r.fit_converged for r in loop] == [0, 0]


# --- scikit-learn estimators ---------------------------------------------------------------------

def test_sklearn_finetune_continues_from_the_previous_coefficients():
    x, y = _gaussian()
    learner = SklearnLearner(x, 3, LogisticRegression(tol=1e-8, max_iter=1000))
    idx = np.arange(150)
    fresh = learner.fit(idx, y[idx], 5, 0.1, seed=0)
    coef = learner.estimator.coef_.copy()
    learner.warm_start(1.0, 0.0, seed=0)
    again = learner.fit(idx, y[idx], 5, 0.1, seed=0)  # same data: already at the optimum
    assert again.epochs_run == 1 < fresh.epochs_run
    np.testing.assert_allclose(learner.estimator.coef_, coef, atol=1e-6)
    learner.reset()  # retrain: a fresh fit again
    assert learner.fit(idx, y[idx], 5, 0.1, seed=0).epochs_run == fresh.epochs_run


def test_sgd_warm_start_starts_from_the_previous_fit():
    x, y = _gaussian()
    learner = SklearnLearner(x, 3, SGDClassifier(loss="log_loss", max_iter=1, tol=None))
    idx = np.arange(150)
    learner.fit(idx, y[idx], 5, 0.1, seed=0)
    before = learner.estimator.coef_.copy()
    learner.warm_start(1.0, 0.0, seed=0)
    learner.fit(idx[:10], y[idx[:10]], 5, 0.1, seed=1)  # one epoch over 10 examples moves it a little
    moved = np.abs(learner.estimator.coef_ - before).max()
    assert 0 < moved < 0.5 * np.abs(before).max()


def test_warm_start_carries_coefficients_over_when_a_class_appears():
    x, y = _gaussian()
    first = np.flatnonzero(y != 2)[:60]
    learner = SklearnLearner(x, 3, LogisticRegression(max_iter=1000))
    learner.fit(first, y[first], 5, 0.1, seed=0)
    probs = learner.predict_proba(np.arange(200))
    assert probs.shape == (200, 3) and np.all(probs[:, 2] == 0)  # unseen class: probability 0
    assert np.array_equal(learner.estimator.classes_[probs[:, [0, 1]].argmax(1)], learner.estimator.predict(x))
    learner.warm_start(1.0, 0.0, seed=0)
    learner.fit(np.arange(120), y[:120], 5, 0.1, seed=0)
    assert list(learner.estimator.classes_) == [0, 1, 2]
    assert learner.predict_proba(np.arange(200))[:, 2].max() > 0.5


def test_linearsvc_gets_probabilities_from_its_decision_function(prepared):
    loop = new_loop(_cfg(head="linearsvc", strategy="retrain"), prepared)
    records = list(loop)
    probs = loop.learner.predict_proba(prepared.corpus.val)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    assert np.array_equal(probs.argmax(1), loop.learner.estimator.predict(prepared.features[prepared.corpus.val]))
    assert all(r.train_samples == r.labeled * r.epochs_run for r in records)


@pytest.mark.parametrize("strategy", ["finetune", "new_only", "hybrid"])
def test_linearsvc_cannot_warm_start_one_line_error(strategy, capsys):
    with pytest.raises(HalError, match="linearsvc cannot warm-start"):
        make_config({"head": "linearsvc", "strategy": strategy})
    code = main(["run", "--head", "linearsvc", "--strategy", strategy, "--out", "/nonexistent/x"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "linearsvc cannot warm-start" in err


def test_an_estimator_without_warm_start_is_refused_in_a_warm_round(prepared):
    from sklearn.svm import LinearSVC

    learner = SklearnLearner(prepared.features, 3, LinearSVC(), name="linearsvc")
    learner.fit(prepared.corpus.pool[:30], prepared.corpus.labels[prepared.corpus.pool[:30]], 1, 0.1, 0)
    with pytest.raises(HalError, match="cannot continue from its previous coefficients"):
        learner.warm_start(1.0, 0.0, seed=0)


@pytest.mark.parametrize("kw, phrase", [
    (dict(head="sgd", C=1.0), "--C does not apply to --head sgd"),
    (dict(C=1.0), "--C does not apply to --head adamw"),
    (dict(head="lbfgs", hidden_size=64), "--hidden-size does not apply"),
    (dict(learner="transformer", head="lbfgs"), "trains over fixed features"),
    (dict(head="logreg", dataset="jigsaw", multilabel=True), "single-label"),
    (dict(head="nope"), "unknown head"),
])
def test_head_settings_are_checked(kw, phrase):
    with pytest.raises(HalError, match=phrase):
        make_config(kw)


# --- the MLP head: non-convex, trained to a loss criterion ---------------------------------------

def test_mlp_head_trains_to_its_criterion_and_warm_rounds_need_fewer_epochs():
    corpus = make_toy_corpus()
    rng = np.random.default_rng(0)
    dense = rng.normal(size=(len(corpus.texts), 16)).astype(np.float32) + 2 * np.eye(3, 16, dtype=np.float32)[corpus.labels]
    prep = Prepared(corpus, "embedding", dense)
    cfg = _cfg(learner="embedding", head="mlp", strategy="finetune", hidden_size=32, tol=0.05, max_iter=300)
    records = list(new_loop(cfg, prep))
    assert all(r.fit_converged == 1 for r in records)
    assert records[0].epochs_run > max(r.epochs_run for r in records[1:])
    assert all(r.train_samples == r.labeled * r.epochs_run for r in records)
    retrain = list(new_loop(_cfg(learner="embedding", head="mlp", strategy="retrain", hidden_size=32,
                                 tol=0.05, max_iter=300), prep))
    assert _strip(retrain[0].to_dict()) == _strip(records[0].to_dict())  # round 0 trains alike
    assert sum(r.train_samples for r in retrain) > sum(r.train_samples for r in records)


def test_mlp_defaults():
    cfg = make_config({"learner": "embedding", "head": "mlp"}).resolved()
    assert (cfg.hidden_size, cfg.lr, cfg.tol, cfg.max_iter) == (512, 1e-3, 0.03, 200)


# --- checkpoints of the new learners -------------------------------------------------------------

@pytest.mark.parametrize("head, strategy", [("lbfgs", "finetune"), ("logreg", "finetune"), ("sgd", "new_only"),
                                            ("linearsvc", "retrain"), ("mlp", "finetune")])
def test_resume_of_the_new_learners_equals_an_uninterrupted_run(prepared, tmp_path, head, strategy):
    extra = dict(hidden_size=16, max_iter=30) if head == "mlp" else {}
    cfg = _cfg(head=head, strategy=strategy, **extra)
    full = [_strip(r.to_dict()) for r in new_loop(cfg, prepared)]
    first = new_loop(cfg, prepared)
    first.run_round()
    first.run_round()
    first.save(tmp_path)
    torch.load(tmp_path / "checkpoint.pt", weights_only=True)  # plain types and tensors only
    second = new_loop(cfg, prepared)
    second.load(tmp_path)
    assert [_strip(r.to_dict()) for r in second.records] + [_strip(r.to_dict()) for r in second] == full


# --- paired comparisons: the shared stop set, export-split ---------------------------------------

def test_shared_stop_set_makes_every_strategy_and_monitor_query_the_same_pool(prepared):
    runs = {}
    for strategy, monitor in (("retrain", "val"), ("retrain", "agreement"), ("finetune", "holdout"),
                              ("hybrid", "val")):
        loop = new_loop(_cfg(strategy=strategy, monitor=monitor, stop_set="shared", stop_set_size=100,
                             rounds=4, epsilon=0.0), prepared)
        list(loop)
        runs[strategy, monitor] = loop
    stops = {tuple(loop.state.stop_set) for loop in runs.values()}
    assert len(stops) == 1 and len(next(iter(stops))) == 100
    for loop in runs.values():
        taken = set(loop.state.labeled) | set(loop.state.monitor)
        assert not taken & set(loop.state.stop_set)
    # the same learner and stop set: retrain queries the same examples whatever the monitor
    assert runs["retrain", "val"].state.labeled == runs["retrain", "agreement"].state.labeled
    assert runs["retrain", "val"].state.labeled == runs["hybrid", "val"].state.labeled


def test_without_the_setting_only_the_agreement_monitor_holds_a_stop_set(prepared):
    plain = new_loop(_cfg(strategy="retrain", rounds=2), prepared)
    list(plain)
    assert plain.state.stop_set == []
    shared = new_loop(_cfg(strategy="retrain", rounds=2, stop_set="shared", stop_set_size=100), prepared)
    list(shared)
    assert shared.state.labeled[:30] == plain.state.labeled[:30]  # the initial set does not move
    with pytest.raises(HalError, match="shared stop set"):
        new_loop(_cfg(stop_set="shared", stop_set_size=len(prepared.corpus.pool)), prepared)


def test_export_split_writes_what_a_peer_needs(tmp_path, capsys):
    out = tmp_path / "split.json"
    argv = ["export-split", "--dataset", "synthetic", "--synthetic-size", "600", "--seed", "2",
            "--stop-set", "shared", "--stop-set-size", "50", "--initial-size", "40", "--out", str(out)]
    assert main(argv) == 0
    split = json.loads(out.read_text())
    cfg = make_config(dict(dataset="synthetic", synthetic_size=600, seed=2, stop_set="shared",
                           stop_set_size=50, initial_size=40, query_size=10, rounds=2)).resolved()
    loop = new_loop(cfg)
    loop.run_round()
    assert sorted(split["initial"]) == sorted(loop.state.labeled)
    assert split["stop_set"] == loop.state.stop_set
    corpus = loop.corpus
    assert split["pool"] == corpus.pool.tolist() and split["val"] == corpus.val.tolist()
    assert split["test"] == corpus.test.tolist() and split["labels"] == corpus.labels.tolist()
    assert not set(split["stop_set"]) & set(split["initial"]) and set(split["stop_set"]) <= set(split["pool"])
    assert split["n_train"] + split["n_test"] == len(corpus.texts) and split["seed"] == 2
    # the public function behind it
    indices = split_indices(cfg, corpus)
    assert indices.initial.tolist() == split["initial"] and indices.stop_set.tolist() == split["stop_set"]


def test_factory_builds_each_head(prepared):
    for head in ("adamw", "lbfgs", "logreg", "linearsvc", "sgd", "mlp"):
        strategy = "retrain" if head == "linearsvc" else "hybrid"
        learner = make_learner(_cfg(head=head, strategy=strategy), prepared)
        assert isinstance(ActiveLearningLoop(_cfg(head=head, strategy=strategy), prepared.corpus, learner).learner,
                          type(learner))


# --- what query strategies read: the representation and MC-dropout samples ----------------------

def _output_logits(learner, embedding) -> np.ndarray:
    """Logits recomputed from a representation with the learner's own output layer."""
    import scipy.sparse as sp

    x = embedding.toarray() if sp.issparse(embedding) else embedding
    if isinstance(learner, LbfgsHeadLearner):
        return x @ learner.weight.T + learner.bias
    if isinstance(learner, SklearnLearner):
        return learner.estimator.decision_function(x)
    layer = learner.model if isinstance(learner.model, torch.nn.Linear) else learner.model[-1]
    return x @ layer.weight.detach().numpy().T + layer.bias.detach().numpy()


@pytest.mark.parametrize("head, extra", [("adamw", {}), ("adamw", {"hidden_size": 16}), ("lbfgs", {}),
                                         ("mlp", {"hidden_size": 16, "max_iter": 5}), ("logreg", {})])
def test_representation_is_the_input_of_the_output_layer(prepared, head, extra):
    """The probabilities follow from the representation through the output layer alone, so
    BADGE's gradient and the distances of core-set, CAL and k-means are about what the model
    sees last."""
    learner = make_learner(_cfg(head=head, **extra), prepared)
    train = prepared.corpus.pool[:60]
    learner.fit(train, prepared.corpus.labels[train], epochs=3, lr=0.05, seed=0)
    idx = prepared.corpus.pool[60:90]
    rep = learner.represent(idx)
    assert rep.embedding.shape[0] == len(idx)
    assert np.allclose(rep.probs, learner.predict_proba(idx), atol=1e-6)
    logits = _output_logits(learner, rep.embedding)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    assert np.allclose(probs / probs.sum(1, keepdims=True), rep.probs, atol=1e-5)


def test_mc_dropout_samples_are_seeded_and_differ_from_each_other(prepared):
    learner = make_learner(_cfg(head="mlp", hidden_size=32, dropout=0.3, max_iter=5), prepared)
    train = prepared.corpus.pool[:60]
    learner.fit(train, prepared.corpus.labels[train], epochs=3, lr=0.05, seed=0)
    idx = prepared.corpus.pool[60:120]
    a, b, again = (learner.predict_proba(idx, dropout_seed=s) for s in (1, 2, 1))
    plain = learner.predict_proba(idx)
    assert np.array_equal(a, again) and not np.allclose(a, b) and not np.allclose(a, plain)
    assert np.allclose(a.sum(1), 1, atol=1e-5)
    assert np.array_equal(plain, learner.predict_proba(idx))  # sampling leaves evaluation deterministic


def test_dropout_changes_training_but_not_evaluation_of_a_head(prepared):
    corpus = prepared.corpus
    learners = [make_learner(_cfg(head="mlp", hidden_size=32, dropout=p, max_iter=3), prepared) for p in (0.0, 0.5)]
    for learner in learners:
        learner.fit(corpus.pool[:60], corpus.labels[corpus.pool[:60]], epochs=3, lr=0.05, seed=0)
    assert not np.allclose(learners[0].predict_proba(corpus.val), learners[1].predict_proba(corpus.val))
    assert learners[1].has_dropout and not learners[0].has_dropout
