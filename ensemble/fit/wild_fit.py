"""`ensemble fit --wild WILD_PREP`: the photo path's options chosen on wild scenes, like every other stage.

On a labelled wild dataset (`python -m data_prep synth --wild`: scenes with faces at random scale and
place) the photo parser (ensemble.faces) is run with the fitted recipe's members, views and steps, and
its options are chosen one at a time, in WILD_OPTIONS order, each value kept only where it raises the
mean face F1 over the scenes: the detector joined by the parser's windows (MTCNN + parser), the
detector's threshold, the context view, the second pass, then each face step (face_clip,
glasses_to_skin, eye_repair, clothes_below) switched the other way from the recipe's choice (a step
the aligned fit kept is tried off). The choice and every score tried go into recipe.wild
(ensemble.core.recipe.WildChoice), which `predict` and `run --detector` apply.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from configs import NUM_CLASSES
from configs.errors import FaceParseError
from data_prep.layout import PreparedDataset, read_label_map, read_rgb
from ensemble.core.recipe import WildChoice
from ensemble.faces.photo_parser import WildParser
from ensemble.postprocess.registry import build_steps
from tuning.metrics import image_confusion, scores_from_confusion

# Option -> values tried (the threshold's depend on the detector; None: the detector's own default).
THRESHOLDS = {"mtcnn": (0.5, 0.7, 0.9), "dlib": (0.0, 0.3, 0.6)}
CONTEXTS = (1.0, 1.5, 2.0, 2.5)
FACE_STEPS = ("face_clip", "glasses_to_skin", "eye_repair", "clothes_below")
MIN_GAIN = 1e-4  # an option's value must beat the current choice by this much to be kept


class WildFitError(FaceParseError):
    """A wild dataset that cannot be fit on (missing split, no scenes)."""


def wild_scenes(root: Path, split: str, max_images: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(image, label map) of up to max_images scenes of a prepared wild dataset's split."""
    prep = PreparedDataset(Path(root))
    ids = prep.split_ids(split)  # a missing split is a DatasetError naming the file
    if not ids:
        raise WildFitError(f"{root}: the {split!r} split holds no scene")
    return [(read_rgb(prep.image_path(i)), read_label_map(prep.mask_path(i))) for i in ids[:max_images]]


def detector_name(parser: WildParser) -> str:
    """The detector that answers first (auto's first installed one)."""
    d = parser._detect
    first = d.detectors[0] if hasattr(d, "detectors") else d
    return getattr(first, "name", "none") if first is not None else "none"


def score_parser(parser: WildParser, scenes, progress: bool = False, desc: str = "") -> float:
    """Mean F1 over the 18 face classes from the confusion summed over the scenes."""
    cm = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    for image, labels in tqdm(scenes, desc=desc, unit="scene", disable=not progress, leave=False):
        cm += image_confusion(parser(image).labels, labels)
    return float(scores_from_confusion(cm)["f1"])


def fit_wild(
    parser: WildParser, scenes, data: dict[str, Any] | None = None, progress: bool = True
) -> WildChoice:
    """The WildChoice that scores best on the scenes, one option at a time (coordinate ascent)."""
    t0 = time.perf_counter()
    detector = parser.detector if isinstance(parser.detector, str) else "custom"
    post = parser.ensemble.postprocess
    # The face steps as the recipe has them (the parser's steps are built from it).
    steps_on: dict[str, bool] = {s: bool(getattr(post, s)) for s in FACE_STEPS}

    def with_options(**kw) -> WildParser:
        return dataclasses.replace(parser, **kw)

    current = {
        "detector": parser.detector,
        "detector_threshold": None,
        "context": parser.context,
        "second_pass": parser.second_pass,
    }
    best = score_parser(with_options(**current), scenes, progress, "wild: start")
    start, tried = best, []
    first = detector_name(parser)
    options: list[tuple[str, tuple, Callable[[Any], WildParser]]] = [
        # the first detector joined by the parser's windows (ensemble.faces.detect.DetectorUnion)
        (
            "detector",
            (f"{first}+parser",) if isinstance(parser.detector, str) and first in ("mtcnn", "dlib") else (),
            lambda v: with_options(**{**current, "detector": v}),
        ),
        (
            "detector_threshold",
            THRESHOLDS.get(first, ()),
            lambda v: with_options(**{**current, "detector_threshold": v}),
        ),
        ("context", CONTEXTS, lambda v: with_options(**{**current, "context": v})),
        ("second_pass", (True, False), lambda v: with_options(**{**current, "second_pass": v})),
    ]
    for name, values, make in options:
        for value in values:
            if value == current[name]:
                continue
            f1 = score_parser(make(value), scenes, progress, f"wild: {name}={value}")
            tried.append({"option": name, "value": value, "f1": round(f1, 5), "kept": f1 > best + MIN_GAIN})
            if f1 > best + MIN_GAIN:
                best, current[name] = f1, value
    for step in FACE_STEPS:  # each switched the other way from where the recipe has it
        trial = {**steps_on, step: not steps_on[step]}
        candidate = with_options(**current, steps=build_steps(post.model_copy(update=trial)))
        f1 = score_parser(candidate, scenes, progress, f"wild: {step}")
        kept = f1 > best + MIN_GAIN
        tried.append({"option": step, "value": trial[step], "f1": round(f1, 5), "kept": kept})
        if kept:
            best, steps_on = f1, trial
    return WildChoice(
        detector=current["detector"] if isinstance(current["detector"], str) else detector,
        detector_threshold=current["detector_threshold"],
        context=current["context"],
        second_pass=current["second_pass"],
        steps=steps_on,
        scores={"start": round(start, 5), "final": round(best, 5), "tried": tried},
        data={**(data or {}), "scenes": len(scenes), "seconds": round(time.perf_counter() - t0, 1)},
    )
