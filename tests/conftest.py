"""Shared pytest fixtures. Keep each one small, deterministic and documented."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest

from configs import CLASS_ID, NUM_CLASSES
from data_prep.atomic import write_image
from data_prep.layout import PreparedDataset, write_meta, write_splits


def draw_face(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A cartoon face on a textured background: (RGB uint8, label map uint8).

    Parts named l_* sit on the image's right side (the subject's left), as in CelebAMask-HQ.
    Position, scale and colours vary so a per-pixel prior alone cannot segment it.
    """
    s = size / 64.0
    # Textured background: smooth colour blobs plus stripes, so "not face" is not one colour.
    noise = rng.uniform(0, 255, (4, 4, 3)).astype(np.float32)
    image = cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
    stripes = 25 * np.sin(np.arange(size) * rng.uniform(0.3, 1.0) + rng.uniform(0, 6))
    image = np.clip(image + stripes[None, :, None], 0, 255)
    mask = np.zeros((size, size), np.uint8)

    cx = size / 2 + rng.uniform(-0.1, 0.1) * size
    cy = size * 0.45 + rng.uniform(-0.08, 0.08) * size
    k = rng.uniform(0.85, 1.1) * s
    rx, ry = 16 * k, 20 * k
    skin = rng.uniform([170, 120, 90], [240, 200, 170])

    def paint(name: str, draw: Callable[[np.ndarray, int], None], colour) -> None:
        layer = np.zeros_like(mask)
        draw(layer, 1)
        on = layer.astype(bool)
        mask[on] = CLASS_ID[name]
        image[on] = np.asarray(colour, np.float32) + rng.normal(0, 6, (int(on.sum()), 3))

    def ellipse(x, y, ax, ay, angle=0.0):
        return lambda img, v: cv2.ellipse(img, (round(x), round(y)), (max(1, round(ax)), max(1, round(ay))),
                                          angle, 0, 360, v, -1)

    def rect(x0, y0, x1, y1):
        return lambda img, v: cv2.rectangle(img, (round(x0), round(y0)), (round(x1), round(y1)), v, -1)

    paint("cloth", ellipse(cx, size + 6 * k, 34 * k, 22 * k), rng.uniform(0, 255, 3))
    paint("neck", rect(cx - 8 * k, cy + 0.6 * ry, cx + 8 * k, cy + 1.45 * ry), skin * 0.85)
    paint("hair", ellipse(cx, cy - 0.3 * ry, 1.2 * rx, 0.95 * ry), rng.uniform([10, 5, 0], [90, 60, 40]))
    paint("l_ear", ellipse(cx + rx, cy, 3.5 * k, 6 * k), skin * 0.9)
    paint("r_ear", ellipse(cx - rx, cy, 3.5 * k, 6 * k), skin * 0.9)
    paint("skin", ellipse(cx, cy + 0.08 * ry, rx, 0.92 * ry), skin)
    for side, sign in (("l", 1), ("r", -1)):
        ex = cx + sign * 0.42 * rx
        paint(f"{side}_brow", ellipse(ex, cy - 0.38 * ry, 4.5 * k, 1.3 * k, -sign * 8), (60, 35, 20))
        paint(f"{side}_eye", ellipse(ex, cy - 0.15 * ry, 3.5 * k, 2.0 * k), (250, 250, 250))
    paint("nose", ellipse(cx, cy + 0.17 * ry, 2.5 * k, 4.5 * k), skin * 0.7)
    paint("u_lip", ellipse(cx, cy + 0.5 * ry, 6.5 * k, 2.0 * k), (190, 40, 60))
    paint("l_lip", ellipse(cx, cy + 0.62 * ry, 6.0 * k, 2.2 * k), (150, 20, 40))
    paint("mouth", ellipse(cx, cy + 0.56 * ry, 5.0 * k, 0.8 * k), (40, 0, 10))
    return np.clip(image, 0, 255).astype(np.uint8), mask


def write_prepared(root: Path, *, n_train: int = 24, n_val: int = 8, n_test: int = 4,
                   size: int = 64, seed: int = 0) -> Path:
    """Write a PreparedDataset of drawn faces at root (ids t0000.., v0000.., e0000..)."""
    prep = PreparedDataset(root)
    rng = np.random.default_rng(seed)
    splits = {"train": [f"t{i:04d}" for i in range(n_train)],
              "val": [f"v{i:04d}" for i in range(n_val)],
              "test": [f"e{i:04d}" for i in range(n_test)]}
    counts = np.zeros(NUM_CLASSES, np.int64)
    for ids in splits.values():
        for sample_id in ids:
            image, mask = draw_face(rng, size)
            write_image(prep.image_path(sample_id), image)
            write_image(prep.mask_path(sample_id), mask)
            counts += np.bincount(mask.ravel(), minlength=NUM_CLASSES)[:NUM_CLASSES]
    write_splits(prep, splits)
    write_meta(prep, source="tests/conftest.py drawn faces", size=size, splits=splits,
               pixel_counts=counts, skipped=[])
    return root


@pytest.fixture(scope="session")
def make_prepared(tmp_path_factory) -> Callable[..., Path]:
    """Factory: make_prepared(name, **write_prepared kwargs) -> a fresh prepared dataset root."""
    def make(name: str, **kwargs) -> Path:
        return write_prepared(tmp_path_factory.mktemp(name), **kwargs)
    return make


@pytest.fixture(scope="session")
def tiny_prepared(make_prepared) -> Path:
    """A prepared dataset: 24 train / 8 val / 4 test drawn faces at 64 px (read-only: share it)."""
    return make_prepared("tiny_prepared")
