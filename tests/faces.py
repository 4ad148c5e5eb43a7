"""The one cartoon-face generator of the test suite: a label map, and two ways to paint it.

`face_label_map` draws the parts (l_* on the image's right, the subject's left, as in
CelebAMask-HQ) at a random position and scale; `textured_image` paints random part colours on a
textured background (a per-pixel prior cannot segment it: training tests); `palette_image` paints
each class in its palette colour (ensemble tests' PaletteModel parses it by colour). The product's
own generator (data_prep.synth) makes realistic faces in the raw CelebAMask-HQ layout; it is too
slow and too hard for the few-second trainings the tests run.
"""

from __future__ import annotations

import cv2
import numpy as np

from configs import CLASS_ID, PALETTE

# The classes face_label_map draws (anything else in a prediction is a stray class).
DRAWN_CLASSES = (
    "background",
    "cloth",
    "neck",
    "hair",
    "l_ear",
    "r_ear",
    "skin",
    "l_brow",
    "r_brow",
    "l_eye",
    "r_eye",
    "nose",
    "u_lip",
    "l_lip",
    "mouth",
)


def face_label_map(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A face label map (h, w) uint8; parts are painted in order, later ones on top."""
    labels = np.zeros((h, w), np.uint8)
    s = min(h, w) / 64.0
    cx = w / 2 + rng.uniform(-0.1, 0.1) * min(h, w)
    cy = h * 0.45 + rng.uniform(-0.08, 0.08) * min(h, w)
    k = rng.uniform(0.85, 1.1) * s
    rx, ry = 16 * k, 20 * k

    def ellipse(name: str, x: float, y: float, ax: float, ay: float, angle: float = 0.0) -> None:
        cv2.ellipse(
            labels,
            (round(x), round(y)),
            (max(1, round(ax)), max(1, round(ay))),
            angle,
            0,
            360,
            CLASS_ID[name],
            -1,
        )

    ellipse("cloth", cx, h + 6 * k, 34 * k, 22 * k)
    cv2.rectangle(
        labels,
        (round(cx - 8 * k), round(cy + 0.6 * ry)),
        (round(cx + 8 * k), round(cy + 1.45 * ry)),
        CLASS_ID["neck"],
        -1,
    )
    ellipse("hair", cx, cy - 0.3 * ry, 1.2 * rx, 0.95 * ry)
    ellipse("l_ear", cx + rx, cy, 3.5 * k, 6 * k)
    ellipse("r_ear", cx - rx, cy, 3.5 * k, 6 * k)
    ellipse("skin", cx, cy + 0.08 * ry, rx, 0.92 * ry)
    for side, sign in (("l", 1), ("r", -1)):
        ex = cx + sign * 0.42 * rx
        ellipse(f"{side}_brow", ex, cy - 0.38 * ry, 4.5 * k, 1.3 * k, -sign * 8)
        ellipse(f"{side}_eye", ex, cy - 0.15 * ry, 3.5 * k, 2.0 * k)
    ellipse("nose", cx, cy + 0.17 * ry, 2.5 * k, 4.5 * k)
    ellipse("u_lip", cx, cy + 0.5 * ry, 6.5 * k, 2.0 * k)
    ellipse("l_lip", cx, cy + 0.62 * ry, 6.0 * k, 2.2 * k)
    ellipse("mouth", cx, cy + 0.56 * ry, 5.0 * k, 0.8 * k)
    return labels


def textured_image(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random colours per part on a textured background: "not face" is not one colour."""
    h, w = labels.shape
    noise = rng.uniform(0, 255, (4, 4, 3)).astype(np.float32)
    image = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
    stripes = 25 * np.sin(np.arange(w) * rng.uniform(0.3, 1.0) + rng.uniform(0, 6))
    image = image + stripes[None, :, None]
    skin = rng.uniform([170, 120, 90], [240, 200, 170])
    colours = {
        "cloth": rng.uniform(0, 255, 3),
        "neck": skin * 0.85,
        "hair": rng.uniform([10, 5, 0], [90, 60, 40]),
        "l_ear": skin * 0.9,
        "r_ear": skin * 0.9,
        "skin": skin,
        "l_brow": (60, 35, 20),
        "r_brow": (60, 35, 20),
        "l_eye": (250, 250, 250),
        "r_eye": (250, 250, 250),
        "nose": skin * 0.7,
        "u_lip": (190, 40, 60),
        "l_lip": (150, 20, 40),
        "mouth": (40, 0, 10),
    }
    for name, colour in colours.items():
        on = labels == CLASS_ID[name]
        image[on] = np.asarray(colour, np.float32) + rng.normal(0, 6, (int(on.sum()), 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def palette_image(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each class in its palette colour (dimmed), plus noise."""
    noise = rng.normal(0, 12, labels.shape + (3,))
    return np.clip(PALETTE[labels].astype(np.float64) * 0.8 + 30 + noise, 0, 255).astype(np.uint8)


def draw_face(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A textured face: (RGB uint8, label map uint8), size x size."""
    labels = face_label_map(size, size, rng)
    return textured_image(labels, rng), labels
