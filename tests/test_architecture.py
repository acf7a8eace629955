"""The package's architecture, checked from its source (issue 17): what travels to the Hub is self-contained, the
import graph has no cycle, only the command line sits above the public API, and the library below the command line
never parses arguments, writes to stderr, exits the process or imports the CLI."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "hf_ser"
# Only these may be imported by the files that travel to the Hub beside the weights (plus the standard library):
# torch, transformers, and numpy, which transformers itself requires.
HUB_FILE_IMPORTS = {"torch", "transformers", "numpy"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py")) if "templates" not in path.parts}


def imports_in(source: str, module: str, is_package: bool = False) -> list[tuple[str, int, ast.AST]]:
    """(absolute target, line, node) of every import in `source`, the code of `module` (a package's `__init__` when
    `is_package`), at any depth (functions included); relative imports are resolved against the module's package.
    The one import resolver of the architecture tests."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno, node) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            else:
                base = ".".join(
                    package[: len(package) - node.level + 1] + ([node.module] if node.module else [])
                )
            for alias in node.names:
                # `from pkg import mod` imports the module pkg.mod when there is one
                target = f"{base}.{alias.name}"
                found.append((target if target in MODULES else base, node.lineno, node))
    return found


def imports_of(path: Path) -> list[tuple[str, int, ast.AST]]:
    return imports_in(path.read_text(), module_name(path), is_package=path.name == "__init__.py")


def hf_ser_edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for target, _line, _node in imports_of(path):
            while target and target not in MODULES and "." in target:
                target = target.rsplit(".", 1)[0]  # `from hf_ser.x import name`: the module hf_ser.x
            if target in MODULES and target != name:
                edges[name].add(target)
    return edges


HUB_FILES = sorted((PACKAGE / "models").glob("*.py"))


@pytest.mark.parametrize("path", HUB_FILES, ids=lambda p: p.name)
def test_hub_files_import_only_torch_transformers_and_each_other(path):
    for target, line, node in imports_of(path):
        if isinstance(node, ast.ImportFrom) and node.level:
            assert node.level == 1, f"{path.name}:{line} reaches outside models/ ({target})"
            continue
        top = target.split(".")[0]
        assert top in HUB_FILE_IMPORTS or top in sys.stdlib_module_names, (
            f"{path.name}:{line} imports {target}: a file that travels to the Hub may import only torch, "
            "transformers (numpy), the standard library and its siblings in models/"
        )


def test_import_graph_has_no_cycle():
    edges = hf_ser_edges()
    # the package itself imports everything it exports: its own edges down are not part of a cycle
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)


def test_only_the_command_line_imports_the_public_api():
    for name, targets in hf_ser_edges().items():
        if name == "hf_ser" or name.startswith("hf_ser.cli"):
            continue
        assert "hf_ser" not in targets, (
            f"{name} imports from the package's public API (`hf_ser/__init__.py`); import from the module that "
            "defines the name instead (only hf_ser.cli sits above the public API)"
        )


def cli_code_in(source: str, module: str, is_package: bool = False) -> list[str]:
    """`module:line: name` for each thing in `source` that belongs to the command line: argparse, sys.exit, writing
    to sys.stderr, importing hf_ser.cli."""
    found = [(target, line) for target, line, _node in imports_in(source, module, is_package)]
    found += [
        (f"sys.{node.attr}", node.lineno)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "sys"
    ]
    return [
        f"{module}:{line}: {name}"
        for name, line in sorted(found, key=lambda item: item[1])
        if name in ("argparse", "sys.exit", "sys.stderr")
        or name == "hf_ser.cli"
        or name.startswith("hf_ser.cli.")
    ]


def test_the_library_has_no_cli_code():
    library = [path for name, path in MODULES.items() if not (name + ".").startswith("hf_ser.cli.")]
    assert PACKAGE / "publishing" / "hub.py" in library and PACKAGE / "cli" / "train.py" not in library
    problems = []
    for path in library:
        problems += cli_code_in(path.read_text(), module_name(path), is_package=path.name == "__init__.py")
    assert problems == []


def test_the_cli_check_can_fail():
    # A library module with each kind of command-line code, and a package `__init__` importing the CLI.
    source = (
        "import argparse\nimport sys\nfrom .cli import main\nsys.exit(main())\nprint(1, file=sys.stderr)\n"
    )
    found = [problem.split(": ")[-1] for problem in cli_code_in(source, "hf_ser.audio")]
    assert found == ["argparse", "hf_ser.cli", "sys.exit", "sys.stderr"]
    assert cli_code_in("from .. import cli\n", "hf_ser.onnx.export") == ["hf_ser.onnx.export:1: hf_ser.cli"]
    assert cli_code_in("from .. import cli\n", "hf_ser.onnx", is_package=True) == [
        "hf_ser.onnx:1: hf_ser.cli"
    ]
    assert cli_code_in("from ..cli.train import run\n", "hf_ser.onnx.export") == [
        "hf_ser.onnx.export:1: hf_ser.cli.train"
    ]


def test_subpackages_say_what_they_hold():
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc, f"{init.relative_to(SRC)} has no docstring saying what the subpackage holds"


def test_module_paths_from_before_the_subpackages_still_import():
    import importlib

    from hf_ser._moved import MOVED_MODULES

    assert MOVED_MODULES, "the table of moved modules is empty"
    for old, new in MOVED_MODULES.items():
        assert importlib.import_module(old) is importlib.import_module(new), old
    # `hf_ser.inference` and `hf_ser.evaluation` were modules and are now packages: their old names still resolve.
    from hf_ser.evaluation import evaluate_model
    from hf_ser.evaluation.report import evaluate_model as report_evaluate_model
    from hf_ser.inference import predict_logits
    from hf_ser.inference.predict import predict_logits as predict_predict_logits

    assert predict_logits is predict_predict_logits and evaluate_model is report_evaluate_model
    with pytest.raises(AttributeError, match="no attribute"):
        importlib.import_module("hf_ser.inference").no_such_name  # noqa: B018
