"""The training framing: where the face sits in a prepared dataset's images, measured from its label maps.

Faces in the wild are cropped so they look like the training faces: the crop maps the detected face
box (or the parsed part centroids) onto the median box (or centroids) measured here. Stored in
dataset.json as "framing" at prepare time:

    {"box": [cx, cy, w, h], "landmarks": {"r_eye": [x, y], "l_eye": ..., "nose": ..., "mouth": ...},
     "samples": n}

in fractions of the image side (images are square). The face box is the bounding box of the face
core (skin, nose, glasses, eyes, brows, mouth, lips: not hair, ears, neck, cloth or hat).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from configs import CLASS_ID
from data_prep.layout import DatasetError, PreparedDataset, read_label_map

FACE_CORE = tuple(
    CLASS_ID[n]
    for n in ("skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "mouth", "u_lip", "l_lip")
)
# Landmark -> the classes whose centroid it is (image coordinates: r_eye is on the image's left).
LANDMARK_CLASSES = {
    "r_eye": (CLASS_ID["r_eye"],),
    "l_eye": (CLASS_ID["l_eye"],),
    "nose": (CLASS_ID["nose"],),
    "mouth": (CLASS_ID["mouth"], CLASS_ID["u_lip"], CLASS_ID["l_lip"]),
}
# Used when a dataset.json has no framing and its label maps cannot be read: the tests' drawn faces
# and CelebAMask-HQ crops both put the face core about here (approximate, see README).
DEFAULT_FRAMING = {
    "box": [0.5, 0.5, 0.5, 0.62],
    "landmarks": {"r_eye": [0.4, 0.42], "l_eye": [0.6, 0.42], "nose": [0.5, 0.53], "mouth": [0.5, 0.65]},
    "samples": 0,
}
MAX_SAMPLES = 200  # label maps read to measure the framing (evenly spaced over the dataset)


def face_box(labels: np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding box (x0, y0, x1, y1), exclusive ends, of the face-core pixels; None without any."""
    core = np.isin(labels, FACE_CORE)
    rows, cols = np.flatnonzero(core.any(1)), np.flatnonzero(core.any(0))
    if not rows.size:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def landmarks(labels: np.ndarray, min_pixels: int = 1) -> dict[str, tuple[float, float]]:
    """Centroid (x, y) of each landmark's classes (pixel centres), for those present."""
    out = {}
    for name, classes in LANDMARK_CLASSES.items():
        ys, xs = np.nonzero(np.isin(labels, classes))
        if xs.size >= min_pixels:
            out[name] = (float(xs.mean()) + 0.5, float(ys.mean()) + 0.5)
    return out


def measure_framing(label_maps: Iterable[np.ndarray]) -> dict:
    """Median face box and landmarks over label maps, in fractions of each map's side."""
    boxes, points = [], {name: [] for name in LANDMARK_CLASSES}
    for labels in label_maps:
        h, w = labels.shape
        box = face_box(labels)
        if box is None:
            continue
        x0, y0, x1, y1 = box
        boxes.append([(x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h])
        for name, (x, y) in landmarks(labels).items():
            points[name].append([x / w, y / h])
    if not boxes:
        return dict(DEFAULT_FRAMING)
    marks = {n: np.median(p, axis=0).round(4).tolist() for n, p in points.items() if p}
    if len(marks) < len(LANDMARK_CLASSES):
        marks = {**DEFAULT_FRAMING["landmarks"], **marks}
    return {"box": np.median(boxes, axis=0).round(4).tolist(), "landmarks": marks, "samples": len(boxes)}


def spaced(ids: Sequence[str], n: int = MAX_SAMPLES) -> list[str]:
    """At most n ids, evenly spaced (the first one included)."""
    if len(ids) <= n:
        return list(ids)
    return [ids[int(i)] for i in np.linspace(0, len(ids) - 1, n).round()]


def dataset_framing(prep: PreparedDataset, ids: Sequence[str], to_classes: np.ndarray | None = None) -> dict:
    """The framing measured on (at most MAX_SAMPLES of) the given samples' label maps.

    to_classes (256-entry table) maps masks in another label set's IDs (lapa11) to ours first.
    """
    maps = (read_label_map(prep.mask_path(i)) for i in spaced(ids))
    return measure_framing(maps if to_classes is None else (to_classes[m] for m in maps))


def read_framing(root: str | Path | None) -> dict:
    """The framing of a prepared dataset: from dataset.json, measured from its train labels when an
    older dataset.json has none, or DEFAULT_FRAMING when root is None or has no readable labels."""
    if root is None:
        return dict(DEFAULT_FRAMING)
    root = Path(root)
    prep = PreparedDataset(root.parent if root.name == "dataset.json" else root)
    meta = prep.meta()
    if "framing" in meta:
        return meta["framing"]
    try:
        ids = [i for split in ("train", "val") for i in prep.split_ids(split)]
        return dataset_framing(prep, ids)
    except DatasetError:
        return dict(DEFAULT_FRAMING)
