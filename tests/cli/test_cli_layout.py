"""The command line's layout: `hf_ser/cli/` holds one module per command, and the library below it never parses
arguments, prints to stderr, exits the process or imports the CLI (no import cycle through the CLI)."""

from __future__ import annotations

import ast
from pathlib import Path

import hf_ser
from hf_ser import cli

PACKAGE = Path(hf_ser.__file__).resolve().parent
CLI_DIR = PACKAGE / "cli"


def _library_files() -> list[Path]:
    return [path for path in sorted(PACKAGE.rglob("*.py")) if CLI_DIR not in path.parents]


def _cli_problems(source: str, module: str) -> list[str]:
    """What the module `module` (e.g. `hf_ser.publishing.hub`) with `source` holds that belongs to the CLI: argparse,
    sys.exit, writing to sys.stderr, importing hf_ser.cli."""
    package = module.split(".")[:-1]
    problems = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # resolve `from ..cli import x` / `from . import cli` against the module's package
                parent = package[: len(package) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "sys":
            names = [f"sys.{node.attr}"]
        else:
            continue
        for name in names:
            if name == "argparse" or name in ("sys.exit", "sys.stderr") or name.startswith("hf_ser.cli"):
                problems.append(f"{module}:{node.lineno}: {name}")
    return problems


def test_the_library_has_no_cli_code():
    files = _library_files()
    assert PACKAGE / "publishing" / "hub.py" in files and PACKAGE / "inference" / "ensemble.py" in files
    problems = []
    for path in files:
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if parts[-1] == "__init__":
            module += ".__init__"  # relative imports in a package's __init__ resolve against the package
        problems += _cli_problems(path.read_text(encoding="utf-8"), module)
    assert problems == []


def test_the_check_finds_cli_code():
    # The check itself must be able to fail: a library module with each kind of CLI code.
    source = (
        "import argparse\nimport sys\nfrom .cli import main\nsys.exit(main())\nprint(1, file=sys.stderr)\n"
    )
    found = [problem.split(": ")[-1] for problem in _cli_problems(source, "hf_ser.audio")]
    assert found == ["argparse", "hf_ser.cli", "hf_ser.cli.main", "sys.exit", "sys.stderr"]
    assert _cli_problems("from .. import cli\n", "hf_ser.onnx.export") == ["hf_ser.onnx.export:1: hf_ser.cli"]
    assert _cli_problems("from .. import cli\n", "hf_ser.onnx.__init__") == [
        "hf_ser.onnx.__init__:1: hf_ser.cli"
    ]


def test_one_module_per_command():
    modules = {path.stem for path in CLI_DIR.glob("*.py")} - {"__init__", "__main__", "common"}
    assert {command.__name__.rsplit(".", 1)[-1] for command in cli.COMMANDS} == modules
    choices = cli.build_parser()._subparsers._group_actions[0].choices
    assert list(choices) == [command.NAME for command in cli.COMMANDS]
