"""Issue #18, input hygiene: hostile YAML (alias bombs, deep nesting, repeated keys), wrong types
anywhere in a run or sweep file, sweep names that are not one folder, repeated grid values, and
labels that are missing or not whole numbers. Each is one line (bounded in size), exit code 2
through the real CLIs, within a second, before Ray starts or data loads."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from hal.core.config import RunConfig, coerce, make_config
from hal.core.errors import HalError, shown
from hal.core.yaml_input import MAX_ALIAS_NODES, load_yaml
from hal.data import datasets
from hal.data.datasets import load_corpus
from hal.sweep.spec import SweepSpec, load_spec

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
MAX_MESSAGE = 300  # characters: "one clear line", whatever the user's value
# The errors answer in well under a second on an idle machine; the bound only catches work that
# grows with a hostile value (the alias bomb ran for minutes), with room for a loaded CI runner.
QUICK_S = 5.0
# The sweep scripts import Ray, torch and sklearn (~6 s on an idle 2-core machine) before they
# read the spec; the spec check itself takes milliseconds.
SWEEP_LIMIT_S = 30


def bomb(depth: int, key: str = "dataset", width: int = 9) -> str:
    """A billion-laughs YAML: each level a list of ``width`` aliases of the level below."""
    names = "abcdefghijklmnop"
    lines = [f"{names[0]}: &{names[0]} [{', '.join(['x'] * width)}]"]
    for i in range(1, depth):
        lines.append(f"{names[i]}: &{names[i]} [{', '.join([f'*{names[i - 1]}'] * width)}]")
    return "\n".join(lines) + f"\n{key}: *{names[depth - 1]}\n"


def refused(call, *phrases: str, path: Path | None = None) -> str:
    """``call()`` raises one short ``HalError`` line holding every phrase, quickly.
    ``path``: a file the message names, which does not count towards its length."""
    start = time.monotonic()
    with pytest.raises(HalError) as info:
        call()
    message = str(info.value)
    assert time.monotonic() - start < QUICK_S, message
    assert "\n" not in message and len(message.replace(str(path), "")) < MAX_MESSAGE, message
    for phrase in phrases:
        assert phrase in message, message
    return message


# ---------------------------------------------------------------------------------------------
# YAML


@pytest.mark.parametrize("text, phrases", [
    (bomb(6), ["aliases that expand to more than", "an alias bomb"]),
    (bomb(9, key="name"), ["aliases that expand to more than"]),
    (bomb(3, width=30), ["aliases that expand to more than"]),  # wide instead of deep
    ("x: &a [1, *a]\n", ["alias at line 1 inside the value it refers to"]),
    ("k: " + "[" * 60 + "1" + "]" * 60 + "\n", ["nests values deeper than 50 levels"]),
    ("k: 2\nrounds: 3\nk: 4\n", ["repeats the key 'k' at line 3 (first at line 1)"]),
    ("run:\n  lr: 0.1\n  epochs: 2\n  lr: 0.2\n", ["repeats the key 'lr' at line 4 (first at line 2)"]),
    ("grid: {seed: [0], 'seed': [1]}\n", ["repeats the key 'seed' at line 1"]),
    ("1: a\n", ["key at line 1 that YAML does not read as a name ('1')"]),
    ("on: a\n", ["does not read as a name ('on')", "quote a key"]),
    ("? [a, b]\n: 1\n", ["does not read as a name"]),
    ("k: " + "9" * 5000 + "\n", ["not valid YAML at line 1", "4300 digits"]),
    ("d: 2024-13-45\n", ["not valid YAML at line 1", "month must be in 1..12"]),
    ("a: !!python/object:os.system x\n", ["not valid YAML at line 1", "could not determine a constructor"]),
    ("a: [1, 2\n", ["not valid YAML at line 2", "fix its syntax"]),
    ("- 1\n- 2\n", ["must hold a mapping"]),
])
def test_hostile_yaml_is_refused_in_one_short_line(tmp_path, text, phrases):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    refused(lambda: load_yaml(path), "config file", *phrases)


def test_oversized_config_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("# padding\n" * 200_000)
    refused(lambda: load_yaml(path), "bytes, more than a config can need")


def test_anchors_used_a_few_times_and_merge_keys_are_fine(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("base: &base {dataset: synthetic, rounds: 3, epochs: 1}\n"
                    "one: *base\ntwo: *base\nboth: [*base, *base]\n"
                    "run:\n  <<: *base\n  rounds: 5\n"  # a merge key's values may be overridden
                    + bomb(3, key="small"))  # 9 x 9 x 9 values: under the bound
    data = load_yaml(path)
    assert data["run"] == {"dataset": "synthetic", "rounds": 5, "epochs": 1}
    assert data["both"] == [data["base"], data["base"]] and len(data["small"]) == 9
    assert 9 ** 3 < MAX_ALIAS_NODES < 9 ** 5


# ---------------------------------------------------------------------------------------------
# echoed values stay short


def _nested(depth: int, width: int = 9) -> list:
    value: list = ["x"] * width
    for _ in range(depth):
        value = [value] * width  # shared, like aliases: 9**depth leaves, built instantly
    return value


@pytest.mark.parametrize("value", [
    "x" * 1_000_000, _nested(9), {f"k{i}": "v" * 1000 for i in range(1000)}, 10 ** 5000,
    "line one\nline two", b"\x00" * 10_000,
], ids=["long_str", "nested", "big_dict", "huge_int", "newline", "bytes"])
def test_shown_is_bounded_and_one_line(value):
    start = time.monotonic()
    text = shown(value)
    assert time.monotonic() - start < QUICK_S
    assert len(text) <= 80 and "\n" not in text


@pytest.mark.parametrize("call", [
    lambda v: coerce("dataset", v), lambda v: coerce("k", v), lambda v: coerce("lr", v),
    lambda v: make_config({"strategy": v}), lambda v: make_config({"monitor": v}),
    lambda v: make_config({"dataset": v}).resolved(),
    lambda v: coerce(v, 1),  # as a key
    lambda v: SweepSpec(name=v).validate(), lambda v: SweepSpec(strategies=[v]).validate(),
    lambda v: SweepSpec(epsilon=[v]).validate(), lambda v: SweepSpec(storage_path=v).validate(),
])
@pytest.mark.parametrize("value", [_nested(6), "x" * 100_000, "é/" * 50_000],
                         ids=["nested", "long", "long_path"])
def test_every_message_that_echoes_a_value_is_short(call, value):
    try:
        call(value)
    except HalError as exc:
        echoed = str(exc).split(": valid keys are")[0]  # the list of keys is fixed, not the user's
        assert len(echoed) < MAX_MESSAGE and "\n" not in str(exc), str(exc)[:500]
    except TypeError:  # a list as a mapping key: not a value a user can pass here
        pass


def test_text_settings_refuse_control_characters():
    refused(lambda: make_config({"data_dir": "a\x00b"}), "data_dir", "control character")
    refused(lambda: make_config({"model": "a\nb"}), "model", "control character")
    refused(lambda: make_config({"model": True}), "'model' expects text, got True")


# ---------------------------------------------------------------------------------------------
# sweep YAML: every key, wrong type or value


def _spec(tmp_path, text: str) -> SweepSpec:
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    return load_spec(path).validate()


@pytest.mark.parametrize("text, phrases", [
    ("resources: 5\n", ["'resources' in", "must be a mapping", "got 5"]),
    ("resources: [1]\n", ["'resources' in", "must be a mapping"]),
    ("resources: {cpus_per_trial: [1]}\n", ["cpus_per_trial in", "expects a number, got [1]"]),
    ("resources: {cpus_per_trial: true}\n", ["cpus_per_trial in", "expects a number, got True"]),
    ("resources: {cpus_per_trial: 1e-9}\n", ["cpus_per_trial must be 0 or at least 0.0001"]),
    ("resources: {cpus_per_trial: .nan}\n", ["cpus_per_trial must be a finite number"]),
    ("resources: {cpus_per_trial: 0}\n", ["cpus_per_trial must be > 0"]),
    ("resources: {gpus_per_trial: -1}\n", ["gpus_per_trial must be >= 0"]),
    ("resources: {gpus_per_trial: 1.5}\n", ["gpus_per_trial above 1 must be a whole number"]),
    ("resources: {max_concurrent: 1.5}\n", ["max_concurrent in", "expects an integer, got 1.5"]),
    ("resources: {max_concurrent: ~}\n", ["max_concurrent in", "expects an integer, got None"]),
    ("max_failures: abc\n", ["max_failures in", "expects an integer, got 'abc'"]),
    ("max_failures: 2.7\n", ["max_failures in", "expects an integer, got 2.7"]),
    ("max_failures: false\n", ["max_failures in", "expects an integer, got False"]),
    ("max_failures: -1\n", ["max_failures must be >= 0"]),
    ("storage_path: [1]\n", ["storage_path in", "expects text, got [1]"]),
    ("storage_path: ''\n", ["storage_path '' is empty"]),
    ("name: [a]\n", ["name in", "expects text"]),
    ("name: {a: 1}\n", ["name in", "expects text"]),
    ("name: ~\n", ["name in", "expects text, got None"]),
    ("name: true\n", ["name in", "expects text, got True"]),
    ("run: [1]\n", ["'run' in", "must be a mapping of run settings"]),
    ("run: 0\n", ["'run' in", "must be a mapping of run settings"]),
    ("grid: 3\n", ["'grid' in", "must be a mapping"]),
    ("grid: {epsilon: {a: 1}}\n", ["the grid of 'epsilon' holds {'a': 1}, not a number"]),
    ("grid: {epsilon: [[0.1]]}\n", ["the grid of 'epsilon' holds [0.1], not a number"]),
    ("grid: {k: [true]}\n", ["the grid of 'k' holds True, not an integer"]),
    ("grid: {seed: [1.5]}\n", ["the grid of 'seed' holds 1.5, not an integer"]),
    ("grid: {strategies: [[hybrid]]}\n", ["the grid of 'strategies' holds ['hybrid'], not text"]),
    ("grid: {strategies: [hybird]}\n", ["unknown strategy 'hybird'"]),
    ("grid: {epsilon: }\n", ["the grid of 'epsilon' is empty"]),
    ("grid: {epsilon: []}\n", ["the grid of 'epsilon' is empty"]),
    ("nmae: x\n", ["unknown key 'nmae' in"]),
    ("grid: {epsilons: [0.1]}\n", ["unknown key 'epsilons' under 'grid' in"]),
])
def test_sweep_yaml_wrong_types_and_values(tmp_path, text, phrases):
    refused(lambda: _spec(tmp_path, text), *phrases)


def test_numeric_strings_read_as_run_keys_read_them(tmp_path):
    """YAML 1.1 reads ``1e-9`` (no dot) as a string: a sweep setting, like a run key, reads a
    numeric string as the number; an integer setting takes "2" or 2.0 but never 2.5 or "2.0"."""
    spec = _spec(tmp_path, "resources: {cpus_per_trial: 5e-1, gpus_per_trial: '0', max_concurrent: '3'}\n"
                           "max_failures: 2.0\ngrid: {epsilon: [1e-2, '2e-2'], seed: ['7']}\n")
    assert (spec.cpus_per_trial, spec.gpus_per_trial, spec.max_concurrent, spec.max_failures) == (0.5, 0, 3, 2)
    assert spec.epsilon == [0.01, 0.02] and spec.seed == [7]
    assert make_config({"lr": "5e-1", "seed": "7"}).lr == 0.5  # the same rule for run keys
    refused(lambda: _spec(tmp_path, "max_failures: '2.0'\n"), "expects an integer, got '2.0'")


@pytest.mark.parametrize("name, phrase", [
    ("..", "is not a folder name"), (".", "is not a folder name"), ("", "is empty"),
    ("   ", "is empty"), ("a/b", "path separator"), ("../up", "path separator"),
    ("a\\b", "path separator"), ("a\x00b", "control character"), ("a\nb", "control character"),
    ("a\x1bb", "control character"), (" a", "starts or ends with a space"),
    ("x" * 101, "longer than 100 bytes"), ("é" * 51, "longer than 100 bytes"),
    ("bad\udcffname", "is not valid text"),
])
def test_sweep_names_must_be_one_plain_folder(tmp_path, name, phrase):
    refused(lambda: SweepSpec(name=name).validate(), "sweep name", phrase, "--name")
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"name": name}) if "\udcff" not in name else "")
    if "\udcff" not in name:
        refused(lambda: load_spec(tmp_path / "s.yaml").validate(), "sweep name", phrase)


@pytest.mark.parametrize("name", ["demo", "demo_2", "ε-sweep", "a.b", "x" * 100, "2024"])
def test_plain_names_are_kept(name):
    assert SweepSpec(name=name).validate().name == name


@pytest.mark.parametrize("grid, phrase", [
    ({"seed": [0, 0]}, "the grid of 'seed' repeats 0"),
    ({"seed": [0, 0.0]}, "the grid of 'seed' repeats 0"),
    ({"epsilon": [0.01, 0.010]}, "the grid of 'epsilon' repeats 0.01"),
    ({"epsilon": [0.01, "1e-2"]}, "the grid of 'epsilon' repeats 0.01"),
    ({"k": [1, 2, 1]}, "the grid of 'k' repeats 1"),
    ({"query_size": [16, "16"]}, "the grid of 'query_size' repeats 16"),
    ({"strategies": ["hybrid", "retrain", "hybrid"]}, "the grid of 'strategies' repeats 'hybrid'"),
])
def test_repeated_grid_values_are_refused(tmp_path, grid, phrase):
    refused(lambda: SweepSpec(**grid).validate(), phrase, "give each value once")
    refused(lambda: _spec(tmp_path, yaml.safe_dump({"grid": grid})), phrase)


# ---------------------------------------------------------------------------------------------
# labels


@pytest.fixture
def no_repo_data(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HAL_DATA_DIR", raising=False)
    monkeypatch.setattr(datasets, "REPO_DATA_DIR", tmp_path / "repo_data")


def _csv_folder(folder: Path, train_labels: list[str], test_labels: list[str]) -> Path:
    """train.csv/test.csv written as text, so the reader's own parsing of "NaN", "1.0" is tested."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, labels in (("train", train_labels), ("test", test_labels)):
        rows = [f"document {split} {i},{label}" for i, label in enumerate(labels)]
        (folder / f"{split}.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
    return folder


GOOD = ["0", "1"] * 6


@pytest.mark.parametrize("train, test, phrases", [
    # spellings of a missing value: a hole in the data, never a class 'NaN'
    (GOOD[:3] + ["NaN"] + GOOD[4:], GOOD[:4], ["train.csv", "label column 'label'", "row 3", "'NaN'",
                                                "missing value", "label or remove those rows"]),
    (["a", "b"] * 6, ["a", "nan"], ["test.csv", "row 1", "'nan'", "missing value"]),
    (["a", "b", "None", "null"] * 3, ["a"], ["6 row(s)", "row 2", "'None'"]),
    (["a", " ", "b", "a"] * 3, ["a"], ["row 1", "missing value"]),
    (GOOD[:5] + [""] + GOOD[6:], GOOD[:4], ["1 row(s) have no label in column 'label'", "first at row 5"]),
    # numbers that are not class ids
    (["0", "1.5", "1", "0"] * 3, GOOD[:4], ["train.csv", "label column 'label' holds 1.5 at row 1",
                                            "not a whole number", "3 row(s)"]),
    (GOOD, ["0", "1", "inf"], ["test.csv", "holds inf at row 2", "not a whole number"]),
])
def test_missing_and_fractional_labels_in_a_folder(tmp_path, no_repo_data, train, test, phrases):
    folder = _csv_folder(tmp_path / "mine", train, test)
    refused(lambda: load_corpus(RunConfig(dataset=str(folder), val_size=2)), *phrases)


@pytest.mark.parametrize("train, phrases", [
    (GOOD[:3] + ["NaN"] + GOOD[4:], ["row 3", "'NaN'", "missing value"]),
    (GOOD[:5] + ["0.5"] + GOOD[6:], ["holds 0.5 at row 5", "not a whole number"]),
    (GOOD[:5] + [""] + GOOD[6:], ["no label in column 'label'", "first at row 5"]),
    (["0", "1", "positive", "1"] * 3, ["must hold integers 0..1", "'positive' at row 2"]),
])
def test_missing_and_fractional_labels_in_a_named_dataset(tmp_path, no_repo_data, train, phrases):
    _csv_folder(tmp_path / "data" / "imdb", train, GOOD[:4])
    refused(lambda: load_corpus(RunConfig(dataset="imdb", data_dir=str(tmp_path / "data"), val_size=2)),
            *phrases)


def test_whole_float_labels_are_classes(tmp_path, no_repo_data):
    folder = _csv_folder(tmp_path / "mine", ["0.0", "1.0", "2", "1"] * 3, ["2.0", "0"])
    corpus = load_corpus(RunConfig(dataset=str(folder), val_size=3))
    assert corpus.label_names == ["0", "1", "2"] and corpus.labels[-2:].tolist() == [2, 0]
    _csv_folder(tmp_path / "data" / "imdb", ["0.0", "1.0"] * 6, ["1.0", "0"])
    named = load_corpus(RunConfig(dataset="imdb", data_dir=str(tmp_path / "data"), val_size=2))
    assert named.labels[-2:].tolist() == [1, 0]


def test_a_missing_column_lists_a_bounded_number_of_columns(tmp_path, no_repo_data):
    folder = tmp_path / "wide"
    folder.mkdir()
    header = ",".join(["text", "label"] + [f"column_{i}" for i in range(5000)])
    for split in ("train", "test"):
        (folder / f"{split}.csv").write_text(header + "\n")
    refused(lambda: load_corpus(RunConfig(dataset=str(folder), label_column="y" * 10_000)),
            "has no column", "(5002 in all)", path=folder / "train.csv")


# ---------------------------------------------------------------------------------------------
# through the real CLIs: exit 2, one line, in seconds


def _cli(args: list[str], tmp_path: Path) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    done = subprocess.run([sys.executable, *args], cwd=tmp_path, env=ENV, capture_output=True,
                          text=True, timeout=120, check=False)
    return done, time.monotonic() - start


def _assert_cli_refuses(done: subprocess.CompletedProcess, seconds: float, *phrases: str,
                        limit_s: float = 10) -> None:
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr[-2000:]
    assert len(done.stderr) < MAX_MESSAGE + 40, done.stderr[:500]
    for phrase in phrases:
        assert phrase in done.stderr, done.stderr
    # The check itself takes milliseconds (see ``refused``); this is the interpreter and imports,
    # and a guard against the old behaviour (minutes and gigabytes for an alias bomb).
    assert seconds < limit_s, f"{seconds:.1f} s"


def test_alias_bomb_through_hal_run(tmp_path):
    (tmp_path / "bomb.yaml").write_text(bomb(9))
    done, seconds = _cli(["-m", "hal", "run", "--config", "bomb.yaml", "--out", "out"], tmp_path)
    _assert_cli_refuses(done, seconds, "hal", "alias bomb")
    assert not (tmp_path / "out").exists()


GRID, OPTUNA = "eps_k_grid.py", "optuna_pareto.py"


@pytest.mark.parametrize("script, text, args, phrase", [
    (GRID, bomb(9, key="name"), [], "alias bomb"),
    (OPTUNA, bomb(9).replace("\ndataset:", "\nrun:\n  dataset:"), [], "alias bomb"),  # inside run:
    (GRID, "resources: 5\n", [], "'resources' in"),
    (OPTUNA, "max_failures: 2.7\n", [], "expects an integer, got 2.7"),
    (GRID, "resources: {cpus_per_trial: true}\n", [], "expects a number, got True"),
    (GRID, "name: demo\n", ["--name", ".."], "sweep name '..' is not a folder name"),
    (GRID, "name: demo\n", ["--seeds", "0,0"], "the grid of 'seed' repeats 0 (--seeds"),
    (GRID, "name: demo\n", ["--epsilons", "0.01,0.010"], "the grid of 'epsilon' repeats 0.01"),
    (OPTUNA, "name: demo\n", ["--query-sizes", "16,16"], "the grid of 'query_size' repeats 16"),
])
def test_sweep_scripts_refuse_bad_input_in_one_line(tmp_path, script, text, args, phrase):
    (tmp_path / "sweep.yaml").write_text(text)
    done, seconds = _cli([str(ROOT / "sweeps" / script), "--config", "sweep.yaml", "--storage-path",
                          str(tmp_path / "results"), *args], tmp_path)
    _assert_cli_refuses(done, seconds, phrase, limit_s=SWEEP_LIMIT_S)
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())
