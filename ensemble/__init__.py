"""Ensembles of trained face parsers, from a manifest to a leaderboard submission.

Subpackages, in the order of the workflow (each imports only those above it):

    core         the Ensemble: members loaded from a manifest, input discovery and checks, test-time
                 views, member weights, the recipe, batched prediction (imports no other subpackage)
    postprocess  steps on the averaged probabilities and label maps; a registry `fit` tries
    fit          python -m ensemble fit: members, weights, views and steps chosen on held-out data
    submission   run_ensemble.py / python -m ensemble run: CSV, masks, pictures, report
    faces        photos in the wild: detect, align, parse, paste back (ensemble.api.Parser)
    distill      python -m ensemble distill: one student trained on the Ensemble's probabilities
    export       python -m ensemble export: one member as ONNX or an smp folder
    cli          the commands' flags and entry points (python -m ensemble COMMAND)

    from ensemble import Ensemble
    ens = Ensemble.from_manifest("models/NAME/manifest.json")   # recipe.json beside it is used
    labels = ens.predict([rgb_uint8_array])[0]

Public names are imported when first used (so `python -m ensemble --help` loads no torch).
"""

from __future__ import annotations

import importlib

# public name -> module that defines it
_EXPORTS = {
    "Ensemble": "ensemble.core.inference",
    "Prediction": "ensemble.core.inference",
    "Timings": "ensemble.core.batching",
    "ImageItem": "ensemble.core.inputs",
    "ImageSet": "ensemble.core.inputs",
    "InputError": "ensemble.core.inputs",
    "discover": "ensemble.core.inputs",
    "sort_stems": "ensemble.core.inputs",
    "Manifest": "ensemble.core.members",
    "ManifestError": "ensemble.core.members",
    "Member": "ensemble.core.members",
    "load_manifest": "ensemble.core.members",
    "Recipe": "ensemble.core.recipe",
    "RecipeError": "ensemble.core.recipe",
    "read_recipe": "ensemble.core.recipe",
    "write_recipe": "ensemble.core.recipe",
    "TRANSFORMS": "ensemble.core.tta",
    "TTA_MODES": "ensemble.core.tta",
    "TTAError": "ensemble.core.tta",
    "View": "ensemble.core.tta",
    "build_views": "ensemble.core.tta",
    "WEIGHT_MODES": "ensemble.core.member_weights",
    "PostprocessError": "ensemble.postprocess.registry",
    "build_steps": "ensemble.postprocess.registry",
    "RunError": "ensemble.submission.run_pipeline",
    "RunOptions": "ensemble.submission.run_pipeline",
    "run": "ensemble.submission.run_pipeline",
    "rle_decode": "ensemble.submission.csv_codes",
    "rle_encode": "ensemble.submission.csv_codes",
    "write_submission": "ensemble.submission.csv_codes",
    "Parser": "ensemble.api",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ensemble' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
