"""`hf-ser push`: publish a saved model (weights, config, code, feature extractor, card) to the Hub.

There is deliberately no `--token` option (command lines end up in shell histories and process lists): the token
comes from `HF_TOKEN` or `hf auth login`, and `hf_ser.publishing.hub` hands it to `huggingface_hub` unread.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

NAME = "push"


def add_parser(commands):
    """Add `hf-ser push` to the `hf-ser` sub-command parser."""
    push = commands.add_parser(
        NAME, help="Publish a saved model (weights, config, code, feature extractor, card) to the Hub."
    )
    push.add_argument("model_dir", help="Folder written by save_pretrained (safetensors).")
    push.add_argument("repo_id", help="Target repository, org/name.")
    push.add_argument(
        "--eval-results", default=None, help='JSON file {"test": {"f1_macro": ..., ...}} for the card.'
    )
    push.add_argument("--space-id", default=None, help="A Space that demos the model, linked from the card.")
    push.add_argument("--license", default="apache-2.0", help="License of the weights (card metadata).")
    push.add_argument("--private", action="store_true", help="Create the repository as private.")
    push.add_argument("--revision", default=None, help="Branch to commit to.")
    push.add_argument("--commit-message", default="Upload hf_ser model", help="Message of the Hub commit.")
    return push


def read_eval_results(path: str | Path) -> dict[str, dict[str, float]]:
    """The `--eval-results` JSON file `{"test": {"f1_macro": 0.31, ...}}`, checked: invalid JSON, a wrong shape
    or a non-numeric value of a card metric raise `PublishError` naming the place; other keys (e.g.
    `eval_runtime`) are not shown on the card, and a note on stderr says so."""
    from ..publishing.hub import PublishError
    from ..publishing.model_card import METRIC_NAMES

    try:
        results = json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise PublishError(f"{path} is not UTF-8 text (expected JSON).") from None
    except json.JSONDecodeError as error:
        raise PublishError(f"{path} is not valid JSON: {error.msg} at line {error.lineno}.") from None
    if not isinstance(results, dict) or not all(isinstance(v, dict) for v in results.values()):
        raise PublishError(f"{path} must map test-set names to metric dicts.")
    ignored = []
    for dataset, metrics in results.items():
        for key, value in metrics.items():
            if key not in METRIC_NAMES:
                ignored.append(f"{dataset}.{key}")
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise PublishError(f"{path}: {dataset}.{key} must be a finite number, got {value!r}.")
    if ignored:
        print(
            f"[hf-ser push] not shown on the card (not one of {', '.join(METRIC_NAMES)}): {', '.join(ignored)}",
            file=sys.stderr,
        )
    return results


def run(args) -> int:
    """Run a parsed `hf-ser push` command."""
    # `hf_ser.publishing.hub.push_to_hub` is looked up at call time (tests replace it).
    from ..publishing.hub import push_to_hub
    from ..publishing.model_card import CardData

    card = CardData(license=args.license, space_id=args.space_id)
    if args.eval_results:
        results = read_eval_results(args.eval_results)
        for dataset, metrics in results.items():
            card.add_eval_results(dataset, metrics)
    commit = push_to_hub(
        args.model_dir,
        args.repo_id,
        card_data=card,
        private=args.private or None,
        revision=args.revision,
        commit_message=args.commit_message,
    )
    print(f"Pushed {args.model_dir} to {args.repo_id}: {commit.commit_url}")
    return 0
