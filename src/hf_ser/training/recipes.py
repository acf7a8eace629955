"""Training recipes: one YAML file per paper in `examples/recipes/`, run by `hf-ser train --recipe`.

A recipe names the paper, the training script of `examples/` that implements it (relative to the recipe file) and
the script's arguments, which carry the paper's hyperparameters. Command-line values (`--data-dir`, `--model`,
`--output-dir`, `--set key=value`) override the recipe's.

```yaml
paper: "000: Uniyal & Abrol, Interspeech 2025 (WavLM-large + MASP, focal loss)"
script: ../train_masp_paper000.py
model_option: model      # the script's option that `hf-ser train --model` sets (none: the recipe takes no --model)
corpus: msp-podcast      # what --data-dir holds (msp-podcast, or iemocap for paper 004)
args:
  learning-rate: 1.0e-4
  epochs: 50
```
"""

from __future__ import annotations

import os
import runpy
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import HFSERError


class RecipeError(HFSERError, ValueError):
    """A recipe file that cannot be used."""


@dataclass
class Recipe:
    path: Path
    paper: str
    script: Path
    args: dict = field(default_factory=dict)
    description: str = ""
    model_option: str = ""
    corpus: str = "msp-podcast"

    def argv(self, overrides: dict | None = None) -> list[str]:
        """The script's command line: recipe arguments, then overrides; `True` flags are bare, `False` dropped."""
        merged = {**self.args, **(overrides or {})}
        argv: list[str] = []
        for key, value in merged.items():
            if value is None or value is False:
                continue
            argv.append(f"--{key}")
            if value is not True:
                argv.append(str(value))
        return argv


def load_recipe(path: str | os.PathLike) -> Recipe:
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"No such recipe file: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise RecipeError(
            f"{path} is not UTF-8 text (byte {error.start}): is it a recipe YAML file?"
        ) from None
    except yaml.YAMLError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RecipeError(f"{path} is not valid YAML: {first}") from None
    if not isinstance(data, dict) or "script" not in data:
        raise RecipeError(f"{path}: a recipe is a mapping with at least 'script' (and 'paper', 'args').")
    script = (path.parent / data["script"]).resolve()
    if not script.is_file():
        raise RecipeError(f"{path}: its script {script} does not exist.")
    args = data.get("args") or {}
    if not isinstance(args, dict):
        raise RecipeError(f"{path}: 'args' must be a mapping of option names to values.")
    return Recipe(
        path,
        str(data.get("paper", "")),
        script,
        args,
        str(data.get("description", "")),
        str(data.get("model_option") or ""),
        str(data.get("corpus", "msp-podcast")),
    )


def parse_overrides(pairs: list[str]) -> dict:
    """`["epochs=3", "bf16=true"]` -> `{"epochs": 3, "bf16": True}` (values parsed as YAML scalars)."""
    overrides = {}
    for pair in pairs:
        if "=" not in pair:
            raise RecipeError(f"--set expects key=value, got {pair!r}.")
        key, value = pair.split("=", 1)
        overrides[key.strip().lstrip("-")] = yaml.safe_load(value)
    return overrides


def run_recipe(recipe: Recipe, overrides: dict | None = None):
    """Run the recipe's script in this process: its `main()` reads the recipe's arguments from `sys.argv`."""
    overrides = dict(overrides or {})
    if "model" in overrides:
        if not recipe.model_option:
            raise RecipeError(f"{recipe.path.name} takes no --model: its encoders are fixed by the paper.")
        overrides[recipe.model_option] = overrides.pop("model")
    argv = recipe.argv(overrides)
    print(
        f"[hf-ser train] {recipe.paper or recipe.path.name}: {recipe.script.name} {' '.join(argv)}",
        flush=True,
    )
    saved_argv = sys.argv
    sys.path.insert(0, str(recipe.script.parent))
    try:
        namespace = runpy.run_path(str(recipe.script), run_name="hf_ser_recipe")
        if "main" not in namespace:
            raise RecipeError(f"{recipe.script} defines no main() function.")
        sys.argv = [str(recipe.script), *argv]
        return namespace["main"]()
    finally:
        sys.argv = saved_argv
        sys.path.remove(str(recipe.script.parent))


__all__ = ["Recipe", "RecipeError", "load_recipe", "parse_overrides", "run_recipe"]
