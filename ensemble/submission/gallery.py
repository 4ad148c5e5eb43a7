"""The run's gallery: every scored image with its own F1 and worst classes, worst first.

Each image's confusion matrix is computed anyway for the stage table; here it also ranks the
image, so the report shows the faces the ensemble gets most wrong before the ones it gets right.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from configs import CLASSES
from tuning.metrics import scores_from_confusion

GALLERY_DIR = "gallery"
GALLERY_HEIGHT = 160  # px per tile of a gallery panel: small enough to write one for every image
WORST_CLASSES = 3


@dataclass
class GalleryEntry:
    """One scored image: its name, mean face F1 (NaN: no face class in truth or prediction),
    its worst classes (name, F1) and its panel, relative to the report."""

    image: str
    f1: float
    panel: str
    worst: list[tuple[str, float]] = field(default_factory=list)

    def caption(self) -> str:
        worst = ", ".join(f"{name} {f1:.2f}" for name, f1 in self.worst) or "none"
        score = "—" if math.isnan(self.f1) else f"{self.f1:.4f}"
        return f"{self.image}: F1 {score}; worst classes: {worst}"

    def data(self) -> dict[str, str]:
        """The data-* attributes that let tools read the gallery's order."""
        return {"image": self.image, "f1": "nan" if math.isnan(self.f1) else f"{self.f1:.6f}"}


def gallery_entry(image: str, cm: np.ndarray, panel: str, worst: int = WORST_CLASSES) -> GalleryEntry:
    """Score one image's (C, C) confusion matrix: mean face F1 and its lowest-scoring face classes."""
    scores = scores_from_confusion(cm)
    per_class = [(name, scores["per_class_f1"][name]) for name in CLASSES[1:]]
    present = sorted((item for item in per_class if item[1] is not None), key=lambda item: item[1])
    return GalleryEntry(image=image, f1=scores["f1"], panel=panel, worst=present[:worst])


def worst_first(entries: list[GalleryEntry]) -> list[GalleryEntry]:
    """Ascending F1, ties by name; images without a score last."""
    return sorted(entries, key=lambda e: (math.isnan(e.f1), 0.0 if math.isnan(e.f1) else e.f1, e.image))
