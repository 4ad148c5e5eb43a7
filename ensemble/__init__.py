"""Ensemble of trained face parsers: member loading, TTA, weighted softmax averaging,
post-processing, leaderboard CSV/PNG export and the report."""

from ensemble.core.batching import Prediction, Timings, predict, predict_probs
from ensemble.core.inputs import ImageItem, ImageSet, InputError, discover, sort_stems
from ensemble.core.member_weights import WEIGHT_MODES
from ensemble.core.members import Manifest, ManifestError, Member, load_manifest, resolve_device
from ensemble.core.recipe import Recipe, RecipeError, read_recipe, write_recipe
from ensemble.core.tta import TRANSFORMS, TTA_MODES, TTAError, View, build_views
from ensemble.postprocess.registry import STEPS, PostprocessError, build_steps, postprocess
from ensemble.submission.csv_codes import rle_decode, rle_encode, write_submission
from ensemble.submission.run_pipeline import RunError, RunOptions, run

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
