"""RunConfig: defaults a user relies on, YAML + overrides, validation messages."""

from __future__ import annotations

import re

import pytest

from hal.config import RunConfig, config_from_yaml, make_config
from hal.errors import HalError


def test_hybrid_defaults_are_the_benchmarked_recommendation():
    cfg = RunConfig().resolved()
    assert (cfg.strategy, cfg.epsilon, cfg.k, cfg.finetune_epochs) == ("hybrid", 0.02, 2, 1)
    assert cfg.lr == 1e-2 and cfg.finetune_lr == cfg.lr  # tfidf head


@pytest.mark.parametrize("strategy", ["finetune", "new_only", "retrain"])
def test_other_strategies_warm_start_for_as_many_epochs_as_retraining(strategy):
    assert make_config({"strategy": strategy, "epochs": 3}).resolved().finetune_epochs == 3


def test_transformer_defaults_follow_the_seed_study():
    cfg = make_config({"learner": "transformer"}).resolved()
    assert (cfg.model, cfg.lr, cfg.max_length, cfg.batch_size, cfg.epochs) == (
        "distilbert-base-uncased", 2e-5, 128, 16, 5)


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("strategy: retrain\nquery_size: 16\nepsilon: 0.05\n")
    cfg = config_from_yaml(path, {"query_size": "8"})
    assert (cfg.strategy, cfg.query_size, cfg.epsilon) == ("retrain", 8, 0.05)


def test_relative_paths_become_absolute(tmp_path, monkeypatch):
    (tmp_path / "mydata").mkdir()
    monkeypatch.chdir(tmp_path)
    cfg = make_config({"dataset": "mydata", "data_dir": "."}).resolved()
    assert cfg.dataset == str(tmp_path / "mydata") and cfg.data_dir == str(tmp_path)


@pytest.mark.parametrize("overrides, phrase", [
    ({"epsilon": -1}, "epsilon must be >= 0"),
    ({"k": 0}, "k must be >= 1"),
    ({"k": 1.5}, "expects int"),
    ({"replay_fraction": 2}, "replay_fraction must be in [0, 1]"),
    ({"monitor": "test"}, "unknown monitor 'test'"),
    ({"multilabel": True}, "only available for --dataset jigsaw"),
    ({"monitor": "holdout", "query_size": 1, "holdout_fraction": 0.2}, "holds back no example"),
    ({"shrink": -0.1}, "shrink and perturb must be >= 0"),
    ({"nonsense": 1}, "unknown config key 'nonsense'"),
])
def test_bad_values_name_the_problem(overrides, phrase):
    with pytest.raises(HalError, match=re.escape(phrase)):
        make_config(overrides)


def test_bad_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("a: [1, 2\n")
    with pytest.raises(HalError, match="not valid YAML"):
        config_from_yaml(path)
    path.write_text("- 1\n- 2\n")
    with pytest.raises(HalError, match="must hold a mapping"):
        config_from_yaml(path)
