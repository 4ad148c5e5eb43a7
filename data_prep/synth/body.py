"""Neck, shoulders and what is worn below the head: cloth, necklace, earrings."""

from __future__ import annotations

import math

import numpy as np

from data_prep.synth.colour import GOLD, hsv
from data_prep.synth.draw import Canvas, ellipse
from data_prep.synth.geometry import Body, Cloth, Ear, Earrings, Necklace
from data_prep.synth.rates import P_CLOTH

SILVER = np.array([200, 200, 205], np.float32)


def sample_body(rng: np.random.Generator) -> Body:
    """Neck width, whether the shoulders are clothed, and the shoulder line."""
    neck_half_width = rng.uniform(0.45, 0.6)
    clothed = rng.random() < P_CLOTH
    shoulder_y = rng.uniform(1.45, 1.8)
    return Body(neck_half_width=neck_half_width, shoulder_y=shoulder_y, clothed=clothed)


def neck_mask(canvas: Canvas, body: Body) -> np.ndarray:
    """The neck from under the chin down, plus the shoulders when they are bare."""
    nw, y0 = body.neck_half_width, body.shoulder_y
    neck = canvas.fill(
        np.array(
            [
                [-nw, 0.2],
                [nw, 0.2],
                [nw * 1.02, y0 - 0.3],
                [nw * 1.35, y0 + 0.05],
                [nw * 1.35, 9],
                [-nw * 1.35, 9],
                [-nw * 1.35, y0 + 0.05],
                [-nw * 1.02, y0 - 0.3],
            ]
        )
    )
    if not body.clothed:  # bare shoulders are labelled neck, as in CelebAMask-HQ
        neck |= canvas.fill(body.shoulders())
    return neck


def sample_earrings(
    rng: np.random.Generator, canvas: Canvas, ears: tuple[Ear, Ear]
) -> tuple[Earrings, np.ndarray]:
    """Studs, hoops or drops under one or both ear lobes (head frame)."""
    sides = [1, -1] if rng.random() < 0.6 else [int(rng.choice([-1, 1]))]
    kind = rng.choice(["stud", "hoop", "drop"])
    colour = GOLD if rng.random() < 0.5 else hsv(rng.random(), rng.uniform(0, 0.4), rng.uniform(0.6, 1.0))
    mask = np.zeros((canvas.size, canvas.size), np.uint8)
    for side in sides:
        ear = ears[0] if side == 1 else ears[1]
        lobe_x, lobe_y = ear.cx + side * 0.02, ear.cy + ear.ry * 0.85
        if kind == "stud":
            shape = canvas.fill(ellipse(lobe_x, lobe_y, 0.045, 0.045))
        elif kind == "hoop":
            radius = rng.uniform(0.07, 0.14)
            shape = canvas.stroke(ellipse(lobe_x, lobe_y + radius, radius * 0.8, radius), 0.025, closed=True)
        else:
            drop = rng.uniform(0.1, 0.25)
            shape = canvas.stroke(np.array([[lobe_x, lobe_y], [lobe_x, lobe_y + drop]]), 0.02)
            shape |= canvas.fill(ellipse(lobe_x, lobe_y + drop, 0.05, 0.07))
        mask |= shape
    return Earrings(kind=str(kind), colour=colour), mask


def sample_necklace(rng: np.random.Generator, canvas: Canvas, body: Body) -> tuple[Necklace, np.ndarray]:
    """A chain (sometimes pearls) hanging round the neck, sometimes with a pendant (body frame)."""
    cy = rng.uniform(0.95, 1.35)
    ry = rng.uniform(0.3, 0.6)
    rx = body.neck_half_width * rng.uniform(1.0, 1.25)
    arc = ellipse(0, cy, rx, ry, 0, 30, math.radians(15), math.radians(165))
    width = rng.uniform(0.025, 0.05)
    pearls = rng.random() < 0.3
    colour = (
        GOLD
        if rng.random() < 0.4
        else SILVER
        if rng.random() < 0.5
        else hsv(rng.random(), rng.uniform(0, 0.7), rng.uniform(0.5, 1.0))
    )
    mask = canvas.stroke(arc, width)
    if rng.random() < 0.5:  # pendant
        mask |= canvas.fill(ellipse(0, cy + ry + 0.06, 0.05, 0.08))
    return Necklace(arc=arc, width=width, pearls=pearls, colour=colour), mask


def sample_cloth(rng: np.random.Generator, body: Body) -> Cloth:
    """The shoulders' outline cut by a round, V, high (turtleneck) or boat neckline."""
    nw, y0 = body.neck_half_width, body.shoulder_y
    neckline = rng.choice(["round", "v", "high", "boat"], p=[0.45, 0.25, 0.1, 0.2])
    shoulders = body.shoulders()
    left, right = shoulders[:4], shoulders[4:]
    if neckline == "round":
        depth = rng.uniform(0.1, 0.45)
        a = np.linspace(math.pi, 0, 15)
        neck_points = np.stack([nw * 1.2 * np.cos(a), y0 + depth * np.sin(a)], 1)
    elif neckline == "v":
        neck_points = np.array([[-nw * 1.2, y0], [0.0, y0 + rng.uniform(0.5, 1.1)], [nw * 1.2, y0]])
    elif neckline == "high":  # turtleneck: covers the neck up to under the chin
        top = rng.uniform(0.9, 1.3)
        neck_points = np.array([[-nw * 1.2, y0], [-nw * 1.08, top], [nw * 1.08, top], [nw * 1.2, y0]])
    else:  # wide boat neckline shows the collarbones
        a = np.linspace(math.pi, 0, 15)
        neck_points = np.stack([nw * 2.0 * np.cos(a), y0 + 0.2 + rng.uniform(0.05, 0.25) * np.sin(a)], 1)
        left = left[:2]
        right = right[2:]
    return Cloth(outline=np.concatenate([left, neck_points, right]), neckline=str(neckline))
