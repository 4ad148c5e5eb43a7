"""Sample one face: pose, head, then every part in a fixed order, each cut by what covers it.

A part that is physically behind another one painted later in DEFAULT_PAINT_ORDER is cut by it
here, so stacking the masks gives the visible label map. The order of the samplers is the order
of the random numbers: changing it changes every face of a seed.
"""

from __future__ import annotations

import math

import numpy as np

from data_prep.synth.body import neck_mask, sample_body, sample_cloth, sample_earrings, sample_necklace
from data_prep.synth.draw import Canvas, similarity
from data_prep.synth.features import (
    sample_brows,
    sample_ears,
    sample_eyes,
    sample_glasses,
    sample_mouth,
    sample_nose,
)
from data_prep.synth.geometry import Face, Head, Pose
from data_prep.synth.hair import sample_hair, sample_hat
from data_prep.synth.rates import P_EARRINGS, P_GLASSES, P_HAT, P_NECKLACE


def sample_pose(rng: np.random.Generator, size: int, max_rotation: float) -> Pose:
    """Head size, position and roll (at most max_rotation degrees), yaw, and the body's own map."""
    unit = size * rng.uniform(0.19, 0.28)
    centre = (size * (0.5 + rng.uniform(-0.08, 0.08)), size * (0.49 + rng.uniform(-0.06, 0.05)))
    roll = float(np.clip(rng.normal(0, 10), -25, 25)) * max_rotation / 25.0
    yaw = float(rng.uniform(-0.3, 0.3))
    head = Canvas(size, similarity(roll, unit, centre))
    # The body turns less than the head: a separate map pivoting under the chin.
    pivot = np.array([0.0, 1.1])
    body_roll = roll * rng.uniform(0.2, 0.6)
    pivot_px = np.array(head.point(*pivot))
    body = similarity(body_roll, unit * rng.uniform(0.95, 1.08), (0, 0))
    body[:, 2] = pivot_px - body[:, :2] @ pivot
    return Pose(unit=unit, roll=roll, yaw=yaw, head=head, body=Canvas(size, body))


def sample_head(rng: np.random.Generator, yaw: float) -> Head:
    """Skull and chin heights, jaw taper, eye level; the outline's chin follows the yaw."""
    skull_height = rng.uniform(1.25, 1.4)
    chin_height = rng.uniform(1.3, 1.5)
    jaw_taper = rng.uniform(0.08, 0.3)
    eye_y = rng.uniform(-0.06, 0.06)
    t = np.linspace(0, 2 * math.pi, 72, endpoint=False)
    s, c = np.sin(t), np.cos(t)
    lower = s > 0
    x = np.where(lower, c * (1 - jaw_taper * s**2) + yaw * 0.25 * s**2, c)
    y = np.where(lower, s * chin_height, s * skull_height)
    return Head(
        skull_height=skull_height,
        chin_height=chin_height,
        jaw_taper=jaw_taper,
        eye_y=eye_y,
        outline=np.stack([x, y], axis=1),
    )


def build_face(
    rng: np.random.Generator, size: int, max_rotation: float
) -> tuple[Face, dict[str, np.ndarray]]:
    """One face's geometry and its part masks (uint8 0/1, full size) keyed by part name.

    Parts a face lacks (mouth when closed, cloth, hair, hat) have no mask; eye_g, ear_r and
    neck_l always have one, maybe empty.
    """
    pose = sample_pose(rng, size, max_rotation)
    head = sample_head(rng, pose.yaw)
    light_angle = rng.uniform(0, 2 * math.pi)
    head_mask = pose.head.fill(head.outline)
    masks = {"skin": head_mask}  # skin covers the whole head under eyes, nose and hair
    eyes, eye_masks = sample_eyes(rng, pose, head.eye_y)
    masks.update(eye_masks)
    brow_y, brow_masks = sample_brows(rng, pose, head.eye_y)
    masks.update(brow_masks)
    glasses, glasses_mask = None, np.zeros_like(head_mask)
    if rng.random() < P_GLASSES:
        glasses, glasses_mask = sample_glasses(rng, pose, eyes, head.eye_y)
    masks["eye_g"] = glasses_mask
    nose, nose_mask = sample_nose(rng, pose, head.eye_y)
    masks["nose"] = nose_mask & ~glasses_mask
    mouth, mouth_masks = sample_mouth(rng, pose, nose.bottom)
    masks.update(mouth_masks)
    ears, ear_masks = sample_ears(rng, pose, head.eye_y)
    for name, mask in ear_masks.items():
        masks[name] = mask & ~head_mask & ~glasses_mask

    body = sample_body(rng)
    neck = neck_mask(pose.body, body)
    # Earrings hang in front of neck and cloth, which are painted after ear_r.
    earrings, earring_mask = None, np.zeros_like(head_mask)
    if rng.random() < P_EARRINGS:
        earrings, earring_mask = sample_earrings(rng, pose.head, ears)
        earring_mask = earring_mask & ~head_mask
    masks["ear_r"] = earring_mask
    masks["neck"] = neck & ~head_mask & ~(masks["l_ear"] | masks["r_ear"]) & ~earring_mask
    necklace, necklace_mask = None, np.zeros_like(head_mask)
    if rng.random() < P_NECKLACE:
        necklace, necklace_mask = sample_necklace(rng, pose.body, body)
        necklace_mask = necklace_mask & ~head_mask & ~earring_mask
    masks["neck_l"] = necklace_mask
    cloth = None
    if body.clothed:
        cloth = sample_cloth(rng, body)
        masks["cloth"] = pose.body.fill(cloth.outline) & ~head_mask & ~earring_mask & ~necklace_mask

    hair, hair_mask = sample_hair(rng, pose, head, brow_y, ears, masks)
    if hair is not None:
        masks["hair"] = hair_mask
    hat = None
    if rng.random() < P_HAT:
        hat, masks["hat"] = sample_hat(rng, pose, head, hair)
    face = Face(
        size=size,
        pose=pose,
        head=head,
        light_angle=light_angle,
        eyes=eyes,
        brow_y=brow_y,
        nose=nose,
        mouth=mouth,
        ears=ears,
        body=body,
        glasses=glasses,
        earrings=earrings,
        necklace=necklace,
        cloth=cloth,
        hair=hair,
        hat=hat,
    )
    return face, masks
