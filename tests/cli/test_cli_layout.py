"""The command line's layout: `hf_ser/cli/` holds one module per command, each a subcommand of `hf-ser` in
`COMMANDS` order. (That the library below the CLI holds no command-line code is checked in
`tests/test_architecture.py`.)"""

from __future__ import annotations

from pathlib import Path

from hf_ser import cli

CLI_DIR = Path(cli.__file__).resolve().parent


def test_one_module_per_command():
    modules = {path.stem for path in CLI_DIR.glob("*.py")} - {"__init__", "__main__", "common"}
    assert {command.__name__.rsplit(".", 1)[-1] for command in cli.COMMANDS} == modules
    choices = cli.build_parser()._subparsers._group_actions[0].choices
    assert list(choices) == [command.NAME for command in cli.COMMANDS]
