"""RunConfig: defaults a user relies on, YAML + overrides, validation messages."""

from __future__ import annotations

import math
import re
from dataclasses import fields

import pytest

from hal.core.config import FIELD_TYPES, RANGES, Range, RunConfig, config_from_yaml, make_config
from hal.core.errors import HalError


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
    ({"epsilon": -1}, "epsilon must be in [0, 1]"),
    ({"k": 0}, "k must be in [1, 100,000]"),
    ({"k": 1.5}, "expects an integer"),
    ({"replay_fraction": 2}, "replay_fraction must be in [0, 1]"),
    ({"monitor": "test"}, "unknown monitor 'test'"),
    ({"multilabel": True}, "only available for --dataset jigsaw"),
    ({"monitor": "holdout", "query_size": 1, "holdout_fraction": 0.2}, "holds back no example"),
    ({"shrink": -0.1}, "shrink must be in [0, 1]"),
    ({"lr": "inf"}, "lr must be a finite number"),
    ({"seed": -1}, "seed must be in [0, 4,294,967,295], got -1: set --seed"),
    ({"k": True}, "config key 'k' expects an integer, got True"),
    ({"multilabel": 1}, "config key 'multilabel' expects true or false, got 1"),
    ({"learner": "tfidf", "tfidf_max_features": 1_000_000, "hidden_size": 4096}, "do not fit in memory"),
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


def test_every_numeric_field_has_a_range():
    numeric = {f.name for f in fields(RunConfig) if f.type.replace(" | None", "") in ("int", "float")}
    assert numeric == set(RANGES), "add a RANGES row in hal/config.py for each numeric field"
    defaults = RunConfig()
    for name, allowed in RANGES.items():  # the defaults themselves are valid
        value = getattr(defaults, name)
        assert value is None or value in allowed, name


def _invalid_values(name: str, allowed: Range) -> list:
    """Values just outside each end, non-finite and boolean values of field ``name``."""
    whole = FIELD_TYPES[name].startswith("int")
    step = 1 if whole else 1e-3
    low = allowed.low if allowed.open_low else allowed.low - step
    high = allowed.high if allowed.open_high else allowed.high + step
    values = [int(low) if whole else low, int(high) if whole else high, True]
    return values if whole else values + [math.inf, -math.inf, math.nan, "inf"]


@pytest.mark.parametrize("name", sorted(RANGES))
def test_numeric_family_out_of_range_non_finite_or_bool_is_refused(name):
    for value in _invalid_values(name, RANGES[name]):
        with pytest.raises(HalError, match=rf"'?{name}'? (must be|expects)"):
            make_config({name: value})


def test_bools_and_numbers_do_not_mix(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("k: true\n")
    with pytest.raises(HalError, match="'k' expects an integer, got True"):
        config_from_yaml(path)
    path.write_text("eval_test_every_round: 1\n")
    with pytest.raises(HalError, match="expects true or false"):
        config_from_yaml(path)
    path.write_text("eval_test_every_round: yes\nk: 3.0\nlr: 1e-3\n")
    cfg = config_from_yaml(path)
    assert (cfg.eval_test_every_round, cfg.k, cfg.lr) == (True, 3, 1e-3)
    assert make_config({"multilabel": "false", "seed": "7"}).seed == 7


@pytest.mark.parametrize("setup, phrase", [
    (lambda p: p.mkdir(), "is a directory, not a file"),
    (lambda p: p.write_bytes(b"k: 2\nmodel: caf\xe9\n"), "is not UTF-8 text"),
    (lambda p: None, "does not exist"),
])
def test_config_file_problems(tmp_path, setup, phrase):
    path = tmp_path / "c.yaml"
    setup(path)
    with pytest.raises(HalError, match=phrase):
        config_from_yaml(path)


def test_config_path_under_a_file(tmp_path):
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(HalError, match="is under .*notes.txt', which is a file"):
        config_from_yaml(tmp_path / "notes.txt" / "c.yaml")
