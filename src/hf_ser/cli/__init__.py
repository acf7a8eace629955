"""The `hf-ser` command line: train, evaluate, predict, export, demo, analyze, push, push-space, ensemble, convert.

One module per command (`hf_ser/cli/<command>.py`), each with `NAME`, `add_parser(commands)` and `run(args)`;
`common.py` holds what they share (argparse value types, output-path checks, loading a saved model). A new command
is a new module listed in `COMMANDS`. The library modules the commands call (`hf_ser.publishing.hub`, `hf_ser.inference.ensemble`,
`hf_ser.evaluation.analysis`, `hf_ser.publishing.convert`, ...) never parse arguments, print errors or exit.

Every command explains its options with `--help`. Every problem the user can fix (a wrong path, model id, option
value, corpus, recipe, an unwritable output, an unreachable Hub) ends with a one-line error on stderr and exit
status 2, never a traceback: the package's errors share one base class (`hf_ser.errors.HFSERError`), caught once
in `main`, together with file-system and network errors. Output paths are checked before any work is done.
Messages are redacted (`hf_ser.errors.redact_secrets`) so that no token is ever printed. Anything else is a bug:
one line and exit status 1 (set `HF_SER_DEBUG=1` for the traceback).
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import HFSERError, is_network_error, one_line
from . import analyze, convert, demo, ensemble, evaluate, export, predict, push, push_space, train
from .common import (
    EXIT_BUG,
    EXIT_USAGE,
    CommandError,
    OneLineParser,
    check_model_source,
    load_audio_model,
    positive_float,
    positive_int,
    unit_interval,
    writable_dir,
    writable_file,
)

# In the order `hf-ser --help` lists them.
COMMANDS = (train, evaluate, predict, export, demo, analyze, push, push_space, ensemble, convert)


def build_parser() -> argparse.ArgumentParser:
    """The `hf-ser` parser, with one sub-command per module of `COMMANDS`."""
    parser = OneLineParser(
        prog="hf-ser",
        description="Speech emotion recognition on the Hugging Face stack (Interspeech 2025 SER challenge systems).",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser
    )
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def report(command: str, error: BaseException) -> int:
    """Print `error` as one redacted line and return the exit status: 2 for what the user can fix, 1 for bugs."""
    if isinstance(error, HFSERError):
        message, status = one_line(error), EXIT_USAGE
    elif is_network_error(error):
        message, status = (
            f"cannot reach the Hugging Face Hub ({type(error).__name__}: {one_line(error)})",
            EXIT_USAGE,
        )
    elif isinstance(error, OSError):
        where = f" ({error.filename})" if getattr(error, "filename", None) else ""
        message, status = f"{error.strerror or one_line(error)}{where}", EXIT_USAGE
    elif isinstance(error, UnicodeDecodeError):
        message, status = f"a file is not valid UTF-8 text ({one_line(error)})", EXIT_USAGE
    else:
        message = (
            f"internal error {type(error).__name__}: {one_line(error)} (set HF_SER_DEBUG=1 for the traceback)"
        )
        status = EXIT_BUG
    print(f"hf-ser {command}: error: {message}", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    """The `hf-ser` console script: parse `argv`, run the command, and turn any error into one line on stderr and
    an exit status (`report`); Ctrl-C exits with 130."""
    args = build_parser().parse_args(argv)
    handlers = {command.NAME: command.run for command in COMMANDS}
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        print(f"hf-ser {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if os.environ.get("HF_SER_DEBUG") and not isinstance(error, HFSERError):
            raise
        return report(args.command, error)


__all__ = [
    "COMMANDS",
    "EXIT_BUG",
    "EXIT_USAGE",
    "CommandError",
    "OneLineParser",
    "build_parser",
    "check_model_source",
    "load_audio_model",
    "main",
    "positive_float",
    "positive_int",
    "report",
    "unit_interval",
    "writable_dir",
    "writable_file",
]
