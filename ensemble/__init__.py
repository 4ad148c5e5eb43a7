"""Ensemble of trained face parsers: member loading, TTA, weighted softmax averaging,
post-processing, leaderboard CSV/PNG export and the report."""

from ensemble.inputs import ImageItem, ImageSet, InputError, discover, sort_stems
from ensemble.members import Manifest, ManifestError, Member, load_manifest, resolve_device
from ensemble.pipeline import RunError, RunOptions, run
from ensemble.postprocess import STEPS, PostprocessError, build_steps, postprocess
from ensemble.predict import Prediction, Timings, predict, predict_probs
from ensemble.recipe import Recipe, RecipeError, read_recipe, write_recipe
from ensemble.submission import rle_decode, rle_encode, write_submission
from ensemble.tta import TRANSFORMS, TTA_MODES, TTAError, View, build_views
from ensemble.weights import WEIGHT_MODES

__all__ = [
    "ImageItem",
    "ImageSet",
    "InputError",
    "discover",
    "sort_stems",
    "Manifest",
    "ManifestError",
    "Member",
    "load_manifest",
    "resolve_device",
    "RunError",
    "RunOptions",
    "run",
    "STEPS",
    "PostprocessError",
    "build_steps",
    "postprocess",
    "Prediction",
    "Timings",
    "predict",
    "predict_probs",
    "rle_decode",
    "rle_encode",
    "write_submission",
    "TRANSFORMS",
    "TTA_MODES",
    "TTAError",
    "View",
    "build_views",
    "Recipe",
    "RecipeError",
    "read_recipe",
    "write_recipe",
    "WEIGHT_MODES",
]
