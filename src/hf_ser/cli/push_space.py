"""`hf-ser push-space`: publish the Gradio demo (space_app/) as a Hub Space showing a model."""

from __future__ import annotations

NAME = "push-space"


def add_parser(commands):
    """Add `hf-ser push-space` to the `hf-ser` sub-command parser (no `--token`, as for `hf-ser push`)."""
    space = commands.add_parser(NAME, help="Publish the Gradio demo (space_app/) as a Hub Space.")
    space.add_argument("repo_id", help="Target Space, org/name.")
    space.add_argument("--model", required=True, help="Model repository the Space shows (sets HF_SER_MODEL).")
    space.add_argument(
        "--app-dir", default=None, help="The Space folder (default: space_app/ of the checkout)."
    )
    space.add_argument("--private", action="store_true", help="Create the Space as private.")
    return space


def run(args) -> int:
    """Run a parsed `hf-ser push-space` command."""
    from ..publishing.hub import push_space

    commit = push_space(args.repo_id, model_id=args.model, app_dir=args.app_dir, private=args.private or None)
    print(f"Pushed the Space {args.repo_id} (model {args.model}): {commit.commit_url}")
    return 0
