"""Ensemble of trained face parsers: member loading, TTA, weighted softmax averaging,
post-processing, leaderboard CSV/PNG export and the report.

The names below are imported from their subpackage on first use (PEP 562), so `import ensemble`
(and every `python -m ensemble ... --help`) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

# home module -> the public names it defines
_HOMES = {
    "ensemble.core.batching": ("Prediction", "Timings", "predict", "predict_probs"),
    "ensemble.core.inputs": ("ImageItem", "ImageSet", "InputError", "discover", "sort_stems"),
    "ensemble.core.member_weights": ("WEIGHT_MODES",),
    "ensemble.core.members": ("Manifest", "ManifestError", "Member", "load_manifest"),
    "ensemble.core.recipe": ("Recipe", "RecipeError", "read_recipe", "write_recipe"),
    "ensemble.core.tta": ("TRANSFORMS", "TTA_MODES", "TTAError", "View", "build_views"),
    # `postprocess` the function: once the subpackage ensemble.postprocess is imported, the module
    # attribute of that name is the subpackage (import the function from ensemble.postprocess.registry).
    "ensemble.postprocess.registry": ("STEPS", "PostprocessError", "build_steps", "postprocess"),
    "ensemble.submission.csv_codes": ("rle_decode", "rle_encode", "write_submission"),
    "ensemble.submission.run_pipeline": ("RunError", "RunOptions", "run"),
    "tuning.models": ("resolve_device",),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

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


def __getattr__(name: str) -> Any:
    home = _HOME_OF.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
