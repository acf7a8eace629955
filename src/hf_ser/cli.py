"""The `hf-ser` command line."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hf-ser", description="Speech emotion recognition on the Hugging Face stack.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="Run the embedded demo (no corpus, no network).")
    demo.add_argument("--output-dir", default=None, help="Where to write the model and audio (default: a temp dir).")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        run_demo(args.output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
