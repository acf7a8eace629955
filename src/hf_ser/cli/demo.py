"""`hf-ser demo`: the embedded demo (synthesize a corpus, train, evaluate, reload, predict; no network)."""

from __future__ import annotations

from .common import positive_float, positive_int, writable_dir

NAME = "demo"


def add_parser(commands):
    """Add `hf-ser demo` to the `hf-ser` sub-command parser."""
    demo = commands.add_parser(
        NAME,
        help="Run the embedded demo: synthesize a corpus, train, evaluate, reload, predict (no corpus, no network).",
    )
    demo.add_argument("--output-dir", default="demo_output", help="Where the corpus, model and report go.")
    demo.add_argument(
        "--steps", type=positive_int, default=None, help="Training steps (default 400, about 2-3 minutes)."
    )
    demo.add_argument(
        "--seconds", type=positive_float, default=None, help="Also stop training after this many seconds."
    )
    return demo


def run(args) -> int:
    """Run a parsed `hf-ser demo` command."""
    from ..training.demo import run_demo

    kwargs = {"train_seconds": args.seconds}
    if args.steps is not None:
        kwargs["train_steps"] = args.steps
    run_demo(writable_dir(args.output_dir), **kwargs)
    return 0
