"""`hf-ser train`: run a paper's recipe (examples/recipes/*.yaml) on MSP-Podcast or on a generated corpus."""

from __future__ import annotations

from pathlib import Path

from .common import CommandError, writable_dir

NAME = "train"


def add_parser(commands):
    """Add `hf-ser train` to the `hf-ser` sub-command parser."""
    train = commands.add_parser(
        NAME,
        help="Train with a paper's recipe (examples/recipes/*.yaml) on the MSP-Podcast corpus.",
        description="Run a recipe: its YAML names the paper's training script and hyperparameters. Example: "
        "hf-ser train --recipe examples/recipes/paper000_masp.yaml --data-dir /data/MSP-PODCAST "
        "--model microsoft/wavlm-large --output-dir runs/masp",
    )
    train.add_argument("--recipe", required=True, help="Recipe YAML file (see examples/recipes/).")
    train.add_argument("--data-dir", help="MSP-Podcast root (Audios/, Labels/, Transcripts/).")
    train.add_argument(
        "--model", help="Pretrained speech encoder, e.g. microsoft/wavlm-large (recipe default)."
    )
    train.add_argument("--output-dir", required=True, help="Where checkpoints and the final model go.")
    train.add_argument(
        "--tiny", action="store_true", help="Smoke run: generated corpus and a tiny random model."
    )
    train.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="Override recipe arguments, e.g. --set epochs=3.",
    )
    return train


def run(args) -> int:
    """Run a parsed `hf-ser train` command."""
    from ..training.recipes import load_recipe, parse_overrides, run_recipe

    recipe = load_recipe(args.recipe)
    overrides = parse_overrides(args.set)
    overrides["output-dir"] = str(writable_dir(args.output_dir))
    if args.tiny:
        overrides["tiny"] = True
    elif args.data_dir:
        if recipe.corpus == "msp-podcast" and not Path(args.data_dir, "Labels").is_dir():
            raise CommandError(
                f"--data-dir {args.data_dir} has no Labels/ folder: is it the MSP-Podcast root?"
            )
        overrides["data-dir"] = args.data_dir
    else:
        raise CommandError("give --data-dir (the corpus) or --tiny (a generated corpus)")
    if args.model:
        overrides["model"] = args.model
    run_recipe(recipe, overrides)
    return 0
