"""The package's layers (docs/design.md, "Map of the code"): each imports only those below it,
and the AL core, the data layer, the learners and a plain run never load Ray."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Bottom to top. A module may import its own layer and the layers listed before it.
LAYERS = ("hal.core", "hal.data", "hal.learners", "hal.runs", "hal.sweep")
# analysis reads result files and the record schema: the core only.
ALLOWED = {layer: LAYERS[: i + 1] for i, layer in enumerate(LAYERS)}
ALLOWED["analysis"] = ("hal.core", "analysis")


def _layer(module: str) -> str | None:
    return next((layer for layer in ALLOWED if module == layer or module.startswith(layer + ".")), None)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _modules() -> list[tuple[str, Path]]:
    out = []
    for top in ("hal", "analysis"):
        for path in sorted((ROOT / top).rglob("*.py")):
            out.append((".".join(path.relative_to(ROOT).with_suffix("").parts), path))
    return out


def test_every_module_belongs_to_a_layer():
    loose = [name for name, _ in _modules()
             if _layer(name) is None and name not in ("hal", "hal.__init__", "hal.__main__")]
    assert not loose, f"modules outside the layers {LAYERS}: {loose}"


@pytest.mark.parametrize("name, path", _modules(), ids=lambda v: v if isinstance(v, str) else "")
def test_imports_only_lower_layers(name, path):
    layer = _layer(name)
    if layer is None:
        return
    wrong = sorted(m for m in _imports(path)
                   if (m.startswith("hal.") or m.startswith("analysis."))
                   and _layer(m) is not None and _layer(m) not in ALLOWED[layer])
    assert not wrong, f"{name} ({layer}) imports {wrong}; allowed: {ALLOWED[layer]}"


def test_core_data_learners_and_a_plain_run_never_import_ray():
    modules = [name for name, _ in _modules()
               if _layer(name) in ("hal.core", "hal.data", "hal.learners", "hal.runs")]
    code = ("import importlib, sys\n"
            f"for m in {modules!r}:\n    importlib.import_module(m)\n"
            "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"importing the layers below hal.sweep loaded Ray: {out.stdout[:300]}"


MAX_LINES = 400  # a module past this holds more than one job: split it


def test_every_module_stays_under_400_lines():
    long = {name: n for name, path in _modules() if (n := len(path.read_text().splitlines())) >= MAX_LINES}
    assert not long, f"modules of {MAX_LINES}+ lines (split them by what they do): {long}"
