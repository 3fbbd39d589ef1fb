"""The package's joins: no module imports another's private names, packages form no import
cycle, the lowest floors import nothing above them, and no function grows past 80 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "edgeae"
# Floors that must not import the ones listed (the house reads data -> models/train -> export
# -> runtime -> codegen / web / bench / scale; the runtime is torch-free and stands alone).
FORBIDDEN = {
    "edgeae.data": {"edgeae.train", "edgeae.models", "edgeae.export", "edgeae.codegen", "edgeae.web",
                    "edgeae.bench", "edgeae.scale", "edgeae.cli", "edgeae.rows"},
    "edgeae.runtime": {"edgeae.data", "edgeae.train", "edgeae.models", "edgeae.export", "edgeae.codegen",
                       "edgeae.web", "edgeae.bench", "edgeae.scale", "edgeae.cli", "edgeae.checkpoint"},
    "edgeae.models": {"edgeae.train", "edgeae.export", "edgeae.codegen", "edgeae.web", "edgeae.bench",
                      "edgeae.scale", "edgeae.cli"},
    "edgeae.export": {"edgeae.codegen", "edgeae.web", "edgeae.scale", "edgeae.cli"},
}


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return out


MODULES = _modules()


def _imports(tree: ast.Module) -> list[tuple[str, list[str]]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("edgeae"):
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.startswith("edgeae")]
    return found


def _floor(name: str) -> str:
    return ".".join(name.split(".")[:2])


def test_no_module_imports_another_modules_private_names():
    bad = [f"{mod} imports {target}.{n}" for mod, tree in MODULES.items() for target, names in _imports(tree)
           for n in names if n.startswith("_") and not n.startswith("__") and target != mod]
    assert not bad, "\n".join(bad)


def test_no_import_cycle_between_packages():
    edges: dict[str, set[str]] = {}
    for mod, tree in MODULES.items():
        edges.setdefault(_floor(mod), set()).update(
            _floor(t) for t, _ in _imports(tree) if _floor(t) not in (_floor(mod), "edgeae"))
    cycles = sorted({tuple(sorted((a, b))) for a, outs in edges.items() for b in outs if a in edges.get(b, ())})
    assert not cycles, cycles


def test_data_uses_only_the_runtime_input_contract():
    """Sample layouts have one definition, the runtime's input contract (numpy only); the data
    layer uses it and nothing else of the runtime, and the runtime never reads through data."""
    used = {t for mod, tree in MODULES.items() if _floor(mod) == "edgeae.data" for t, _ in _imports(tree)
            if _floor(t) == "edgeae.runtime"}
    assert used <= {"edgeae.runtime.contract"}, used


@pytest.mark.parametrize("floor", sorted(FORBIDDEN))
def test_lower_floors_import_nothing_above_them(floor):
    bad = [f"{mod} imports {t}" for mod, tree in MODULES.items() if _floor(mod) == floor
           for t, _ in _imports(tree) if _floor(t) in FORBIDDEN[floor]]
    assert not bad, "\n".join(bad)


def test_functions_stay_under_80_lines():
    long = [f"{mod}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for mod, tree in MODULES.items() for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 80]
    assert not long, "\n".join(long)
