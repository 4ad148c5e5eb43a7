"""The scene behind the face: gradient, clutter shapes, smooth colour noise."""

from __future__ import annotations

import math

import cv2
import numpy as np

from data_prep.synth.colour import low_freq_noise
from data_prep.synth.draw import cv_colour


def paint_background(rng: np.random.Generator, size: int, scene: list[np.ndarray]) -> np.ndarray:
    """Gradient + clutter shapes + smooth colour noise, sometimes defocused; float32 (size, size, 3).

    Drawn at half resolution and upsampled (4x less work; it is behind the face and soft anyway).
    """
    full, size = size, max(16, size // 2)
    start, end = scene[rng.integers(5)], scene[rng.integers(5)]
    direction = rng.uniform(0, 2 * math.pi)
    ramp = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    gradient = np.add.outer(ramp * math.sin(direction), ramp * math.cos(direction)) + 0.5  # about [0, 1]
    img = start + (end - start) * gradient[..., None]
    img = np.ascontiguousarray(img, dtype=np.float32)
    for _ in range(int(rng.integers(0, 14))):
        colour = cv_colour(scene[rng.integers(5)] * rng.uniform(0.7, 1.2), img)
        kind = rng.integers(4)
        p = rng.uniform(-0.1, 1.1, 2) * size  # anchor point
        extent = rng.uniform(0.03, 0.5) * size
        if kind == 0:  # rectangle
            q = p + rng.uniform(-1, 1, 2) * extent
            cv2.rectangle(img, tuple(int(v) for v in p), tuple(int(v) for v in q), colour, -1)
        elif kind == 1:  # ellipse
            cv2.ellipse(
                img,
                (int(p[0]), int(p[1])),
                (int(extent), int(extent * rng.uniform(0.3, 1))),
                float(rng.uniform(0, 180)),
                0,
                360,
                colour,
                -1,
            )
        elif kind == 2:  # line
            q = p + rng.uniform(-1, 1, 2) * extent * 2
            cv2.line(
                img,
                (int(p[0]), int(p[1])),
                (int(q[0]), int(q[1])),
                colour,
                max(1, int(rng.uniform(0.005, 0.04) * size)),
            )
        else:  # polygon
            points = (p + rng.uniform(-1, 1, (int(rng.integers(3, 7)), 2)) * extent).astype(np.int32)
            cv2.fillPoly(img, [points], colour)
    if rng.random() < 0.5:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.004, 0.02) * size)
    amplitude = rng.uniform(0.0, 40.0)
    img += amplitude * low_freq_noise(rng, size, int(rng.integers(3, 9)), 3)
    if rng.random() < 0.3:  # fine texture (fabric, foliage, wallpaper)
        img += rng.uniform(4, 18) * low_freq_noise(rng, size, max(4, size // 4), 3)
    return cv2.resize(img, (full, full), interpolation=cv2.INTER_LINEAR)
