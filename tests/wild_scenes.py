"""Wild scenes for the in-the-wild tests: drawn faces pasted into a larger canvas at known boxes."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from configs import CLASS_ID, NUM_CLASSES
from data_prep.framing import FACE_CORE, face_box, measure_framing

from ensemble_fixtures import PaletteModel
from faces import face_label_map, palette_image


def drawn_framing(n: int = 30, size: int = 64, seed: int = 1) -> dict:
    """The framing of the drawn training faces (what a prepared dataset of them stores)."""
    rng = np.random.default_rng(seed)
    return measure_framing(face_label_map(size, size, rng) for _ in range(n))


def make_scene(
    height: int, width: int, placements: list[tuple[int, int, int]], seed: int = 0
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, int, int]]]:
    """(RGB palette image, label map, face-core box per face) with a drawn face of side s at each (x, y, s)."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((height, width), np.uint8)
    boxes = []
    for x, y, s in placements:
        face = face_label_map(s, s, rng)
        window = labels[y : y + s, x : x + s]
        window[face > 0] = face[face > 0]
        x0, y0, x1, y1 = face_box(face)
        boxes.append((x0 + x, y0 + y, x1 + x, y1 + y))
    return palette_image(labels, rng), labels, boxes


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def mean_f1(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean F1 over the face classes of the ground truth (stray classes lower their precision only)."""
    scores = []
    for c in range(1, NUM_CLASSES):
        p, g = pred == c, gt == c
        if g.any():
            scores.append(2 * (p & g).sum() / (p.sum() + g.sum()))
    return float(np.mean(scores))


class CentredPaletteModel(PaletteModel):
    """PaletteModel that, like a parser trained on centred crops, sees faces only near the middle of
    its input: outside a centred disc everything is background. Misframed faces are lost."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = super().forward(x)
        h, w = x.shape[-2:]
        yy, xx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
        outside = ((yy - h / 2) ** 2 + (xx - w / 2) ** 2) > (0.5 * min(h, w)) ** 2
        logits[:, 0][:, outside] = logits.amax(1)[:, outside] + 10
        return logits


def long_haired_scene() -> tuple[np.ndarray, np.ndarray, tuple]:
    """A drawn face whose hair falls far below its square (to 250 px under a 100 px face)."""
    rng = np.random.default_rng(4)
    labels = np.zeros((420, 360), np.uint8)
    face = face_label_map(100, 100, rng)
    hair = np.zeros_like(labels)
    cv2.ellipse(hair, (180, 200), (75, 190), 0, 0, 360, 1, -1)
    labels[hair > 0] = CLASS_ID["hair"]
    window = labels[40:140, 130:230]
    window[face > 0] = face[face > 0]
    core = np.isin(labels, FACE_CORE)
    ys, xs = np.nonzero(core)
    return palette_image(labels, rng), labels, (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
