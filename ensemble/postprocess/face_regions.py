"""Faces as regions: the Face record (core box, score, landmarks) and the faces a label map holds.

Detectors (ensemble.faces.detect) return Faces; the detection-based post-processing steps
(ensemble.postprocess.face_steps) find them in the labels when no detector ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from data_prep.framing import FACE_CORE, landmarks


@dataclass
class Face:
    """One detected face: core box, score and (when known) landmarks, all in photo pixels."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: dict[str, tuple[float, float]] = field(default_factory=dict)
    found_by: str = ""  # the path that found it: mtcnn, dlib, parser or whole_photo (ensemble.faces)

    @property
    def centre(self) -> tuple[float, float]:
        return (self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2

    def scaled_box(self, factor: float) -> tuple[float, float, float, float]:
        """The box grown (factor > 1) or shrunk about its centre."""
        cx, cy = self.centre
        hw, hh = (self.box[2] - self.box[0]) * factor / 2, (self.box[3] - self.box[1]) * factor / 2
        return cx - hw, cy - hh, cx + hw, cy + hh

    def to_json(self) -> dict:
        return {
            "box": [round(float(v), 1) for v in self.box],
            "score": round(float(self.score), 4),
            "landmarks": {
                k: [round(float(x), 1), round(float(y), 1)] for k, (x, y) in self.landmarks.items()
            },
            "found_by": self.found_by,
        }


def centre_first(faces: list[Face], height: int, width: int) -> list[Face]:
    """Faces ordered by the distance of their centre to the photo's centre (the seed's rule)."""
    return sorted(faces, key=lambda f: (f.centre[0] - width / 2) ** 2 + (f.centre[1] - height / 2) ** 2)


def faces_from_labels(labels: np.ndarray, probs: np.ndarray | None = None, min_pixels: int = 1) -> list[Face]:
    """One Face per connected face-core region of a label map (score: mean face-core probability)."""
    core = np.isin(labels, FACE_CORE).astype(np.uint8)
    n, cc, stats, _ = cv2.connectedComponentsWithStats(core, connectivity=8)
    faces = []
    core_prob = probs[list(FACE_CORE)].sum(0) if probs is not None else None
    for k in range(1, n):
        x, y, w, h, area = stats[k]
        if area < min_pixels:
            continue
        region = cc[y : y + h, x : x + w] == k
        parts = np.where(region, labels[y : y + h, x : x + w], 0)
        marks = {name: (px + x, py + y) for name, (px, py) in landmarks(parts).items()}
        score = float(core_prob[y : y + h, x : x + w][region].mean()) if core_prob is not None else 1.0
        faces.append(Face((float(x), float(y), float(x + w), float(y + h)), score, marks))
    return faces
