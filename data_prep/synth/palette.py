"""One face's colours: skin, hair, lips, eyes and a scene palette, as a colour per class."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from configs import CLASS_ID
from data_prep.synth.colour import HAIR_COLOUR_P, HAIR_COLOURS, SKIN_TONES, hsv, jitter
from data_prep.synth.geometry import Face

# How strongly each class's colour varies with the texture noise (lips and hair more than skin).
TEXTURE_AMPLITUDE = np.zeros(256, np.float32)
for _name, _amplitude in (
    ("skin", 0.03),
    ("nose", 0.03),
    ("l_eye", 0.02),
    ("r_eye", 0.02),
    ("l_brow", 0.2),
    ("r_brow", 0.2),
    ("l_ear", 0.04),
    ("r_ear", 0.04),
    ("mouth", 0.12),
    ("u_lip", 0.06),
    ("l_lip", 0.06),
    ("hair", 0.12),
    ("hat", 0.08),
    ("ear_r", 0.12),
    ("neck_l", 0.12),
    ("neck", 0.03),
    ("cloth", 0.08),
):
    TEXTURE_AMPLITUDE[CLASS_ID[_name]] = _amplitude


@dataclass(frozen=True)
class Colours:
    skin: np.ndarray
    hair: np.ndarray
    sclera: np.ndarray
    brow: np.ndarray
    lips: np.ndarray
    scene: list[np.ndarray]  # 5 colours shared by background, cloth and hat
    by_class: np.ndarray  # (256, 3) float32: the base colour of each class ID


def _scene_colours(rng: np.random.Generator, skin: np.ndarray, hair: np.ndarray) -> list[np.ndarray]:
    """Scene colours shared by background, cloth and hat (some close to skin or hair)."""
    colours = [hsv(rng.random(), rng.uniform(0, 0.85), rng.uniform(0.08, 1.0)) for _ in range(5)]
    if rng.random() < 0.15:
        colours[0] = jitter(rng, skin, 0.12)
    if rng.random() < 0.15:
        colours[1] = jitter(rng, hair, 0.15)
    return colours


def _lip_colour(rng: np.random.Generator, skin: np.ndarray) -> np.ndarray:
    if rng.random() < 0.15:  # lipstick
        return hsv(
            rng.choice([0.97, 0.0, 0.93, 0.03, 0.85]) + rng.uniform(-0.02, 0.02),
            rng.uniform(0.4, 0.9),
            rng.uniform(0.35, 0.85),
        )
    alpha = rng.uniform(0.1, 0.55)
    red = np.array([185, 80, 90], np.float32) * (skin.mean() / 180) ** 0.7
    return np.clip((skin * (1 - alpha) + red * alpha) * rng.uniform(0.78, 0.97), 0, 255)


def sample_colours(rng: np.random.Generator, face: Face) -> Colours:
    """Skin tone, hair, eye, lip, clothing colours; accessories keep the colours sampled with their shape."""
    id_ = CLASS_ID
    position = rng.uniform(0, len(SKIN_TONES) - 1)  # a point along the light-to-dark tone ramp
    k = min(int(position), len(SKIN_TONES) - 2)
    skin = jitter(rng, SKIN_TONES[k] + (SKIN_TONES[k + 1] - SKIN_TONES[k]) * (position - k), 0.06)
    hair = HAIR_COLOURS[rng.choice(len(HAIR_COLOURS), p=HAIR_COLOUR_P)]
    hair = (
        jitter(rng, hair, 0.12)
        if rng.random() > 0.06
        else hsv(rng.random(), rng.uniform(0.4, 0.9), rng.uniform(0.3, 0.9))
    )
    scene = _scene_colours(rng, skin, hair)
    by_class = np.zeros((256, 3), np.float32)
    by_class[id_["skin"]] = skin
    by_class[id_["nose"]] = skin * np.array([1.0, 0.97, 0.96])
    sclera = np.array([236, 232, 226], np.float32) * rng.uniform(0.78, 1.0)
    by_class[id_["l_eye"]] = by_class[id_["r_eye"]] = sclera
    brow = (
        hair * rng.uniform(0.55, 0.9)
        if rng.random() < 0.7
        else jitter(rng, np.array([55, 40, 30], np.float32), 0.3)
    )
    by_class[id_["l_brow"]] = by_class[id_["r_brow"]] = brow
    by_class[id_["l_ear"]] = by_class[id_["r_ear"]] = skin * np.array([0.97, 0.9, 0.88])
    by_class[id_["mouth"]] = jitter(rng, np.array([70, 22, 28], np.float32), 0.3)
    lips = _lip_colour(rng, skin)
    by_class[id_["u_lip"]] = lips * rng.uniform(0.82, 0.97)
    by_class[id_["l_lip"]] = lips
    by_class[id_["hair"]] = hair
    by_class[id_["hat"]] = (
        scene[rng.integers(5)]
        if rng.random() < 0.6
        else hsv(rng.random(), rng.uniform(0, 1), rng.uniform(0.1, 1))
    )
    if face.earrings is not None:
        by_class[id_["ear_r"]] = face.earrings.colour
    if face.necklace is not None:
        by_class[id_["neck_l"]] = face.necklace.colour
    by_class[id_["neck"]] = skin * rng.uniform(0.78, 0.92)
    by_class[id_["cloth"]] = (
        scene[rng.integers(5)]
        if rng.random() < 0.6
        else hsv(rng.random(), rng.uniform(0, 1), rng.uniform(0.05, 1))
    )
    return Colours(skin=skin, hair=hair, sclera=sclera, brow=brow, lips=lips, scene=scene, by_class=by_class)
