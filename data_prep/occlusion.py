"""Copy-paste occlusion: objects, hair strands and other faces' patches pasted over the face.

Occluded pixels take the occluder's label, so the label map stays the truth of what is visible:
hands, microphones, cups and other objects are background (neither dataset has a class for them),
hair strands are hair, and a patch cut from another face keeps that face's labels. Edges are
hard: the image changes exactly where the label does.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import albumentations as A
import cv2
import numpy as np

from configs import BACKGROUND, CLASS_ID

# Classes that locate the face (where occluders go): the inner face, not hair or clothes.
FACE_IDS = np.array(
    [CLASS_ID[n] for n in ("skin", "nose", "l_eye", "r_eye", "l_brow", "r_brow", "mouth", "u_lip", "l_lip")]
)
HAIR = CLASS_ID["hair"]
OCCLUDER_KINDS: dict[str, float] = {
    "hand": 1.0,
    "microphone": 0.7,
    "cup": 0.7,
    "blob": 1.0,
    "hair": 1.2,
    "face": 1.0,
}
SKIN_TONES = np.array(
    [[233, 192, 160], [214, 164, 128], [180, 126, 90], [141, 94, 62], [96, 62, 42]], np.float32
)


def _texture(
    rng: np.random.Generator, shape: tuple[int, int], colour: np.ndarray, amount: float
) -> np.ndarray:
    """A colour with smooth blotches and a shading ramp: float32 (H, W, 3)."""
    h, w = shape
    cells = rng.normal(0, 1, (int(rng.integers(2, 7)), int(rng.integers(2, 7)), 3)).astype(np.float32)
    noise = cv2.resize(cells, (w, h), interpolation=cv2.INTER_CUBIC)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = np.add.outer(
        np.linspace(-0.5, 0.5, h) * math.sin(angle), np.linspace(-0.5, 0.5, w) * math.cos(angle)
    )
    return colour * (1 + 0.35 * ramp[..., None].astype(np.float32)) + amount * noise


def _rotated(points: np.ndarray, centre: np.ndarray, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return (points @ np.array([[c, s], [-s, c]], np.float32)) + centre


def _draw_object(kind: str, rng: np.random.Generator, alpha: np.ndarray, centre: np.ndarray, size: float):
    """Draw an object's silhouette (1s) into alpha; returns its base colour (RGB float32)."""
    angle = rng.uniform(-0.6, 0.6) + (math.pi if rng.random() < 0.3 else 0.0)

    def pts(*xy: tuple[float, float]) -> np.ndarray:
        return np.round(_rotated(np.array(xy, np.float32) * size, centre, angle)).astype(np.int32)

    if kind == "hand":
        cv2.fillPoly(alpha, [pts((-0.25, 0.0), (0.25, 0.0), (0.22, 0.45), (-0.22, 0.45))], 1)
        width = max(1, int(0.11 * size))
        for x, length in [(-0.19, 0.38), (-0.06, 0.45), (0.07, 0.43), (0.19, 0.33)]:
            bend = rng.uniform(-0.05, 0.05)
            cv2.line(alpha, *[tuple(p) for p in pts((x, 0.0), (x + bend, -length))], 1, width, cv2.LINE_8)
        cv2.line(
            alpha, *[tuple(p) for p in pts((-0.22, 0.3), (-0.45, 0.05))], 1, int(width * 1.2), cv2.LINE_8
        )
        return SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.85, 1.1)
    if kind == "microphone":
        head = pts((0.0, -0.3))[0]
        cv2.circle(alpha, tuple(head), max(2, int(0.18 * size)), 1, -1)
        cv2.line(alpha, tuple(head), tuple(pts((0.0, 0.6))[0]), 1, max(2, int(0.12 * size)))
        return np.float32(rng.uniform(20, 90)) * np.ones(3, np.float32)
    if kind == "cup":
        cv2.fillPoly(alpha, [pts((-0.25, -0.3), (0.25, -0.3), (0.2, 0.3), (-0.2, 0.3))], 1)
        axes = (max(1, int(0.13 * size)), max(1, int(0.16 * size)))
        cv2.ellipse(
            alpha, tuple(pts((0.27, 0.0))[0]), axes, math.degrees(angle), 0, 360, 1, max(1, int(0.06 * size))
        )
        return rng.uniform(30, 240, 3).astype(np.float32)
    # blob: a random polygon or an ellipse (a scarf corner, a phone, a sleeve)
    if rng.random() < 0.5:
        n = int(rng.integers(4, 9))
        a = np.sort(rng.uniform(0, 2 * math.pi, n))
        r = rng.uniform(0.25, 0.5, n)
        cv2.fillPoly(alpha, [pts(*zip(r * np.cos(a), r * np.sin(a)))], 1)
    else:
        axes = (max(1, int(size * rng.uniform(0.2, 0.5))), max(1, int(size * rng.uniform(0.1, 0.35))))
        cv2.ellipse(alpha, tuple(np.round(centre).astype(int)), axes, math.degrees(angle), 0, 360, 1, -1)
    return rng.uniform(10, 245, 3).astype(np.float32)


def _hair_strands(rng, alpha, centre, size, image, mask) -> np.ndarray:
    """Draw curved strands into alpha; returns their colour (the image's own hair when it has some)."""
    top = centre + np.array([rng.uniform(-0.3, 0.3) * size, -0.6 * size], np.float32)
    for _ in range(int(rng.integers(4, 16))):
        start = top + rng.normal(0, 0.15 * size, 2)
        end = centre + rng.normal(0, 0.35 * size, 2) + np.array([0, 0.4 * size])
        bend = (start + end) / 2 + rng.normal(0, 0.25 * size, 2)
        t = np.linspace(0, 1, 12)[:, None]
        curve = (1 - t) ** 2 * start + 2 * (1 - t) * t * bend + t**2 * end
        cv2.polylines(
            alpha, [np.round(curve).astype(np.int32)], False, 1, max(1, int(size * rng.uniform(0.01, 0.04)))
        )
    own = mask == HAIR
    if own.sum() > 16:
        return image[own].mean(0).astype(np.float32) * rng.uniform(0.85, 1.15)
    return np.array([60, 40, 25], np.float32) * rng.uniform(0.3, 2.0)


class FacePixels:
    """A label map's inner-face pixels, found once per sample and drawn from per occluder."""

    def __init__(self, mask: np.ndarray):
        self.shape = mask.shape[:2]
        self.ys, self.xs = np.nonzero(np.isin(mask, FACE_IDS))
        self.extent = float(max(np.ptp(self.ys), np.ptp(self.xs), 8)) if self.ys.size else 0.0

    def pick(self, rng: np.random.Generator) -> tuple[np.ndarray, float]:
        """A random inner-face pixel (x, y) and the face's extent in pixels (image centre if none)."""
        if self.ys.size == 0:
            h, w = self.shape
            return np.array([w / 2, h / 2], np.float32), 0.5 * min(h, w)
        k = rng.integers(self.ys.size)
        return np.array([self.xs[k], self.ys[k]], np.float32), self.extent


class CopyPasteOcclusion(A.DualTransform):
    """Paste 1..max_occluders occluders over the face; the mask takes each occluder's label.

    kinds: occluder kind -> weight (OCCLUDER_KINDS). "face" cuts a patch, with its labels, from one of
    the last bank_size samples this transform saw (in the same DataLoader worker); until one is seen
    it falls back to an object.
    """

    def __init__(
        self,
        max_occluders: int = 2,
        size_range: tuple[float, float] = (0.25, 0.6),
        kinds: dict[str, float] | None = None,
        bank_size: int = 8,
        p: float = 0.5,
    ):
        super().__init__(p=p)
        self.max_occluders = max_occluders
        self.size_range = size_range
        self.kinds = dict(kinds or OCCLUDER_KINDS)
        unknown = set(self.kinds) - set(OCCLUDER_KINDS)
        if unknown:
            raise ValueError(
                f"unknown occluder kinds {sorted(unknown)}; expected some of {sorted(OCCLUDER_KINDS)}"
            )
        self.bank: deque[tuple[np.ndarray, np.ndarray, FacePixels]] = deque(maxlen=bank_size)
        self.names = list(self.kinds)
        weights = np.array([self.kinds[n] for n in self.names], np.float64)
        self.probabilities = weights / weights.sum()

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        rng = self.random_generator
        image, mask = data["image"], data["mask"]
        h, w = mask.shape[:2]
        rgb = np.zeros((h, w, 3), np.uint8)
        label = np.zeros((h, w), np.uint8)
        pasted = np.zeros((h, w), bool)
        face = FacePixels(mask)
        for _ in range(int(rng.integers(1, self.max_occluders + 1))):
            kind = self.names[rng.choice(len(self.names), p=self.probabilities)]
            centre, extent = face.pick(rng)
            size = max(6.0, extent * rng.uniform(*self.size_range))
            alpha = np.zeros((h, w), np.uint8)
            if kind == "face" and self.bank:
                self._paste_face(
                    rng, alpha, rgb, label, centre, size, *self.bank[rng.integers(len(self.bank))]
                )
            else:
                if kind == "hair":
                    colour, value = _hair_strands(rng, alpha, centre, size, image, mask), HAIR
                else:
                    colour, value = (
                        _draw_object(kind if kind != "face" else "blob", rng, alpha, centre, size),
                        BACKGROUND,
                    )
                x, y, bw, bh = cv2.boundingRect(alpha)  # texture only the occluder's box: it is the cost
                if bw and bh:
                    box = np.s_[y : y + bh, x : x + bw]
                    on = alpha[box].astype(bool)
                    tex = _texture(rng, (bh, bw), colour, amount=rng.uniform(4, 20))
                    rgb[box][on] = np.clip(tex[on], 0, 255).astype(np.uint8)
                    label[box][on] = value
            pasted |= alpha.astype(bool)
        if "face" in self.kinds:  # the bank is read only for face patches
            self.bank.append((image.copy(), mask.copy(), face))
        return {"paste": pasted, "paste_rgb": rgb, "paste_label": label}

    @staticmethod
    def _paste_face(rng, alpha, rgb, label, centre, size, src_image, src_mask, src_face) -> None:
        """Copy an ellipse of another face (pixels and labels) so its chosen point lands on centre."""
        h, w = alpha.shape
        if src_image.shape[:2] != (h, w):  # bank samples are at the training size; be safe anyway
            src_image = cv2.resize(src_image, (w, h), interpolation=cv2.INTER_LINEAR)
            src_mask = cv2.resize(src_mask, (w, h), interpolation=cv2.INTER_NEAREST)
            src_face = FacePixels(src_mask)
        source, _ = src_face.pick(rng)
        axes = (max(2, int(size * rng.uniform(0.3, 0.5))), max(2, int(size * rng.uniform(0.2, 0.4))))
        cv2.ellipse(
            alpha, tuple(np.round(centre).astype(int)), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1
        )
        dx, dy = np.round(source - centre).astype(int)
        ys, xs = np.nonzero(alpha)
        sy, sx = ys + dy, xs + dx
        inside = (sy >= 0) & (sy < h) & (sx >= 0) & (sx < w)
        alpha[ys[~inside], xs[~inside]] = 0  # nothing to copy from outside the other image
        ys, xs, sy, sx = ys[inside], xs[inside], sy[inside], sx[inside]
        rgb[ys, xs] = src_image[sy, sx]
        label[ys, xs] = src_mask[sy, sx]

    def apply(self, img: np.ndarray, paste: np.ndarray, paste_rgb: np.ndarray, **params: Any) -> np.ndarray:
        out = img.copy()
        out[paste] = paste_rgb[paste] if img.ndim == 3 else paste_rgb[paste].mean(-1).astype(img.dtype)
        return out

    def apply_to_mask(self, mask: np.ndarray, paste: np.ndarray, paste_label: np.ndarray, **params: Any):
        out = mask.copy()
        out[paste] = paste_label[paste].astype(mask.dtype)
        return out

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("max_occluders", "size_range", "kinds", "bank_size")
