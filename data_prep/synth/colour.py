"""Colour tables (skin, hair, iris) and colour/noise helpers."""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

# Skin tones from light to dark; a face picks a point on the ramp between neighbours.
SKIN_TONES = np.array(
    [
        [255, 226, 205],
        [241, 200, 170],
        [226, 177, 138],
        [200, 140, 100],
        [165, 110, 75],
        [120, 78, 52],
        [78, 50, 34],
        [55, 36, 26],
    ],
    np.float32,
)
HAIR_COLOURS = np.array(
    [
        [22, 18, 18],
        [45, 32, 24],
        [80, 55, 35],
        [125, 88, 55],
        [190, 150, 95],
        [225, 205, 160],
        [135, 55, 28],
        [130, 128, 125],
        [210, 208, 200],
    ],
    np.float32,
)
HAIR_COLOUR_P = np.array([0.22, 0.2, 0.17, 0.11, 0.09, 0.04, 0.06, 0.06, 0.05])
IRIS_COLOURS = np.array(
    [
        [45, 28, 18],
        [90, 55, 30],
        [120, 95, 50],
        [70, 110, 70],
        [70, 110, 160],
        [110, 120, 130],
    ],
    np.float32,
)
GOLD = np.array([212, 175, 55], np.float32)


def hsv(hue: float, saturation: float, value: float) -> np.ndarray:
    """RGB (float32, 0..255) of an HSV colour; hue wraps around."""
    return np.array(colorsys.hsv_to_rgb(hue % 1.0, saturation, value), np.float32) * 255


def jitter(rng: np.random.Generator, colour: np.ndarray, amount: float) -> np.ndarray:
    """colour with each channel scaled by a random factor in [1 - amount, 1 + amount]."""
    return np.clip(colour * rng.uniform(1 - amount, 1 + amount, 3), 0, 255).astype(np.float32)


def low_freq_noise(rng: np.random.Generator, size: int, cells: int, channels: int = 1) -> np.ndarray:
    """Smooth noise in about [-1, 1]: a coarse random grid upsampled bicubically."""
    shape = (cells, cells) if channels == 1 else (cells, cells, channels)
    grid = rng.standard_normal(shape, dtype=np.float32)
    return cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)


GOLD.setflags(write=False)  # shared by earrings and necklaces
