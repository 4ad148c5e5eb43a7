"""The camera's finish on a painted image: soft edges, sometimes defocus, sensor noise."""

from __future__ import annotations

import math

import cv2
import numpy as np


def camera_finish(img: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Blur and grain a float32 RGB image; returns uint8. (JPEG compression is applied on writing.)"""
    pixel_scale = size / 256  # blur radii are tuned at 256 px
    sigma = max(0.5, 0.6 * pixel_scale) * rng.uniform(0.8, 1.4)
    kernel = 2 * math.ceil(2 * sigma) + 1  # +-2 sigma is plenty for softening edges
    img = cv2.GaussianBlur(img, (kernel, kernel), sigma)
    if rng.random() < 0.2:  # out of focus
        img = cv2.GaussianBlur(img, (0, 0), pixel_scale * rng.uniform(0.8, 2.0))
    sigma = rng.uniform(1.0, 7.0)
    img += rng.standard_normal((size, size, 1), np.float32) * sigma  # luminance grain
    if rng.random() < 0.3:  # colour grain
        img += rng.standard_normal((size, size, 3), np.float32) * (sigma * 0.5)
    return np.clip(img, 0, 255).astype(np.uint8)
