"""Ensembles of trained face parsers, from a manifest to a leaderboard submission.

Subpackages, in the order of the workflow (each imports only those above it):

    core         the Ensemble: members loaded from a manifest, input discovery and checks, test-time
                 views, member weights, the recipe, batched prediction (imports no other subpackage)
    postprocess  steps on the averaged probabilities and label maps; a registry `fit` tries
    faces        photos in the wild: detect (MTCNN, dlib, the parser), align, parse with a context
                 view, paste back, the whole photo where no face is found (ensemble.api.Parser)
    fit          python -m ensemble fit: members, weights, views and steps chosen on held-out data;
                 --wild: the photo path's options chosen on wild scenes
    submission   run_ensemble.py / python -m ensemble run: CSV, masks, pictures, report; --detector:
                 the same from the photo parser's label maps
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
from typing import Any

# home module -> the public names it defines
_HOMES = {
    "ensemble.core.inference": ("Ensemble", "Prediction"),
    "ensemble.core.batching": ("Timings",),
    "ensemble.core.inputs": ("ImageItem", "ImageSet", "InputError", "discover", "sort_stems"),
    "ensemble.core.member_weights": ("WEIGHT_MODES",),
    "ensemble.core.members": ("Manifest", "ManifestError", "Member", "load_manifest"),
    "ensemble.core.recipe": ("Recipe", "RecipeError", "read_recipe", "write_recipe"),
    "ensemble.core.tta": ("TRANSFORMS", "TTA_MODES", "TTAError", "View", "build_views"),
    # not `postprocess` the function: once the subpackage ensemble.postprocess is imported, the
    # module attribute of that name is the subpackage (import it from ensemble.postprocess.registry).
    "ensemble.postprocess.registry": ("STEPS", "PostprocessError", "build_steps"),
    "ensemble.submission.csv_codes": ("rle_decode", "rle_encode", "write_submission"),
    "ensemble.submission.run_pipeline": ("RunError", "RunOptions", "run"),
    "ensemble.api": ("Parser",),
    "tuning.models": ("resolve_device",),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = sorted(_HOME_OF)


def __getattr__(name: str) -> Any:
    home = _HOME_OF.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
