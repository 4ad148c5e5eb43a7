"""The recipe: what `ensemble fit` chose on validation data, and what `run_ensemble.py` applies.

    {"format": 1, "manifest": "manifest.json", "members": {name: weight}, "bags": {bag: [models]},
     "views": [view names],
     "postprocess": {PostprocessConfig fields}, "scores": {...}, "decisions": {...}, "data": {...},
     "wild": {WildChoice fields} or null}

Members, views and post-processing are applied; scores, decisions and data are the record of how
they were chosen (the run report repeats them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from configs.errors import FaceParseError
from configs.schema import PostprocessConfig, error_message
from data_prep.atomic import write_json

RECIPE_FORMAT = 1
RECIPE_NAME = "recipe.json"


class RecipeError(FaceParseError):
    """A recipe file that cannot be used with the given manifest."""


class WildChoice(BaseModel):
    """How photos in the wild are parsed (ensemble.faces), as `ensemble fit --wild` chose on wild scenes."""

    model_config = ConfigDict(extra="forbid")

    detector: str = "auto"
    detector_threshold: float | None = None  # None: the detector's own default
    context: float = 2.0  # context view side in tight-crop sides (<= 1: none)
    second_pass: bool = True
    steps: dict[str, bool] = {}  # face steps switched on or off for photos (postprocess field -> on)
    scores: dict[str, Any] = {}
    data: dict[str, Any] = {}


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: int = RECIPE_FORMAT
    manifest: str
    members: dict[str, float] = Field(min_length=1)
    bags: dict[str, list[str]] = {}  # refit bags among members: each one's fold or seed models
    views: list[str] = Field(min_length=1)
    postprocess: PostprocessConfig
    scores: dict[str, Any] = {}
    decisions: dict[str, Any] = {}
    data: dict[str, Any] = {}
    wild: WildChoice | None = None


def default_recipe_path(manifest: str | Path) -> Path:
    """recipe.json beside the manifest (used by run_ensemble.py when present)."""
    return Path(manifest).parent / RECIPE_NAME


def write_recipe(path: str | Path, recipe: Recipe) -> None:
    write_json(path, recipe.model_dump(mode="json"))


def read_recipe(path: str | Path, member_names: list[str] | None = None) -> Recipe:
    """Read and check a recipe (against the manifest's member names when given)."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: recipe not found (make one with python -m ensemble fit)")
    try:
        recipe = Recipe.model_validate(json.loads(path.read_text()))
    except json.JSONDecodeError as err:
        raise RecipeError(f"{path}: not valid JSON ({err})") from None
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise RecipeError(f"{path}: {where}: {error_message(first)}") from None
    if recipe.format != RECIPE_FORMAT:
        raise RecipeError(f"{path}: recipe format {recipe.format}, this version reads {RECIPE_FORMAT}")
    weights = recipe.members.values()
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise RecipeError(f"{path}: member weights must be >= 0 with a positive sum")
    if member_names is not None:
        check_members(recipe, member_names, path)
    return recipe


def check_members(recipe: Recipe, member_names: list[str], path: str | Path) -> None:
    unknown = sorted(set(recipe.members) - set(member_names))
    if unknown:
        raise RecipeError(
            f"{path}: members {unknown} are not in the manifest ({member_names}); "
            f"was the recipe fit for another manifest?"
        )
