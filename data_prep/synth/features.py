"""Facial features in the head frame: eyes, brows, glasses, nose, mouth and ears.

Each sampler draws its random numbers in a fixed order (the output of a seed depends on it) and
returns the part's geometry with its uint8 0/1 mask(s), before any cut by other parts.
"""

from __future__ import annotations

import math

import numpy as np

from data_prep.synth.colour import IRIS_COLOURS, hsv, jitter
from data_prep.synth.draw import ellipse, superellipse
from data_prep.synth.geometry import Ear, Eye, Eyes, Glasses, Mouth, Nose, Pose
from data_prep.synth.rates import P_BLINK, P_MOUTH_OPEN, P_SUNGLASSES, P_WINK

SIDES = ((1, "l"), (-1, "r"))  # subject's left (image right) first, as in the class table


def sample_eyes(rng: np.random.Generator, pose: Pose, eye_y: float) -> tuple[Eyes, dict[str, np.ndarray]]:
    """Almond eyes (maybe blinking or winking), gaze and iris colour."""
    offset = rng.uniform(0.36, 0.45)  # eye centre from the face's axis
    half_width = rng.uniform(0.16, 0.21)
    lid_height = rng.uniform(0.06, 0.09)
    tilt = rng.uniform(-0.02, 0.05)
    blink = rng.random() < P_BLINK
    wink_side = rng.choice([-1, 1]) if (not blink and rng.random() < P_WINK) else 0
    gaze = (rng.uniform(-0.35, 0.35), rng.uniform(-0.15, 0.2))
    iris_colour = jitter(rng, IRIS_COLOURS[rng.integers(len(IRIS_COLOURS))], 0.15)
    eyes: dict[int, Eye] = {}
    masks = {}
    u = np.linspace(-1, 1, 21)
    for side, prefix in SIDES:
        cx = float(pose.turned_x(side * offset, 0.35))
        rx = half_width * (1 - 0.5 * pose.yaw * side)
        closed = blink or wink_side == side
        upper_h, lower_h = (0.012, 0.008) if closed else (lid_height, lid_height * rng.uniform(0.5, 0.75))
        line_y = eye_y - tilt * u * side  # outer corner (u * side > 0) sits higher
        x = cx + u * rx
        upper = line_y - upper_h * (1 - u**2) ** 0.7 * (1 + 0.15 * u * side)
        lower = line_y + lower_h * (1 - u**2)
        poly = np.concatenate([np.stack([x, upper], 1), np.stack([x, lower], 1)[::-1][1:-1]])
        masks[f"{prefix}_eye"] = pose.head.fill(poly)
        eyes[side] = Eye(
            side=side,
            cx=cx,
            cy=eye_y,
            half_width=rx,
            lid_height=upper_h,
            closed=closed,
            upper_lid=np.stack([x, upper], 1),
        )
    pair = Eyes(left=eyes[1], right=eyes[-1], half_width=half_width, gaze=gaze, iris_colour=iris_colour)
    return pair, masks


def sample_brows(rng: np.random.Generator, pose: Pose, eye_y: float) -> tuple[float, dict[str, np.ndarray]]:
    """Arched brows, thick at the inner end; returns the brow line's y and the masks."""
    gap = rng.uniform(0.22, 0.32)
    arch = rng.uniform(0.02, 0.09)
    peak = rng.uniform(0.5, 0.75)  # where the arch peaks, 0 inner end .. 1 outer end
    inner_thickness, outer_thickness = rng.uniform(0.06, 0.1), rng.uniform(0.025, 0.05)
    inner, outer = rng.uniform(0.1, 0.18), rng.uniform(0.6, 0.7)
    brow_y = eye_y - gap
    masks = {}
    u = np.linspace(0, 1, 16)
    for side, prefix in SIDES:
        xs = pose.turned_x(side * (inner + u * (outer - inner)), 0.3)
        hump = 1 - ((u - peak) / max(peak, 1 - peak)) ** 2
        y = brow_y - arch * hump + 0.04 * u + rng.uniform(-0.01, 0.01)
        thickness = inner_thickness + (outer_thickness - inner_thickness) * u
        poly = np.concatenate(
            [np.stack([xs, y - thickness * 0.4], 1), np.stack([xs, y + thickness * 0.6], 1)[::-1]]
        )
        masks[f"{prefix}_brow"] = pose.head.fill(poly)
    return brow_y, masks


def sample_glasses(
    rng: np.random.Generator, pose: Pose, eyes: Eyes, eye_y: float
) -> tuple[Glasses, np.ndarray]:
    """Lenses, rims, temples and bridge; returns the geometry and the eye_g mask (lens | frame)."""
    canvas = pose.head
    lens_half_width = eyes.half_width * rng.uniform(1.25, 1.6)
    lens_half_height = lens_half_width * rng.uniform(0.6, 0.9)
    squareness = rng.uniform(2.0, 5.0)  # superellipse power: 2 round .. 5 rectangular
    frame_width = rng.uniform(0.02, 0.05)
    lens_y = eye_y + rng.uniform(-0.01, 0.04)
    sunglasses = rng.random() < P_SUNGLASSES
    frame_colour = (
        hsv(rng.random(), rng.uniform(0, 0.6), rng.uniform(0.05, 0.8))
        if rng.random() < 0.5
        else np.full(3, rng.uniform(10, 60), np.float32)
    )
    lens_tint = hsv(rng.random(), rng.uniform(0, 0.5), rng.uniform(0.05, 0.3))
    lens = np.zeros((canvas.size, canvas.size), np.uint8)
    frame = np.zeros_like(lens)
    edges = {}  # side -> (inner x, outer x) of its lens
    for _name, eye in eyes.both:
        side = eye.side
        half_width = lens_half_width * (1 - 0.5 * pose.yaw * side)
        poly = superellipse(eye.cx, lens_y, half_width, lens_half_height, squareness)
        lens |= canvas.fill(poly)
        frame |= canvas.stroke(poly, frame_width, closed=True)
        edges[side] = (eye.cx - side * half_width, eye.cx + side * half_width)
        temple_end = side * 0.96 - pose.yaw * 0.6
        if side * (temple_end - edges[side][1]) > 0:  # the temple arm shows beside the lens
            temple = np.array(
                [
                    [edges[side][1], lens_y - lens_half_height * 0.4],
                    [temple_end, lens_y - lens_half_height * 0.2],
                ]
            )
            frame |= canvas.stroke(temple, frame_width)
    bridge = np.array(
        [
            [edges[-1][0], lens_y - lens_half_height * 0.3],
            [pose.turned_x(0, 0.4), lens_y - lens_half_height * 0.45],
            [edges[1][0], lens_y - lens_half_height * 0.3],
        ]
    )
    frame |= canvas.stroke(bridge, frame_width)
    glasses = Glasses(frame=frame, sunglasses=sunglasses, frame_colour=frame_colour, lens_tint=lens_tint)
    return glasses, lens | frame


def sample_nose(rng: np.random.Generator, pose: Pose, eye_y: float) -> tuple[Nose, np.ndarray]:
    """A bridge widening into the nostril wings, leaning with the yaw."""
    top = eye_y - 0.05
    bottom = eye_y + rng.uniform(0.48, 0.62)
    bridge_half_width, ala_half_width = rng.uniform(0.06, 0.1), rng.uniform(0.16, 0.24)
    v = np.linspace(0, 1, 12)  # 0 top .. 1 tip
    y = top + v * (bottom - 0.08 - top)
    centre_x = pose.yaw * (0.35 + 0.3 * v)
    half_width = bridge_half_width + (ala_half_width - bridge_half_width) * v**3
    squeeze_left, squeeze_right = 1 - 0.5 * pose.yaw, 1 + 0.5 * pose.yaw  # foreshortening per side
    a = np.linspace(math.pi, 0, 13)  # bottom: from the image-left ala round to the right one
    squeeze = np.where(np.cos(a) > 0, squeeze_left, squeeze_right)
    bottom_x = centre_x[-1] + ala_half_width * np.cos(a) * squeeze
    bottom_y = bottom - 0.08 + 0.08 * np.sin(a) + 0.03 * np.abs(np.cos(a))
    poly = np.concatenate(
        [
            np.stack([centre_x - half_width * squeeze_right, y], 1),
            np.stack([bottom_x, bottom_y], 1)[1:-1],
            np.stack([centre_x + half_width * squeeze_left, y], 1)[::-1],
        ]
    )
    nose = Nose(bottom=bottom, centre_x=centre_x, y=y, half_width=half_width, ala_half_width=ala_half_width)
    return nose, pose.head.fill(poly)


def sample_mouth(
    rng: np.random.Generator, pose: Pose, nose_bottom: float
) -> tuple[Mouth, dict[str, np.ndarray]]:
    """Upper and lower lip with a Cupid's bow, sometimes open (then the mouth part shows)."""
    centre_y = nose_bottom + rng.uniform(0.26, 0.38)
    half_width = rng.uniform(0.3, 0.45)
    smile = rng.uniform(-0.03, 0.1)
    upper_lip_height, lower_lip_height = rng.uniform(0.045, 0.09), rng.uniform(0.06, 0.12)
    opened = rng.random() < P_MOUTH_OPEN
    open_height = rng.uniform(0.05, 0.22) if opened else 0.0
    u = np.linspace(-1, 1, 25)  # corner to corner
    x = pose.turned_x(0, 0.45) + u * half_width * (1 - 0.5 * pose.yaw * np.sign(u))
    line = centre_y - smile * u**2
    envelope = (1 - u**2) ** 0.7
    inner_top = line - open_height * 0.3 * envelope
    inner_bottom = line + open_height * 0.7 * envelope
    bow = 1 - 0.3 * np.exp(-((u / 0.12) ** 2))
    top = inner_top - upper_lip_height * (1 - np.abs(u) ** 2.5) ** 0.8 * bow
    bottom = inner_bottom + lower_lip_height * (1 - u**2) ** 0.6
    canvas = pose.head

    def between(upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
        return canvas.fill(np.concatenate([np.stack([x, upper], 1), np.stack([x, lower], 1)[::-1][1:-1]]))

    masks = {"u_lip": between(top, inner_top), "l_lip": between(inner_bottom, bottom)}
    if opened:
        masks["mouth"] = between(inner_top, inner_bottom)
    mouth = Mouth(
        x=x,
        line=line,
        inner_top=inner_top,
        bottom=bottom,
        open_height=open_height,
        centre_y=centre_y,
        half_width=half_width,
    )
    return mouth, masks


def sample_ears(
    rng: np.random.Generator, pose: Pose, eye_y: float
) -> tuple[tuple[Ear, Ear], dict[str, np.ndarray]]:
    """Two tilted ellipses at the head's sides; the yaw narrows the near one and hides the far one."""
    cy = eye_y + rng.uniform(0.08, 0.16)
    ry, rx = rng.uniform(0.27, 0.34), rng.uniform(0.14, 0.2)
    ears = []
    masks = {}
    for side, prefix in SIDES:
        cx = side * rng.uniform(0.95, 1.0) - pose.yaw * 0.6
        side_rx = rx * (1 - 0.8 * pose.yaw * side)
        angle = math.radians(side * rng.uniform(0, 15))
        masks[f"{prefix}_ear"] = pose.head.fill(ellipse(cx, cy, side_rx, ry, angle))
        ears.append(Ear(side=side, cx=cx, cy=cy, rx=side_rx, ry=ry, angle=angle))
    return (ears[0], ears[1]), masks
