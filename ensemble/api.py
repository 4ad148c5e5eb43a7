"""Parsing photos from Python (notebooks): `Parser.from_manifest(path).parse(image) -> labels`.

from ensemble.api import Parser
parser = Parser.from_manifest("models/celebamask/manifest.json")   # recipe.json beside it is used
labels = parser.parse(rgb)            # (H, W) uint8 class IDs at the photo's size
result = parser.parse_faces(rgb)      # labels + faces (box, score, landmarks), centre first
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from configs.schema import EnsembleConfig
from data_prep.framing import DEFAULT_FRAMING, read_framing
from data_prep.layout import read_rgb
from ensemble.core.inference import Ensemble
from ensemble.core.inputs import is_prepared
from ensemble.core.members import Member
from ensemble.core.recipe import WildChoice
from ensemble.faces.photo_parser import WildParser, WildResult
from ensemble.postprocess.registry import Step, build_steps


def training_framing(members: Sequence[Member], dataset: str | Path | None = None) -> tuple[dict, str]:
    """(framing, where it came from): dataset's, else the first member's training dataset's, else the
    documented default (data_prep.framing.DEFAULT_FRAMING)."""
    if dataset is not None:
        return read_framing(dataset), str(dataset)
    for m in members:
        for ref in (m.config.get("data") or {}).get("datasets") or []:
            path = Path(ref.get("path", "")) if isinstance(ref, dict) else None
            if path is not None and is_prepared(path):
                return read_framing(path), str(path)
    return dict(DEFAULT_FRAMING), "default"


def wild_parser(
    model: Ensemble,
    steps: list[Step],
    framing: dict,
    explicit: dict[str, Any] | None = None,
    *,
    detector: str | Callable | None = None,
    detector_threshold: float | None = None,
    context: float | None = None,
    second_pass: bool | None = None,
    max_faces: int = 8,
    max_pixels: int | None = WildParser.max_pixels,
) -> WildParser:
    """The photo parser of an ensemble and its steps: each option None takes the recipe's `wild` choice
    (ensemble fit --wild), else WildChoice's default; the face steps chosen there replace the steps'
    unless a flag (explicit, with or without its `postprocess.` prefix) set them."""
    chosen = model.recipe.wild if model.recipe is not None and model.recipe.wild else WildChoice()
    given = {f"postprocess.{k}" for k in explicit or {}} | set(explicit or {})
    wild_steps = {k: v for k, v in chosen.steps.items() if f"postprocess.{k}" not in given}
    if wild_steps:
        steps = build_steps(model.postprocess.model_copy(update=wild_steps))
    return WildParser(
        ensemble=model,
        steps=steps,
        framing=framing,
        detector=chosen.detector if detector is None else detector,
        second_pass=chosen.second_pass if second_pass is None else second_pass,
        max_faces=max_faces,
        max_pixels=max_pixels,
        context=chosen.context if context is None else context,
        detector_threshold=chosen.detector_threshold if detector_threshold is None else detector_threshold,
    )


class Parser:
    """An ensemble that parses whole photos: faces found, aligned, parsed and pasted back."""

    def __init__(self, wild: WildParser, framing_source: str = "default"):
        self.wild = wild
        self.framing_source = framing_source

    @classmethod
    def from_manifest(
        cls,
        manifest: str | Path,
        recipe: str | Path | None = None,
        use_recipe: bool = True,
        detector: str | Callable | None = None,
        framing: str | Path | None = None,
        device: str = "auto",
        ensemble: EnsembleConfig | None = None,
        explicit: dict[str, Any] | None = None,
        second_pass: bool | None = None,
        max_faces: int = 8,
        detector_threshold: float | None = None,
        context: float | None = None,
    ) -> Parser:
        """Members, weights, views and post-processing as `run` would use them (recipe first); the wild
        options (detector, detector_threshold, context, second_pass, face steps) from the recipe's
        `wild` when it has one and the argument is None, else the defaults (auto, the detector's, 2, on)."""
        ens = ensemble or EnsembleConfig()
        steps: list[Step] = []
        model = Ensemble.from_manifest(
            manifest,
            recipe=recipe,
            use_recipe=use_recipe,
            config=ens,
            explicit=explicit,
            device=device,
            before_load=lambda post: steps.extend(build_steps(post)),
        )
        frame, source = training_framing(model.members, framing)
        wild = wild_parser(
            model,
            steps,
            frame,
            explicit,
            detector=detector,
            detector_threshold=detector_threshold,
            context=context,
            second_pass=second_pass,
            max_faces=max_faces,
            max_pixels=ens.max_pixels,
        )
        return cls(wild, source)

    def describe(self) -> str:
        """The detector and options in one line (for the command's output)."""
        w = self.wild
        detector = w.detector if isinstance(w.detector, str) else getattr(w.detector, "name", "custom")
        used = getattr(w._detect, "name", "none") if w._detect is not None else "none"
        threshold = "default" if w.detector_threshold is None else w.detector_threshold
        return (
            f"{detector} ({used}; threshold {threshold}), context {w.context:g}, "
            f"second pass {'on' if w.second_pass else 'off'}, "
            "then the photo's own parse (whole, then windows) where none is found"
        )

    def parse_faces(self, image: np.ndarray | str | Path) -> WildResult:
        """Labels, faces (centre first) and a message (e.g. no face) for an RGB uint8 array or a file."""
        path = None
        if not isinstance(image, np.ndarray):
            path, image = Path(image), read_rgb(image)
        return self.wild(np.ascontiguousarray(image), path)

    def parse(self, image: np.ndarray | str | Path) -> np.ndarray:
        """(H, W) uint8 class IDs (configs.CLASSES) at the photo's own size."""
        return self.parse_faces(image).labels


def parse(image: np.ndarray, manifest: str | Path, **options) -> np.ndarray:
    """One-off: labels of an RGB photo with the ensemble of a manifest (options: Parser.from_manifest's)."""
    return Parser.from_manifest(manifest, **options).parse(image)
