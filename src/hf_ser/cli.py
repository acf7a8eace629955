"""The `hf-ser` command line."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hf-ser", description="Speech emotion recognition on the Hugging Face stack.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="Run the embedded demo (no corpus, no network).")
    demo.add_argument("--output-dir", default=None, help="Where to write the model and audio (default: a temp dir).")

    analyze = commands.add_parser("analyze", help="Compare two saved models (CKA, mismatch, attention).")
    analyze.add_argument("kind", choices=("cka", "mismatch", "attention"), help="Which analysis.")
    analyze.add_argument("--model-a", required=True, help="Folder of the first saved model.")
    analyze.add_argument("--model-b", required=True, help="Folder of the second saved model.")
    analyze.add_argument("--audio", nargs="+", required=True, help="Audio files and/or folders of them.")
    analyze.add_argument("--output-dir", required=True, help="Where to write the PNG plots and CSV tables.")
    analyze.add_argument("--names", nargs=2, default=None, metavar=("A", "B"), help="Labels of the models.")
    analyze.add_argument("--pooling", choices=("frames", "mean"), default="frames", help="CKA samples.")
    analyze.add_argument("--threshold", type=float, default=0.6, help="Cosine-distance threshold (mismatch).")
    analyze.add_argument("--max-seconds", type=float, default=10.0, help="Crop each clip to this length.")

    from .hub import add_cli_commands

    add_cli_commands(commands)  # push, push-space
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        run_demo(args.output_dir)
    elif args.command == "analyze":
        from .analysis import run_analysis

        options = {"names": args.names, "pooling": args.pooling, "threshold": args.threshold}
        models = (args.model_a, args.model_b)
        run_analysis(args.kind, *models, args.audio, args.output_dir, max_seconds=args.max_seconds, **options)
        print(f"Wrote the {args.kind} plot and table to {args.output_dir}")
    elif args.command in ("push", "push-space"):
        from .hub import run_cli

        return run_cli(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
