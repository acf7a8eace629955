"""Every recipe in examples/recipes/ names an existing script whose command line accepts the recipe's arguments."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from hf_ser.training.recipes import RecipeError, load_recipe, parse_overrides, run_recipe

RECIPES = sorted((Path(__file__).resolve().parents[2] / "examples" / "recipes").glob("*.yaml"))


class Parsed(Exception):
    pass


def test_there_is_a_recipe_per_paper():
    papers = {load_recipe(path).paper.split(":")[0] for path in RECIPES}
    assert papers == {"000", "001", "002", "003", "004"}


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_arguments_parse_in_its_script(path, monkeypatch, tmp_path):
    recipe = load_recipe(path)
    original = argparse.ArgumentParser.parse_args
    seen = {}

    def parse_then_stop(self, args=None, namespace=None):
        seen["args"] = original(self, args, namespace)  # exits with code 2 on an unknown option
        raise Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    overrides = {"output-dir": str(tmp_path), "data-dir": str(tmp_path)}
    if recipe.model_option:
        overrides["model"] = "org/encoder"
    else:
        with pytest.raises(RecipeError, match="takes no --model"):
            run_recipe(recipe, {**overrides, "model": "org/encoder"})
    with pytest.raises(Parsed):
        run_recipe(recipe, overrides)
    parsed = vars(seen["args"])
    for key, value in recipe.args.items():
        if key == recipe.model_option:
            continue
        assert parsed[key.replace("-", "_")] == value or str(parsed[key.replace("-", "_")]) == str(value)
    if recipe.model_option:
        assert parsed[recipe.model_option.replace("-", "_")] == "org/encoder"


def test_overrides_and_errors(tmp_path):
    assert parse_overrides(["epochs=3", "bf16=true", "--pooling=asp"]) == {
        "epochs": 3,
        "bf16": True,
        "pooling": "asp",
    }
    with pytest.raises(RecipeError, match="key=value"):
        parse_overrides(["epochs"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("script: nowhere.py\n")
    with pytest.raises(RecipeError, match="does not exist"):
        load_recipe(bad)
    bad.write_text("just a string")
    with pytest.raises(RecipeError, match="mapping"):
        load_recipe(bad)
