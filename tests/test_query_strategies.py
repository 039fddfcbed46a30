"""Query strategies against hand-worked examples and the references they follow: BADGE's
gradient embedding against torch's autograd, its seeding against the authors' algorithm, and
core-set, BALD, CAL and embedding k-means on examples small enough to check by hand. (The
agreement with small-text's implementations on real pools is measured in
bench/query_agreement.py, outside the test suite: small-text is not a dependency.)"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from hal.core.config import QUERY_STRATEGIES, make_config
from hal.core.errors import HalError
from hal.core.learner import Representation
from hal.core.query.badge import kmeans_plusplus
from hal.core.query.bald import bald_scores
from hal.core.query.cal import cal_scores
from hal.core.query.coreset import greedy_k_center
from hal.core.query.embedding_kmeans import nearest_to_centers
from hal.core.query.geometry import GradientEmbedding, gradient_scale, unit_rows
from hal.core.query.registry import select
from hal.runs.build import new_loop


class FixedLearner:
    """A stand-in learner whose probabilities and representation are given per corpus row."""

    def __init__(self, probs: np.ndarray, embedding, dropout_samples: np.ndarray | None = None):
        self.probs, self.embedding, self.samples = probs, embedding, dropout_samples
        self.has_dropout = dropout_samples is not None
        self.seeds: list[int] = []

    def predict_proba(self, idx, dropout_seed=None):
        if dropout_seed is None:
            return self.probs[idx]
        self.seeds.append(dropout_seed)
        return self.samples[len(self.seeds) - 1][idx]

    def represent(self, idx):
        return Representation(self.probs[idx], self.embedding[idx])


def _select(name, learner, unlabeled, labeled, size, seed=0, multilabel=False):
    return select(name, np.asarray(unlabeled), np.asarray(labeled), size, np.random.default_rng(seed), learner,
                  multilabel=multilabel).tolist()


# --- BADGE ------------------------------------------------------------------------------------


def _loss_gradient(layer: torch.nn.Linear, h: torch.Tensor, multilabel: bool) -> np.ndarray:
    """∂loss/∂W of one example at the model's own predicted label(s), by autograd."""
    layer.zero_grad()
    logits = layer(h[None])
    if multilabel:
        target = (torch.sigmoid(logits) >= 0.5).float().detach()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="sum")
    else:
        loss = torch.nn.functional.cross_entropy(logits, logits.argmax(dim=1).detach())
    loss.backward()
    return layer.weight.grad.detach().numpy().astype(np.float64).ravel()


@pytest.mark.parametrize("multilabel", [False, True])
@pytest.mark.parametrize("classes", [2, 5])
def test_badge_gradient_embedding_is_the_loss_gradient_of_the_output_layer(multilabel, classes):
    torch.manual_seed(0)
    layer = torch.nn.Linear(7, classes).double()
    h = torch.randn(12, 7, dtype=torch.float64)
    with torch.no_grad():
        logits = layer(h)
        probs = (torch.sigmoid(logits) if multilabel else torch.softmax(logits, dim=1)).numpy()
    embedded = GradientEmbedding(gradient_scale(probs, multilabel), h.numpy()).materialize()
    for i in range(len(h)):
        assert np.allclose(embedded[i], _loss_gradient(layer, h[i], multilabel), atol=1e-12)


def test_factorised_gradient_embedding_equals_the_materialised_one_on_sparse_rows():
    rng = np.random.default_rng(1)
    features = sp.random(30, 50, density=0.1, format="csr", random_state=2)
    probs = rng.dirichlet(np.ones(4), size=30)
    g = GradientEmbedding(gradient_scale(probs, False), features)
    dense = g.materialize()
    assert np.allclose(g.sq_norms, (dense ** 2).sum(axis=1))
    assert np.allclose(g.inner_rows(np.array([3, 7])), dense[[3, 7]] @ dense.T)


def _authors_init_centers(x: np.ndarray, k: int, random_state: np.random.RandomState) -> list[int]:
    """``init_centers`` of the BADGE authors' code (github.com/JordanAsh/badge) on the explicit
    embedding matrix: the largest row first, then rows drawn with probability ∝ D², D the
    Euclidean distance to the nearest center (their scipy ``rv_discrete`` draw as numpy's)."""
    from sklearn.metrics import pairwise_distances

    chosen = [int(np.argmax([np.linalg.norm(row, 2) for row in x]))]
    d = pairwise_distances(x, x[chosen]).ravel()
    while len(chosen) < k:
        d2 = d ** 2
        chosen.append(int(random_state.choice(len(x), p=d2 / d2.sum())))
        d = np.minimum(d, pairwise_distances(x, x[[chosen[-1]]]).ravel())
    return chosen


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("sparse", [False, True])
def test_badge_seeding_picks_what_the_authors_code_picks_on_the_explicit_embedding(seed, sparse):
    rng = np.random.default_rng(seed)
    features = sp.random(200, 40, density=0.2, format="csr", random_state=seed) if sparse \
        else rng.normal(size=(200, 16))
    probs = rng.dirichlet(np.full(6, 0.3), size=200)
    g = GradientEmbedding(gradient_scale(probs, False), features)
    ours = kmeans_plusplus(g, 12, np.random.RandomState(seed))
    assert ours.tolist() == _authors_init_centers(g.materialize(), 12, np.random.RandomState(seed))


def test_badge_fills_a_spent_potential_with_distinct_examples():
    # A model certain of everything: every gradient is zero, so k-means++ has nothing to sample by.
    probs = np.tile([1.0, 0.0, 0.0], (10, 1))
    picks = kmeans_plusplus(GradientEmbedding(gradient_scale(probs, False), np.ones((10, 3))), 4,
                            np.random.RandomState(0))
    assert len(set(picks.tolist())) == 4


def test_badge_starts_from_the_most_uncertain_example_and_never_takes_a_copy_of_a_pick():
    # Rows 0-3 grow more uncertain; row 4 is an exact copy of row 3 (the same text twice).
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.55, 0.45], [0.55, 0.45]])
    embedding = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7], [1.0, 1.0], [1.0, 1.0]])
    norms = GradientEmbedding(gradient_scale(probs, False), embedding).sq_norms
    first = int(np.argmax(norms))
    assert first == 3
    for seed in range(20):
        picks = _select("badge", FixedLearner(probs, embedding), range(5), [], 3, seed)
        assert picks[0] == first and 4 not in picks  # D² of the copy to row 3 is 0


# --- core-set ---------------------------------------------------------------------------------


def _circle(degrees):
    rad = np.radians(degrees)
    return np.stack([np.cos(rad), np.sin(rad)], axis=1)


def test_coreset_takes_the_farthest_point_from_everything_chosen_so_far():
    # Labeled at 0°; candidates at 30°, 90°, 110°, 180° on the unit circle. The farthest from 0°
    # is 180°; then 90° (90° from both chosen), then 30° (30° from 0°; 110° is only 20° from 90°).
    labeled, candidates = _circle([0]), _circle([30, 90, 110, 180])
    assert greedy_k_center(candidates, labeled, 3).tolist() == [3, 1, 0]
    # through the strategy: rows 0-3 candidates, row 4 labeled; scaled rows give the same picks
    embedding = np.vstack([candidates * [[1], [2], [3], [4]], labeled * 5])
    learner = FixedLearner(np.full((5, 2), 0.5), embedding)
    assert _select("coreset", learner, [0, 1, 2, 3], [4], 3) == [3, 1, 0]


def test_coreset_works_on_sparse_rows_as_on_dense_ones():
    x = sp.random(60, 30, density=0.2, format="csr", random_state=0)
    a = greedy_k_center(unit_rows(x[:50]), unit_rows(x[50:]), 8)
    b = greedy_k_center(unit_rows(x[:50].toarray()), unit_rows(x[50:].toarray()), 8)
    assert a.tolist() == b.tolist() and len(set(a.tolist())) == 8


# --- BALD -------------------------------------------------------------------------------------


def test_bald_scores_disagreement_between_dropout_samples():
    # example 0: every sample says [0.5, 0.5] (uncertain, but no disagreement): 0
    # example 1: samples say [1, 0] and [0, 1] (full disagreement): ln 2
    # example 2: [0.9, 0.1] and [0.5, 0.5]
    samples = np.array([[[0.5, 0.5], [1.0, 0.0], [0.9, 0.1]],
                        [[0.5, 0.5], [0.0, 1.0], [0.5, 0.5]]])
    h = lambda p: -sum(x * math.log(x) for x in p if x > 0)  # noqa: E731
    expected = [0.0, math.log(2), h([0.7, 0.3]) - (h([0.9, 0.1]) + h([0.5, 0.5])) / 2]
    assert np.allclose(bald_scores(samples, multilabel=False), expected, atol=1e-6)


def test_bald_multilabel_sums_per_label_mutual_information():
    samples = np.array([[[1.0, 0.5]], [[0.0, 0.5]]])  # label 0 disagrees fully, label 1 not at all
    assert np.allclose(bald_scores(samples, multilabel=True), [math.log(2)], atol=1e-6)


def test_bald_queries_the_examples_whose_dropout_samples_disagree():
    calm = np.tile([0.6, 0.4], (6, 1))
    samples = np.stack([calm.copy() for _ in range(10)])
    samples[::2, [1, 4]] = [0.95, 0.05]
    samples[1::2, [1, 4]] = [0.05, 0.95]
    learner = FixedLearner(calm, np.eye(6), dropout_samples=samples)
    assert sorted(_select("bald", learner, range(6), [], 2)) == [1, 4]
    assert len(set(learner.seeds)) == 10  # ten distinct seeded passes


# --- CAL --------------------------------------------------------------------------------------


def test_cal_scores_mean_kl_from_the_nearest_labeled_neighbours():
    # Labeled A at (1, 0) predicting [0.9, 0.1], B at (0, 1) predicting [0.2, 0.8]. With one
    # neighbour, candidate x near A predicting [0.5, 0.5] scores KL(A ‖ x); y near B predicting
    # [0.2, 0.8] scores 0.
    ref, ref_p = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[0.9, 0.1], [0.2, 0.8]])
    x = np.array([[0.9, 0.1], [0.1, 0.9]])
    p = np.array([[0.5, 0.5], [0.2, 0.8]])
    kl = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)
    assert np.allclose(cal_scores(x, p, ref, ref_p, False, neighbours=1), [kl, 0.0])
    # with both neighbours: the mean over them
    kl_b = 0.2 * math.log(0.2 / 0.5) + 0.8 * math.log(0.8 / 0.5)
    assert np.allclose(cal_scores(x, p, ref, ref_p, False, neighbours=2)[0], (kl + kl_b) / 2)


def test_cal_multilabel_is_the_bernoulli_kl_summed_over_labels():
    score = cal_scores(np.array([[1.0, 0.0]]), np.array([[0.5, 0.9]]), np.array([[1.0, 0.0]]),
                       np.array([[0.9, 0.9]]), True, neighbours=1)
    kl = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)  # label 0; label 1 agrees: 0
    assert np.allclose(score, [kl])


def test_cal_looks_for_neighbours_in_the_labeled_set_only():
    # rows 0-2 candidates, 3 labeled. Candidate 2 sits on top of candidate 1 and predicts like it,
    # but far from the labeled example's prediction: its neighbour is the labeled row, not row 1.
    probs = np.array([[0.9, 0.1], [0.1, 0.9], [0.1, 0.9], [0.9, 0.1]])
    embedding = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.1]])
    assert sorted(_select("cal", FixedLearner(probs, embedding), [0, 1, 2], [3], 2)) == [1, 2]


# --- embedding k-means ------------------------------------------------------------------------


def test_embedding_kmeans_takes_one_example_per_cluster_nearest_its_center():
    rng = np.random.default_rng(0)
    a = _circle(rng.normal(0, 5, size=20))       # around 0°
    b = _circle(rng.normal(120, 5, size=20))     # around 120°
    embedding = np.vstack([a, b])
    picks = _select("embedding_kmeans", FixedLearner(np.full((40, 2), 0.5), embedding), range(40), [], 2)
    assert sorted(p // 20 for p in picks) == [0, 1]
    # each pick is the example nearest (cosine) to its cluster's mean direction
    for cluster in (0, 1):
        rows = unit_rows(embedding[cluster * 20:(cluster + 1) * 20])
        best = cluster * 20 + int(np.argmax(rows @ rows.mean(axis=0)))
        assert best in picks


def test_nearest_to_centers_gives_distinct_rows_when_two_centers_share_a_nearest_row():
    x = unit_rows(np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]]))
    centers = np.array([[1.0, 0.05], [1.0, 0.1]])  # both nearest to row 0
    assert nearest_to_centers(centers, x).tolist() == [0, 1]


# --- the names, the loop, the records ---------------------------------------------------------


def test_breaking_ties_is_margin_and_says_so():
    with pytest.raises(HalError, match="'breaking_ties' is HAL's 'margin': pass --query-strategy margin"):
        make_config({"query_strategy": "breaking_ties"})
    probs = np.array([[0.5, 0.3, 0.2], [0.4, 0.35, 0.25], [0.9, 0.05, 0.05]])
    assert _select("margin", FixedLearner(probs, np.eye(3)), range(3), [], 1) == [1]  # gap 0.05


@pytest.mark.parametrize("settings, phrase", [
    ({"query_strategy": "bald"}, "--head adamw has none"),
    ({"query_strategy": "bald", "head": "lbfgs"}, "--head lbfgs has none"),
    ({"query_strategy": "bald", "head": "mlp"}, "--head mlp has none"),
    ({"dropout": 0.1}, "--dropout needs a hidden layer"),
    ({"dropout": 0.1, "head": "lbfgs"}, "--dropout does not apply to --head lbfgs"),
    ({"dropout": 0.1, "learner": "transformer"}, "keeps its checkpoint's own dropout"),
])
def test_dropout_settings_and_bald_are_checked_before_a_run(settings, phrase):
    with pytest.raises(HalError, match=phrase):
        make_config(settings)


def test_learners_without_dropout_refuse_to_sample(prepared):
    from hal.learners.lbfgs import LbfgsHeadLearner

    learner = LbfgsHeadLearner(prepared.features, 3, multilabel=False, C=1.0, tol=1e-2, max_iter=50)
    with pytest.raises(HalError, match="no dropout"):
        learner.predict_proba(np.arange(3), dropout_seed=0)


def _run(prepared, **settings):
    base = dict(dataset="toy", learner="tfidf", rounds=4, initial_size=30, query_size=8, strategy="hybrid")
    loop = new_loop(make_config({**base, **settings}).resolved(), prepared)
    return loop, list(loop)


HEADS = {"lbfgs": {"head": "lbfgs"}, "mlp": {"head": "mlp", "dropout": 0.2, "hidden_size": 16, "max_iter": 30}}


@pytest.mark.parametrize("strategy", QUERY_STRATEGIES)
def test_every_strategy_runs_reproducibly_and_records_its_query_time(prepared, strategy):
    settings = HEADS["mlp" if strategy == "bald" else "lbfgs"]
    loop, records = _run(prepared, query_strategy=strategy, **settings)
    again, records2 = _run(prepared, query_strategy=strategy, **settings)
    assert loop.state.labeled == again.state.labeled  # the same picks, round after round
    assert [r.val_f1 for r in records] == [r.val_f1 for r in records2]
    assert records[0].query_time_s == 0 and all(r.query_time_s > 0 for r in records[1:])
    summary = loop.summary()
    assert summary["total_query_time_s"] == pytest.approx(sum(r.query_time_s for r in records))
    assert len(set(loop.state.labeled)) == 30 + 3 * 8


@pytest.mark.parametrize("strategy", QUERY_STRATEGIES)
def test_every_strategy_is_defined_for_multilabel_data(strategy):
    from tests.conftest import make_toy_corpus

    from hal.data.inputs import Prepared
    from hal.data.tfidf import tfidf_features

    corpus = make_toy_corpus(multilabel=True)
    prepared = Prepared(corpus, "tfidf", tfidf_features(corpus, 5000))
    settings = HEADS["mlp" if strategy == "bald" else "lbfgs"]
    loop, records = _run(prepared, query_strategy=strategy, **settings)
    assert len(set(loop.state.labeled)) == 30 + 3 * 8 and all(0 <= r.val_f1 <= 1 for r in records)


def test_a_resumed_run_queries_what_an_uninterrupted_one_queries(prepared, tmp_path):
    settings = dict(query_strategy="badge", pool_subset=100, **HEADS["lbfgs"])
    whole, _ = _run(prepared, **settings)
    base = dict(dataset="toy", learner="tfidf", rounds=4, initial_size=30, query_size=8, strategy="hybrid")
    cfg = make_config({**base, **settings}).resolved()
    first = new_loop(cfg, prepared)
    first.run_round()
    first.run_round()
    first.save(tmp_path)
    resumed = new_loop(cfg, prepared)
    resumed.load(tmp_path)
    list(resumed)
    assert resumed.state.labeled == whole.state.labeled
