"""Similarity transforms between a photo and the model's square crop, and both warps.

A transform is a 2x3 matrix M mapping photo coordinates to crop coordinates, both continuous (pixel
i spans [i, i + 1), so its centre is i + 0.5). `warp_crop` samples the crop (aspect ratio kept:
rotation + one scale + shift; the crop's outside-the-photo part is reflected), `warp_back` maps
per-class probabilities predicted on the crop back onto the photo with the inverse of the same M
(cv2.WARP_INVERSE_MAP), together with the mask of photo pixels the crop covered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 (continuous photo coordinates)


def _to_pixel_indices(m: np.ndarray) -> np.ndarray:
    """M in continuous coordinates -> the same map in OpenCV's pixel-index coordinates."""
    a, t = m[:, :2], m[:, 2]
    return np.hstack([a, (t + a @ np.array([0.5, 0.5]) - 0.5)[:, None]]).astype(np.float64)


def apply(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (N, 2) points with M."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    return points @ m[:, :2].T + m[:, 2]


def invert(m: np.ndarray) -> np.ndarray:
    """The inverse similarity (crop -> photo)."""
    return cv2.invertAffineTransform(np.asarray(m, np.float64))


def box_transform(box: Box, framing: Mapping, size: int) -> np.ndarray:
    """M putting the face box where the training framing's face box is, in a size x size crop.

    One scale for both axes (the geometric mean of the width and height ratios): never squashed.
    """
    x0, y0, x1, y1 = box
    fcx, fcy, fw, fh = framing["box"]
    bw, bh = max(x1 - x0, 1e-3), max(y1 - y0, 1e-3)
    s = float(np.sqrt((fw * size / bw) * (fh * size / bh)))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return np.array([[s, 0.0, fcx * size - s * cx], [0.0, s, fcy * size - s * cy]])


def view_transform(height: int, width: int, size: int) -> np.ndarray:
    """M fitting the whole photo into a size x size square, centred and padded (never squashed)."""
    s = size / max(height, width)
    return np.array([[s, 0.0, (size - s * width) / 2], [0.0, s, (size - s * height) / 2]])


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, one scale, shift) mapping src points onto dst (Umeyama)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    cov = b.T @ a / len(src)
    u, d, vt = np.linalg.svd(cov)
    sign = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rot = u @ sign @ vt
    scale = float(np.trace(np.diag(d) @ sign) / max(a.var(0).sum(), 1e-12))
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]])


def landmark_transform(
    points: Mapping[str, Sequence[float]], framing: Mapping, size: int
) -> np.ndarray | None:
    """M taking the photo's landmarks onto the framing's (both eyes and one more needed); else None."""
    target = framing["landmarks"]
    names = [n for n in target if n in points]
    if len(names) < 3 or not {"l_eye", "r_eye"} <= set(names):
        return None
    src = np.array([points[n] for n in names])
    dst = np.array([target[n] for n in names]) * size
    return similarity(src, dst)


def warp_crop(image: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """The size x size crop of an RGB image under M (area-averaged first when M shrinks a lot)."""
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    if scale < 0.5:
        # Bilinear sampling far below the source resolution aliases; shrink by area, then warp.
        f = scale * 1.5
        h, w = image.shape[:2]
        small = (max(1, round(w * f)), max(1, round(h * f)))
        fx, fy = small[0] / w, small[1] / h
        image = cv2.resize(image, small, interpolation=cv2.INTER_AREA)
        m = m @ np.array([[1 / fx, 0, 0], [0, 1 / fy, 0], [0, 0, 1]])
    return cv2.warpAffine(
        image, _to_pixel_indices(m), (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )


def footprint(m: np.ndarray, size: int, height: int, width: int) -> tuple[int, int, int, int] | None:
    """Integer photo rectangle (x0, y0, x1, y1) holding the crop's footprint; None when outside."""
    corners = apply(invert(m), np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64))
    x0, y0 = np.floor(corners.min(0)).astype(int)
    x1, y1 = np.ceil(corners.max(0)).astype(int)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def warp_back(
    probs: np.ndarray, m: np.ndarray, height: int, width: int
) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray] | None:
    """(C, S, S) crop probabilities -> (rect, (C, h, w) probabilities, (h, w) covered mask) on the photo
    rectangle the crop covers (rect as from footprint); None when it covers no photo pixel."""
    size = probs.shape[-1]
    rect = footprint(m, size, height, width)
    if rect is None:
        return None
    x0, y0, x1, y1 = rect
    # Photo pixels of the rectangle, shifted so the rectangle starts at 0.
    m_rect = m.copy()
    m_rect[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    mi = _to_pixel_indices(m_rect)
    hwc = np.ascontiguousarray(probs.transpose(1, 2, 0), dtype=np.float32)
    out = cv2.warpAffine(hwc, mi, (x1 - x0, y1 - y0), flags=flags, borderValue=0)
    out = out.reshape(y1 - y0, x1 - x0, -1)  # one channel comes back as (h, w)
    ones = np.ones((size, size), np.float32)
    covered = cv2.warpAffine(ones, mi, (x1 - x0, y1 - y0), flags=flags, borderValue=0) > 0.999
    return rect, np.ascontiguousarray(out.transpose(2, 0, 1)), covered
