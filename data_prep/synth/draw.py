"""Drawing primitives: curves in a head or body frame and a canvas that draws them into pixels."""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

SUBPIXEL_BITS = 4  # cv2 takes fixed-point polygon coordinates with this many fraction bits
_SUBPIXEL_ONE = 1 << SUBPIXEL_BITS


def ellipse(
    cx: float,
    cy: float,
    rx: float,
    ry: float,
    angle: float = 0.0,
    n: int = 40,
    t0: float = 0.0,
    t1: float = 2 * math.pi,
) -> np.ndarray:
    """Points (n, 2) on an ellipse arc from t0 to t1 (radians), rotated by angle (radians)."""
    closed = abs(t1 - t0 - 2 * math.pi) < 1e-9
    t = np.linspace(t0, t1, n, endpoint=not closed)
    x, y = rx * np.cos(t), ry * np.sin(t)
    if angle:
        c, s = math.cos(angle), math.sin(angle)
        x, y = c * x - s * y, s * x + c * y
    return np.stack([cx + x, cy + y], axis=1)


def superellipse(cx: float, cy: float, rx: float, ry: float, power: float, n: int = 40) -> np.ndarray:
    """Rounded-rectangle-like closed curve |x/rx|^power + |y/ry|^power = 1."""
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    x = rx * np.sign(c) * np.abs(c) ** (2 / power)
    y = ry * np.sign(s) * np.abs(s) ** (2 / power)
    return np.stack([cx + x, cy + y], axis=1)


def similarity(rotation_deg: float, scale: float, centre: tuple[float, float]) -> np.ndarray:
    """2x3 matrix mapping frame points to pixels: rotate, scale, then move the origin to centre."""
    a = math.radians(rotation_deg)
    c, s = math.cos(a) * scale, math.sin(a) * scale
    return np.array([[c, -s, centre[0]], [s, c, centre[1]]], np.float64)


def cv_colour(colour, img: np.ndarray):
    """colour as cv2 drawing calls take it for img: a float for one channel, a tuple for three."""
    if img.ndim == 2:
        return float(colour)
    return tuple(float(c) for c in colour)


class Canvas:
    """Draws frame polygons into pixel masks/images through one affine map."""

    def __init__(self, size: int, matrix: np.ndarray):
        self.size = size
        self.matrix = matrix
        self.scale = float(math.hypot(matrix[0, 0], matrix[1, 0]))  # pixels per frame unit

    def to_pixels(self, points: np.ndarray) -> np.ndarray:
        """Fixed-point pixel coordinates (int32, SUBPIXEL_BITS fraction bits) of frame points."""
        p = np.asarray(points, np.float64) @ self.matrix[:, :2].T + self.matrix[:, 2]
        return np.round(p * _SUBPIXEL_ONE).astype(np.int32)

    def to_pixels_many(self, polys: list[np.ndarray]) -> list[np.ndarray]:
        """to_pixels() of many polygons in one matrix product (drawing calls take lists)."""
        if len(polys) == 1:
            return [self.to_pixels(polys[0])]
        lengths = [len(p) for p in polys]
        flat = self.to_pixels(np.concatenate([np.asarray(p, np.float64) for p in polys]))
        return np.split(flat, np.cumsum(lengths)[:-1])

    def point(self, x: float, y: float) -> tuple[float, float]:
        """Pixel position (float) of one frame point."""
        m = self.matrix
        return (m[0, 0] * x + m[0, 1] * y + m[0, 2], m[1, 0] * x + m[1, 1] * y + m[1, 2])

    def line_width(self, width: float) -> int:
        """A frame-unit line width in whole pixels, at least 1."""
        return max(1, int(round(width * self.scale)))

    def fill(self, *polys: np.ndarray) -> np.ndarray:
        """Mask (uint8 0/1) of the filled polygons."""
        mask = np.zeros((self.size, self.size), np.uint8)
        cv2.fillPoly(mask, self.to_pixels_many(list(polys)), 1, cv2.LINE_8, SUBPIXEL_BITS)
        return mask

    def stroke(self, points: np.ndarray, width: float, closed: bool = False) -> np.ndarray:
        """Mask (uint8 0/1) of a polyline of the given frame-unit width."""
        mask = np.zeros((self.size, self.size), np.uint8)
        cv2.polylines(
            mask, [self.to_pixels(points)], closed, 1, self.line_width(width), cv2.LINE_8, SUBPIXEL_BITS
        )
        return mask

    def draw_fill(self, img: np.ndarray, polys: list[np.ndarray], colour) -> None:
        """Fill polygons on img in colour."""
        cv2.fillPoly(img, self.to_pixels_many(polys), cv_colour(colour, img), cv2.LINE_8, SUBPIXEL_BITS)

    def draw_stroke(
        self, img: np.ndarray, polys: list[np.ndarray], width: float, colour, closed: bool = False
    ) -> None:
        """Draw polylines on img in colour."""
        cv2.polylines(
            img,
            self.to_pixels_many(polys),
            closed,
            cv_colour(colour, img),
            self.line_width(width),
            cv2.LINE_8,
            SUBPIXEL_BITS,
        )


def clip_draw(img: np.ndarray, region: np.ndarray, draw: Callable[[np.ndarray], None]) -> None:
    """Run draw(tmp) on a copy of img and keep the result only inside region (bool H x W).

    draw is not called at all when region is empty (callers rely on that: draw may take random
    numbers).
    """
    x0, y0, w, h = cv2.boundingRect(region.view(np.uint8))
    if w == 0:
        return
    y1, x1 = y0 + h, x0 + w
    tmp = img.copy()
    draw(tmp)
    sub = region[y0:y1, x0:x1, None]
    np.copyto(img[y0:y1, x0:x1], tmp[y0:y1, x0:x1], where=sub)
