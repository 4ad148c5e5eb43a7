"""Hair (short, long, bun; a fringe or a parting) and hats, in the head frame."""

from __future__ import annotations

import math

import numpy as np

from data_prep.synth.draw import ellipse
from data_prep.synth.geometry import Ear, Hair, Hat, Head, Pose
from data_prep.synth.rates import HAIR_STYLE_P, HAIR_STYLES


def sample_hair(
    rng: np.random.Generator,
    pose: Pose,
    head: Head,
    brow_y: float,
    ears: tuple[Ear, Ear],
    masks: dict[str, np.ndarray],
) -> tuple[Hair | None, np.ndarray | None]:
    """Hair geometry and mask, or (None, None) for a bald head.

    masks: the parts drawn so far (skin, ears, earrings, neck, cloth), which the hair goes
    behind or over.
    """
    canvas = pose.head
    style = HAIR_STYLES[rng.choice(len(HAIR_STYLES), p=HAIR_STYLE_P)]
    if style == "bald":
        return None, None
    volume = rng.uniform(0.04, 0.2)
    shift = rng.uniform(-0.08, 0.08)  # more volume on one side
    hairline_y = rng.uniform(-0.85, -0.6)
    temple_recession = rng.uniform(0.15, 0.45)
    if style == "long":
        length = rng.uniform(1.6, 3.6)
        window_half_width = rng.uniform(0.8, 0.93)  # face between the side locks
        tucked = rng.random() < 0.35  # behind the ears
    elif style == "bun":
        length, window_half_width, tucked = rng.uniform(-0.3, -0.1), rng.uniform(0.93, 1.0), True
        temple_recession *= 0.5
    else:
        length, window_half_width, tucked = rng.uniform(-0.3, 0.05), rng.uniform(0.92, 1.0), True
    half_width, height = 1.0 + volume, head.skull_height + volume * 1.3
    t = np.linspace(math.pi, 2 * math.pi, 24)
    cap = np.stack([shift + half_width * np.cos(t), height * np.sin(t)], 1)
    if style == "long":
        ends_half_width = half_width + rng.uniform(0.0, 0.6)
        ends_x = np.linspace(ends_half_width, -ends_half_width, 9)
        ends_y = (
            length
            - 0.25 * (1 - (ends_x / ends_half_width) ** 2) * rng.uniform(-1, 1)
            + rng.uniform(-0.1, 0.1, 9)
        )
        back = np.concatenate(
            [
                cap,
                [[shift + half_width * 1.02, 0.3]],
                np.stack([ends_x, ends_y], 1),
                [[shift - half_width * 1.02, 0.3]],
            ]
        )
    else:
        back = np.concatenate([cap, [[shift + half_width, length], [shift - half_width, length]]])
    hair = canvas.fill(back)
    head_mask = masks["skin"]
    if style != "long":  # short: cut at the sides, hugging the head so no points stick out
        hair &= canvas.fill(np.array([[-5, length], [5, length], [5, -5], [-5, -5]]))
        hair &= canvas.fill(head.outline * (1 + volume * 0.8) + np.array([shift, 0.0]))
    # Face window: forehead below the hairline and the face between the side locks.
    xs = np.linspace(-window_half_width, window_half_width, 15)
    window_top = hairline_y + temple_recession * np.abs(xs / window_half_width) ** 2
    window = canvas.fill(
        np.concatenate([np.stack([xs, window_top], 1), [[window_half_width, 5], [-window_half_width, 5]]])
    )
    hair &= ~(window & head_mask) if style != "long" else ~window
    if tucked:
        hair &= ~(masks["l_ear"] | masks["r_ear"] | masks["ear_r"])
    else:  # long hair falls over the ears
        for ear in ears:
            hair |= canvas.fill(ellipse(ear.cx, ear.cy, ear.rx + 0.08, ear.ry + 0.1, ear.angle))
    if style == "long":
        hair &= ~masks["neck"]
    if style == "long" and "cloth" in masks and rng.random() < 0.4:
        hair &= ~masks["cloth"]  # hair behind the shoulders
    if style == "bun":
        bun_x = rng.choice([0.0, rng.uniform(-0.7, 0.7)])
        hair |= canvas.fill(
            ellipse(
                bun_x,
                -head.skull_height - rng.uniform(0.05, 0.25),
                rng.uniform(0.3, 0.5),
                rng.uniform(0.28, 0.42),
            )
        )
    parting = None
    # Fringe over the forehead, often swept to one side (asymmetric).
    if style in ("short", "long") and rng.random() < 0.3:
        fringe_y = brow_y + rng.uniform(-0.15, 0.08)
        slope = rng.uniform(-0.25, 0.25)
        fringe_x = np.linspace(-0.95, 0.95, 11)
        fringe_bottom = np.minimum(
            fringe_y + slope * fringe_x + rng.uniform(-0.03, 0.03, 11), head.eye_y - 0.12
        )
        fringe = canvas.fill(
            np.concatenate(
                [
                    [[-1.0, hairline_y - 0.3], [1.0, hairline_y - 0.3]],
                    np.stack([fringe_x, fringe_bottom], 1)[::-1],
                ]
            )
        )
        hair |= fringe & head_mask
    elif style in ("short", "long") and rng.random() < 0.6:
        parting = float(rng.choice([-1, 1]) * rng.uniform(0.15, 0.5))
    geometry = Hair(
        style=style,
        hairline_y=hairline_y,
        half_width=half_width,
        height=height,
        shift=shift,
        length=length,
        parting=parting,
    )
    return geometry, hair


def sample_hat(rng: np.random.Generator, pose: Pose, head: Head, hair: Hair | None) -> tuple[Hat, np.ndarray]:
    """A crown over the skull with a brim, a cap's peak, or neither (beanie)."""
    canvas = pose.head
    kind = rng.choice(["brim", "cap", "beanie"])
    brim_y = (hair.hairline_y if hair is not None else -0.75) + rng.uniform(-0.25, 0.05)
    half_width = rng.uniform(1.05, 1.2)
    top = -head.skull_height - rng.uniform(0.1, 0.45)
    t = np.linspace(math.pi, 2 * math.pi, 24)
    crown = np.stack([half_width * np.cos(t), brim_y + (brim_y - top) * np.sin(t)], 1)
    crown = np.concatenate(
        [crown, [[half_width, brim_y + 0.08], [0, brim_y + 0.12], [-half_width, brim_y + 0.08]]]
    )
    hat = canvas.fill(crown)
    if kind == "brim":
        hat |= canvas.fill(ellipse(0, brim_y + 0.05, rng.uniform(1.45, 1.9), rng.uniform(0.1, 0.22)))
    elif kind == "cap":
        hat |= canvas.fill(
            ellipse(
                pose.yaw * 0.5,
                brim_y + 0.05,
                rng.uniform(0.9, 1.1),
                rng.uniform(0.15, 0.28),
                0,
                20,
                0,
                math.pi,
            )
        )
    return Hat(kind=str(kind), brim_y=brim_y), hat
