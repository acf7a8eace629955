"""`hf-ser ensemble create|predict`: combine trained models into one predictor (papers 001, 002;
`hf_ser.inference.ensemble`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "ensemble"


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `hf-ser ensemble create|predict` to the `hf-ser` sub-command parser."""
    from ..inference.ensemble import METHODS

    parser = commands.add_parser(NAME, help="Combine trained models into one predictor (papers 001, 002).")
    actions = parser.add_subparsers(
        dest="ensemble_command",
        required=True,
        metavar="ACTION",
        help="create: save an ensemble; predict: use one.",
    )
    create = actions.add_parser("create", help="Save model folders as one ensemble folder.")
    create.add_argument("output_dir", help="Folder to write the ensemble (ensemble.json + members) into.")
    create.add_argument("--members", nargs="+", required=True, help="Folders of trained models.")
    create.add_argument(
        "--method",
        choices=sorted({m for ms in METHODS.values() for m in ms}),
        default=None,
        help="mean (attributes), probability averaging or plurality vote (classes); default by task.",
    )
    create.add_argument(
        "--weights", nargs="+", type=float, default=None, help="One weight per member (optional)."
    )
    create.add_argument(
        "--link", action="store_true", help="Point at the member folders instead of copying them."
    )
    predict = actions.add_parser("predict", help="Predict audio files with an ensemble (JSON lines out).")
    predict.add_argument("ensemble_dir", help="Folder written by `hf-ser ensemble create`.")
    predict.add_argument("audio", nargs="+", help="Audio files.")
    predict.add_argument("--transcripts", nargs="+", default=None, help="One transcript per file (optional).")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run a parsed `hf-ser ensemble ...` command: one JSON line per ensemble written or file predicted."""
    from ..inference.ensemble import EnsembleError, SEREnsemble

    if args.ensemble_command == "create":
        target = Path(args.output_dir)
        if target.exists() and not target.is_dir():
            raise EnsembleError(f"Cannot write the ensemble to {target}: it is a file.")
        ensemble = SEREnsemble(args.members, method=args.method, weights=args.weights)
        path = ensemble.save_pretrained(args.output_dir, copy_members=not args.link)
        print(json.dumps({"ensemble": str(path), "task": ensemble.task, "method": ensemble.method}))
        return 0
    from ..audio import load_audio

    ensemble = SEREnsemble.from_pretrained(args.ensemble_dir)
    if args.transcripts is not None and len(args.transcripts) != len(args.audio):
        raise EnsembleError(f"{len(args.transcripts)} transcripts for {len(args.audio)} audio files.")
    waveforms = [load_audio(path) for path in args.audio]
    for path, result in zip(args.audio, ensemble(waveforms, args.transcripts), strict=True):
        print(json.dumps({"file": path, **result}))
    return 0
