"""The dependency rule of ARCHITECTURE.md, checked on the source: each layer imports only the layers below it.

``pipeline/core`` and ``pipeline/render`` are pure: no argparse, no printing, no file access.
``pipeline/steps`` (each step's work as a function) may touch files but parses no arguments and prints nothing.
``model/`` never imports ``pipeline/``; the Dagger module imports neither.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

# layer -> the pipeline packages it may not import
FORBIDDEN = {
    "pipeline/core": (
        "pipeline.io",
        "pipeline.render",
        "pipeline.steps",
        "pipeline.commands",
        "pipeline.runner",
        "pipeline.cli",
    ),
    "pipeline/render": (
        "pipeline.io",
        "pipeline.steps",
        "pipeline.commands",
        "pipeline.runner",
        "pipeline.cli",
    ),
    "pipeline/io": (
        "pipeline.render",
        "pipeline.steps",
        "pipeline.commands",
        "pipeline.runner",
        "pipeline.cli",
    ),
    "pipeline/steps": ("pipeline.commands", "pipeline.runner", "pipeline.dag", "pipeline.cli"),
    "pipeline/runner": ("pipeline.render", "pipeline.steps", "pipeline.commands", "pipeline.cli"),
    "model": ("pipeline",),
    "src/ml_cicd": ("pipeline", "model"),
}
PURE = ("pipeline/core", "pipeline/render")
# layers that may touch files but parse no arguments and print nothing (the pure ones are checked above)
QUIET = ("pipeline/steps",)
FILE_CALLS = frozenset(
    {
        "open",
        "read_text",
        "write_text",
        "read_bytes",
        "write_bytes",
        "mkdir",
        "unlink",
        "rmtree",
        "read_csv",
        "read_parquet",
        "to_csv",
        "to_parquet",
    }
)


def _modules(layer: str) -> list[Path]:
    return sorted((REPO / layer).rglob("*.py"))


def _imports(tree: ast.Module) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def _calls(tree: ast.Module) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else ""
            )
            found.append((node.lineno, name))
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_each_layer_imports_only_what_lies_below_it(layer: str) -> None:
    modules = _modules(layer)
    assert modules, f"no modules under {layer}"
    for path in modules:
        imported = _imports(ast.parse(path.read_text()))
        bad = [
            name
            for name in imported
            for prefix in FORBIDDEN[layer]
            if name == prefix or name.startswith(prefix + ".")
        ]
        assert not bad, f"{path.relative_to(REPO)} imports {bad}, which {layer} may not"


def test_commands_share_only_their_options_module() -> None:
    for path in _modules("pipeline/commands"):
        imported = _imports(ast.parse(path.read_text()))
        others = [
            n
            for n in imported
            if n.startswith("pipeline.commands.") and not n.startswith("pipeline.commands.options")
        ]
        assert not others, f"{path.relative_to(REPO)} imports another command: {others}"


def _quiet(path: Path) -> tuple[ast.Module, Path]:
    """Parse ``path`` and assert it parses no arguments and prints nothing; return its tree and its name."""
    tree = ast.parse(path.read_text())
    where = path.relative_to(REPO)
    assert "argparse" not in _imports(tree), f"{where} uses argparse"
    for line, name in _calls(tree):
        assert name != "print", f"{where}:{line} prints"
    return tree, where


@pytest.mark.parametrize("layer", PURE)
def test_pure_layers_parse_no_arguments_print_nothing_and_touch_no_files(layer: str) -> None:
    for path in _modules(layer):
        tree, where = _quiet(path)
        for line, name in _calls(tree):
            assert name not in FILE_CALLS, f"{where}:{line} touches files ({name})"


@pytest.mark.parametrize("layer", QUIET)
def test_steps_parse_no_arguments_and_print_nothing(layer: str) -> None:
    for path in _modules(layer):
        tree, where = _quiet(path)
        streams = [
            node.lineno
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and node.attr in {"stdout", "stderr"}
            and isinstance(node.value, ast.Name)
            and node.value.id == "sys"
        ]
        assert not streams, f"{where}:{streams[0]} writes to sys.stdout or sys.stderr"


def test_the_rule_catches_a_violation(tmp_path: Path) -> None:
    # given: a module that breaks all three rules of a pure layer
    source = "import argparse\nfrom pipeline.io.tables import read_table\nprint(open('x').read())\n"
    tree = ast.parse(source)

    # then: the checks above would name each of them
    assert "argparse" in _imports(tree)
    assert any(name.startswith("pipeline.io") for name in _imports(tree))
    assert {name for _, name in _calls(tree)} >= {"print", "open"}


def test_every_module_says_what_it_is_for() -> None:
    for layer in ("pipeline", "model", "src/ml_cicd"):
        for path in _modules(layer):
            if path.name == "__init__.py" and not path.read_text().strip():
                continue
            doc = ast.get_docstring(ast.parse(path.read_text()))
            assert doc, f"{path.relative_to(REPO)} has no module docstring"
            lines = len(path.read_text().splitlines())
            assert layer == "src/ml_cicd" or lines <= 400, (
                f"{path.relative_to(REPO)} has {lines} lines (limit 400)"
            )
