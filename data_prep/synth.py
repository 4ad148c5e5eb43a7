"""Procedural synthetic faces with per-part masks, written in the raw CelebAMask-HQ layout.

    OUT/CelebA-HQ-img/{i}.jpg
    OUT/CelebAMask-HQ-mask-anno/{i // 2000}/{i:05d}_{part}.png   (size // 2, only parts present)
    OUT/CelebA-HQ-to-CelebA-mapping.txt

Each face is drawn from polygons in a head coordinate frame (x right, y down, unit = half the
head width, origin between the eyes' level and the face centre) mapped to pixels by a random
similarity transform (roll, scale, position); the body gets a milder roll of its own. A yaw
shifts the features toward one side and hides the far ear, so a flip that does not swap the
left/right labels is visibly wrong. Part masks follow the CelebAMask-HQ conventions: l_* is the
subject's left (image right), skin covers the whole head under eyes/nose/hair, and a part that
is physically behind another one painted later in DEFAULT_PAINT_ORDER is cut by it, so stacking
the masks gives the visible label map. The image is painted from that same label map.
"""
from __future__ import annotations

import argparse
import colorsys
import functools
import math
from pathlib import Path

import cv2
import numpy as np

from configs import CLASS_ID, CLASSES, DEFAULT_PAINT_ORDER, NUM_CLASSES
from data_prep.atomic import write_image, write_text
from data_prep.importer import run_tasks
from data_prep.layout import (RAW_ANNO_DIR, RAW_IDS_PER_FOLDER, RAW_IMAGE_DIR, RAW_MAPPING_FILE,
                              RAW_MAPPING_HEADER)

IMAGE_DIR = RAW_IMAGE_DIR
ANNO_DIR = RAW_ANNO_DIR
MAPPING_FILE = RAW_MAPPING_FILE
MAPPING_HEADER = RAW_MAPPING_HEADER
IDS_PER_FOLDER = RAW_IDS_PER_FOLDER
PARTS: tuple[str, ...] = CLASSES[1:]

_SHIFT = 4  # sub-pixel bits for cv2 polygon drawing
_ONE = 1 << _SHIFT
_ID = CLASS_ID

# Long-tail accessory and style rates (per face).
P_GLASSES = 0.17
P_SUNGLASSES = 0.25  # of glasses
P_HAT = 0.1
P_EARRINGS = 0.28  # drawn only where an ear shows, so ~15% of faces end up with ear_r
P_NECKLACE = 0.12  # some end up under a high neckline
P_CLOTH = 0.93
P_MOUTH_OPEN = 0.35
P_BLINK = 0.1
HAIR_STYLES = ("bald", "short", "long", "bun")
HAIR_STYLE_P = (0.08, 0.37, 0.4, 0.15)

_SKIN_ANCHORS = np.array([
    [255, 226, 205], [241, 200, 170], [226, 177, 138], [200, 140, 100],
    [165, 110, 75], [120, 78, 52], [78, 50, 34], [55, 36, 26],
], np.float32)
_HAIR_COLOURS = np.array([
    [22, 18, 18], [45, 32, 24], [80, 55, 35], [125, 88, 55], [190, 150, 95],
    [225, 205, 160], [135, 55, 28], [130, 128, 125], [210, 208, 200],
], np.float32)
_HAIR_P = np.array([0.22, 0.2, 0.17, 0.11, 0.09, 0.04, 0.06, 0.06, 0.05])
_IRIS_COLOURS = np.array([
    [45, 28, 18], [90, 55, 30], [120, 95, 50], [70, 110, 70], [70, 110, 160], [110, 120, 130],
], np.float32)


# --------------------------------------------------------------------------- geometry helpers

def _ellipse(cx: float, cy: float, rx: float, ry: float, angle: float = 0.0, n: int = 40,
             t0: float = 0.0, t1: float = 2 * math.pi) -> np.ndarray:
    """Points (n, 2) on an ellipse arc from t0 to t1 (radians), rotated by angle (radians)."""
    closed = abs(t1 - t0 - 2 * math.pi) < 1e-9
    t = np.linspace(t0, t1, n, endpoint=not closed)
    x, y = rx * np.cos(t), ry * np.sin(t)
    if angle:
        c, s = math.cos(angle), math.sin(angle)
        x, y = c * x - s * y, s * x + c * y
    return np.stack([cx + x, cy + y], axis=1)


def _superellipse(cx: float, cy: float, rx: float, ry: float, p: float, n: int = 40) -> np.ndarray:
    """Rounded-rectangle-like closed curve |x/rx|^p + |y/ry|^p = 1."""
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    x = rx * np.sign(c) * np.abs(c) ** (2 / p)
    y = ry * np.sign(s) * np.abs(s) ** (2 / p)
    return np.stack([cx + x, cy + y], axis=1)


def _similarity(rotation_deg: float, scale: float, centre: tuple[float, float]) -> np.ndarray:
    """2x3 matrix mapping head-frame points to pixels."""
    a = math.radians(rotation_deg)
    c, s = math.cos(a) * scale, math.sin(a) * scale
    return np.array([[c, -s, centre[0]], [s, c, centre[1]]], np.float64)


class _Canvas:
    """Draws head-frame polygons into pixel masks/images through one affine map."""

    def __init__(self, size: int, matrix: np.ndarray):
        self.size = size
        self.matrix = matrix
        self.scale = float(math.hypot(matrix[0, 0], matrix[1, 0]))

    def px(self, pts: np.ndarray) -> np.ndarray:
        p = np.asarray(pts, np.float64) @ self.matrix[:, :2].T + self.matrix[:, 2]
        return np.round(p * _ONE).astype(np.int32)

    def px_many(self, polys: list[np.ndarray]) -> list[np.ndarray]:
        """px() of many polygons in one matrix product (drawing calls take lists)."""
        if len(polys) == 1:
            return [self.px(polys[0])]
        lengths = [len(p) for p in polys]
        flat = self.px(np.concatenate([np.asarray(p, np.float64) for p in polys]))
        return np.split(flat, np.cumsum(lengths)[:-1])

    def pt(self, x: float, y: float) -> tuple[float, float]:
        m = self.matrix
        return (m[0, 0] * x + m[0, 1] * y + m[0, 2], m[1, 0] * x + m[1, 1] * y + m[1, 2])

    def width(self, w: float) -> int:
        return max(1, int(round(w * self.scale)))

    def fill(self, *polys: np.ndarray) -> np.ndarray:
        mask = np.zeros((self.size, self.size), np.uint8)
        cv2.fillPoly(mask, self.px_many(list(polys)), 1, cv2.LINE_8, _SHIFT)
        return mask

    def stroke(self, pts: np.ndarray, width: float, closed: bool = False) -> np.ndarray:
        mask = np.zeros((self.size, self.size), np.uint8)
        cv2.polylines(mask, [self.px(pts)], closed, 1, self.width(width), cv2.LINE_8, _SHIFT)
        return mask

    def draw_fill(self, img: np.ndarray, polys: list[np.ndarray], colour) -> None:
        cv2.fillPoly(img, self.px_many(polys), _colour(colour, img), cv2.LINE_8, _SHIFT)

    def draw_stroke(self, img: np.ndarray, polys: list[np.ndarray], width: float, colour,
                    closed: bool = False) -> None:
        cv2.polylines(img, self.px_many(polys), closed, _colour(colour, img),
                      self.width(width), cv2.LINE_8, _SHIFT)


def _colour(colour, img: np.ndarray):
    if img.ndim == 2:
        return float(colour)
    return tuple(float(c) for c in colour)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), np.float32) * 255


def _jitter(rng: np.random.Generator, colour: np.ndarray, amount: float) -> np.ndarray:
    return np.clip(colour * rng.uniform(1 - amount, 1 + amount, 3), 0, 255).astype(np.float32)


def _low_freq_noise(rng: np.random.Generator, size: int, cells: int, channels: int = 1) -> np.ndarray:
    """Smooth noise in about [-1, 1]: a coarse random grid upsampled bicubically."""
    shape = (cells, cells) if channels == 1 else (cells, cells, channels)
    grid = rng.standard_normal(shape, dtype=np.float32)
    return cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)


# --------------------------------------------------------------------------- the face model

class _Face:
    """Samples one face's parameters and builds its part masks (uint8 0/1, full size)."""

    def __init__(self, rng: np.random.Generator, size: int, max_rotation: float):
        self.rng = rng
        self.size = size
        r = rng
        # Pose: head half-width in pixels, centre, roll; yaw in head units (features' shift).
        self.unit = size * r.uniform(0.19, 0.28)
        centre = (size * (0.5 + r.uniform(-0.08, 0.08)), size * (0.49 + r.uniform(-0.06, 0.05)))
        self.roll = float(np.clip(r.normal(0, 10), -25, 25)) * max_rotation / 25.0
        self.yaw = float(r.uniform(-0.3, 0.3))
        self.head = _Canvas(size, _similarity(self.roll, self.unit, centre))
        # The body turns less than the head: a separate map pivoting under the chin.
        pivot = np.array([0.0, 1.1])
        body_roll = self.roll * r.uniform(0.2, 0.6)
        pivot_px = np.array(self.head.pt(*pivot))
        body = _similarity(body_roll, self.unit * r.uniform(0.95, 1.08), (0, 0))
        body[:, 2] = pivot_px - body[:, :2] @ pivot
        self.body = _Canvas(size, body)

        # Head shape.
        self.skull_h = r.uniform(1.25, 1.4)
        self.chin_h = r.uniform(1.3, 1.5)
        self.jaw = r.uniform(0.08, 0.3)
        self.eye_y = r.uniform(-0.06, 0.06)
        self.light = r.uniform(0, 2 * math.pi)  # light direction in the image

    # yaw: features move toward the turn, the far half of the face is foreshortened
    def fx(self, x, depth: float):
        x = np.asarray(x, np.float64)
        return x * (1 - 0.5 * self.yaw * np.sign(x)) + self.yaw * depth

    def head_outline(self) -> np.ndarray:
        t = np.linspace(0, 2 * math.pi, 72, endpoint=False)
        s, c = np.sin(t), np.cos(t)
        lower = s > 0
        x = np.where(lower, c * (1 - self.jaw * s ** 2) + self.yaw * 0.25 * s ** 2, c)
        y = np.where(lower, s * self.chin_h, s * self.skull_h)
        return np.stack([x, y], axis=1)

    def build(self) -> dict[str, np.ndarray]:
        """Sample every part and return the part masks (uint8 0/1) keyed by part name."""
        r, H = self.rng, self.head
        m: dict[str, np.ndarray] = {}
        self.head_poly = self.head_outline()
        head = H.fill(self.head_poly)
        m["skin"] = head
        self._eyes(m)
        self._brows(m)
        self.glasses = r.random() < P_GLASSES
        glasses = self._glasses() if self.glasses else np.zeros_like(head)
        m["eye_g"] = glasses
        self._nose(m, glasses)
        self._mouth(m)
        self._ears(m, head, glasses)
        self._body(m, head)
        self._hair(m, head)
        self.has_hat = r.random() < P_HAT
        if self.has_hat:
            m["hat"] = self._hat()
        return m

    def _eyes(self, m: dict) -> None:
        r = self.rng
        self.eye_dx = r.uniform(0.36, 0.45)
        self.eye_rx = r.uniform(0.16, 0.21)
        eye_ry = r.uniform(0.06, 0.09)
        tilt = r.uniform(-0.02, 0.05)
        blink = r.random() < P_BLINK
        wink_side = r.choice([-1, 1]) if (not blink and r.random() < 0.03) else 0
        self.gaze = (r.uniform(-0.35, 0.35), r.uniform(-0.15, 0.2))
        self.iris_colour = _jitter(r, _IRIS_COLOURS[r.integers(len(_IRIS_COLOURS))], 0.15)
        self.eyes = {}
        u = np.linspace(-1, 1, 21)
        for side, name in ((1, "l_eye"), (-1, "r_eye")):
            cx = float(self.fx(side * self.eye_dx, 0.35))
            rx = self.eye_rx * (1 - 0.5 * self.yaw * side)
            closed = blink or wink_side == side
            up, lo = (0.012, 0.008) if closed else (eye_ry, eye_ry * r.uniform(0.5, 0.75))
            yc = self.eye_y - tilt * u * side  # outer corner (u * side > 0) sits higher
            x = cx + u * rx
            upper = yc - up * (1 - u ** 2) ** 0.7 * (1 + 0.15 * u * side)
            lower = yc + lo * (1 - u ** 2)
            poly = np.concatenate([np.stack([x, upper], 1), np.stack([x, lower], 1)[::-1][1:-1]])
            m[name] = self.head.fill(poly)
            self.eyes[name] = dict(cx=cx, cy=self.eye_y, rx=rx, up=up, closed=closed,
                                   upper=np.stack([x, upper], 1), side=side)

    def _brows(self, m: dict) -> None:
        r = self.rng
        gap = r.uniform(0.22, 0.32)
        arch = r.uniform(0.02, 0.09)
        peak = r.uniform(0.5, 0.75)
        th_in, th_out = r.uniform(0.06, 0.1), r.uniform(0.025, 0.05)
        inner, outer = r.uniform(0.1, 0.18), r.uniform(0.6, 0.7)
        self.brow_y = self.eye_y - gap
        u = np.linspace(0, 1, 16)
        for side, name in ((1, "l_brow"), (-1, "r_brow")):
            xs = self.fx(side * (inner + u * (outer - inner)), 0.3)
            hump = 1 - ((u - peak) / max(peak, 1 - peak)) ** 2
            y = self.brow_y - arch * hump + 0.04 * u + r.uniform(-0.01, 0.01)
            th = th_in + (th_out - th_in) * u
            poly = np.concatenate([np.stack([xs, y - th * 0.4], 1), np.stack([xs, y + th * 0.6], 1)[::-1]])
            m[name] = self.head.fill(poly)

    def _glasses(self) -> np.ndarray:
        r, H = self.rng, self.head
        lw_base = self.eye_rx * r.uniform(1.25, 1.6)
        lh = lw_base * r.uniform(0.6, 0.9)
        p = r.uniform(2.0, 5.0)
        fw = r.uniform(0.02, 0.05)
        ly = self.eye_y + r.uniform(-0.01, 0.04)
        self.sunglasses = r.random() < P_SUNGLASSES
        self.frame_colour = (_hsv(r.random(), r.uniform(0, 0.6), r.uniform(0.05, 0.8))
                             if r.random() < 0.5 else np.full(3, r.uniform(10, 60), np.float32))
        self.lens_tint = _hsv(r.random(), r.uniform(0, 0.5), r.uniform(0.05, 0.3))
        lens = np.zeros((self.size, self.size), np.uint8)
        frame = np.zeros_like(lens)
        edges = {}
        for side, name in ((1, "l_eye"), (-1, "r_eye")):
            e = self.eyes[name]
            lw = lw_base * (1 - 0.5 * self.yaw * side)
            poly = _superellipse(e["cx"], ly, lw, lh, p)
            lens |= H.fill(poly)
            frame |= H.stroke(poly, fw, closed=True)
            edges[side] = (e["cx"] - side * lw, e["cx"] + side * lw)  # (inner x, outer x)
            temple_end = side * 0.96 - self.yaw * 0.6
            if side * (temple_end - edges[side][1]) > 0:
                frame |= H.stroke(np.array([[edges[side][1], ly - lh * 0.4], [temple_end, ly - lh * 0.2]]), fw)
        bridge = np.array([[edges[-1][0], ly - lh * 0.3], [self.fx(0, 0.4), ly - lh * 0.45],
                           [edges[1][0], ly - lh * 0.3]])
        frame |= H.stroke(bridge, fw)
        self.lens, self.frame = lens, frame
        return lens | frame

    def _nose(self, m: dict, glasses: np.ndarray) -> None:
        r = self.rng
        top = self.eye_y - 0.05
        self.nose_bottom = nb = self.eye_y + r.uniform(0.48, 0.62)
        bw, aw = r.uniform(0.06, 0.1), r.uniform(0.16, 0.24)
        v = np.linspace(0, 1, 12)
        y = top + v * (nb - 0.08 - top)
        xc = self.yaw * (0.35 + 0.3 * v)
        w = bw + (aw - bw) * v ** 3
        comp_l, comp_r = 1 - 0.5 * self.yaw, 1 + 0.5 * self.yaw
        a = np.linspace(math.pi, 0, 13)  # bottom: from the image-left ala round to the right one
        bottom_x = xc[-1] + aw * np.cos(a) * np.where(np.cos(a) > 0, comp_l, comp_r)
        bottom_y = nb - 0.08 + 0.08 * np.sin(a) + 0.03 * np.abs(np.cos(a))
        poly = np.concatenate([
            np.stack([xc - w * comp_r, y], 1),
            np.stack([bottom_x, bottom_y], 1)[1:-1],
            np.stack([xc + w * comp_l, y], 1)[::-1],
        ])
        m["nose"] = self.head.fill(poly) & ~glasses
        self.nose_geo = dict(top=top, nb=nb, xc=xc, y=y, w=w, aw=aw)

    def _mouth(self, m: dict) -> None:
        r = self.rng
        my = self.nose_bottom + r.uniform(0.26, 0.38)
        mw = r.uniform(0.3, 0.45)
        smile = r.uniform(-0.03, 0.1)
        ul_h, ll_h = r.uniform(0.045, 0.09), r.uniform(0.06, 0.12)
        opened = r.random() < P_MOUTH_OPEN
        open_h = r.uniform(0.05, 0.22) if opened else 0.0
        u = np.linspace(-1, 1, 25)
        x = self.fx(0, 0.45) + u * mw * (1 - 0.5 * self.yaw * np.sign(u))
        line = my - smile * u ** 2
        env = (1 - u ** 2) ** 0.7
        inner_top = line - open_h * 0.3 * env
        inner_bot = line + open_h * 0.7 * env
        bow = 1 - 0.3 * np.exp(-(u / 0.12) ** 2)
        top = inner_top - ul_h * (1 - np.abs(u) ** 2.5) ** 0.8 * bow
        bottom = inner_bot + ll_h * (1 - u ** 2) ** 0.6
        H = self.head
        m["u_lip"] = H.fill(np.concatenate([np.stack([x, top], 1), np.stack([x, inner_top], 1)[::-1][1:-1]]))
        m["l_lip"] = H.fill(np.concatenate([np.stack([x, inner_bot], 1), np.stack([x, bottom], 1)[::-1][1:-1]]))
        if opened:
            m["mouth"] = H.fill(np.concatenate([np.stack([x, inner_top], 1), np.stack([x, inner_bot], 1)[::-1][1:-1]]))
        self.mouth_geo = dict(x=x, line=line, inner_top=inner_top, inner_bot=inner_bot, top=top,
                              bottom=bottom, open_h=open_h, my=my, mw=mw)

    def _ears(self, m: dict, head: np.ndarray, glasses: np.ndarray) -> None:
        r = self.rng
        cy = self.eye_y + r.uniform(0.08, 0.16)
        ry, rx = r.uniform(0.27, 0.34), r.uniform(0.14, 0.2)
        self.ear_geo = {}
        for side, name in ((1, "l_ear"), (-1, "r_ear")):
            cx = side * r.uniform(0.95, 1.0) - self.yaw * 0.6
            rxs = rx * (1 - 0.8 * self.yaw * side)
            angle = math.radians(side * r.uniform(0, 15))
            m[name] = self.head.fill(_ellipse(cx, cy, rxs, ry, angle)) & ~head & ~glasses
            self.ear_geo[name] = dict(cx=cx, cy=cy, rx=rxs, ry=ry, angle=angle, side=side)

    def _body(self, m: dict, head: np.ndarray) -> None:
        r, B = self.rng, self.body
        nw = r.uniform(0.45, 0.6)
        self.neck_w = nw
        cloth_on = r.random() < P_CLOTH
        y0 = r.uniform(1.45, 1.8)  # shoulder line at the neck
        self.shoulder_y = y0
        shoulders = np.array([[-5, y0 + 2.0], [-2.1, y0 + 0.4], [-1.3, y0 + 0.1], [-nw * 1.2, y0],
                              [nw * 1.2, y0], [1.3, y0 + 0.1], [2.1, y0 + 0.4], [5, y0 + 2.0],
                              [5, 9], [-5, 9]])
        neck = B.fill(np.array([[-nw, 0.2], [nw, 0.2], [nw * 1.02, y0 - 0.3], [nw * 1.35, y0 + 0.05],
                                [nw * 1.35, 9], [-nw * 1.35, 9], [-nw * 1.35, y0 + 0.05],
                                [-nw * 1.02, y0 - 0.3]]))
        if not cloth_on:  # bare shoulders are labelled neck, as in CelebAMask-HQ
            neck |= B.fill(shoulders)
        ears = m["l_ear"] | m["r_ear"]
        # Earrings hang in front of neck and cloth, which are painted after ear_r.
        ear_r = self._earrings(head) if r.random() < P_EARRINGS else np.zeros_like(head)
        m["ear_r"] = ear_r
        m["neck"] = neck & ~head & ~ears & ~ear_r
        self.necklace = None
        necklace = self._necklace() & ~head & ~ear_r if r.random() < P_NECKLACE else np.zeros_like(head)
        m["neck_l"] = necklace
        self.cloth = None
        if cloth_on:
            self.cloth = self._cloth_shape(shoulders)
            m["cloth"] = B.fill(self.cloth) & ~head & ~ear_r & ~necklace

    def _cloth_shape(self, shoulders: np.ndarray) -> np.ndarray:
        r = self.rng
        nw, y0 = self.neck_w, self.shoulder_y
        kind = r.choice(["round", "v", "high", "boat"], p=[0.45, 0.25, 0.1, 0.2])
        self.neckline = kind
        left, right = shoulders[:4], shoulders[4:]
        if kind == "round":
            depth = r.uniform(0.1, 0.45)
            a = np.linspace(math.pi, 0, 15)
            neck_pts = np.stack([nw * 1.2 * np.cos(a), y0 + depth * np.sin(a)], 1)
        elif kind == "v":
            neck_pts = np.array([[-nw * 1.2, y0], [0.0, y0 + r.uniform(0.5, 1.1)], [nw * 1.2, y0]])
        elif kind == "high":  # turtleneck: covers the neck up to under the chin
            top = r.uniform(0.9, 1.3)
            neck_pts = np.array([[-nw * 1.2, y0], [-nw * 1.08, top], [nw * 1.08, top], [nw * 1.2, y0]])
        else:  # wide boat neckline shows the collarbones
            a = np.linspace(math.pi, 0, 15)
            neck_pts = np.stack([nw * 2.0 * np.cos(a), y0 + 0.2 + r.uniform(0.05, 0.25) * np.sin(a)], 1)
            left = left[:2]
            right = right[2:]
        return np.concatenate([left, neck_pts, right])

    def _earrings(self, head: np.ndarray) -> np.ndarray:
        r, H = self.rng, self.head
        sides = [1, -1] if r.random() < 0.6 else [int(r.choice([-1, 1]))]
        kind = r.choice(["stud", "hoop", "drop"])
        self.earring_colour = (np.array([212, 175, 55], np.float32) if r.random() < 0.5 else
                               _hsv(r.random(), r.uniform(0, 0.4), r.uniform(0.6, 1.0)))
        out = np.zeros((self.size, self.size), np.uint8)
        for side in sides:
            e = self.ear_geo["l_ear" if side == 1 else "r_ear"]
            lx, ly = e["cx"] + side * 0.02, e["cy"] + e["ry"] * 0.85
            if kind == "stud":
                shape = H.fill(_ellipse(lx, ly, 0.045, 0.045))
            elif kind == "hoop":
                rad = r.uniform(0.07, 0.14)
                shape = H.stroke(_ellipse(lx, ly + rad, rad * 0.8, rad), 0.025, closed=True)
            else:
                drop = r.uniform(0.1, 0.25)
                shape = H.stroke(np.array([[lx, ly], [lx, ly + drop]]), 0.02)
                shape |= H.fill(_ellipse(lx, ly + drop, 0.05, 0.07))
            out |= shape
        return out & ~head

    def _necklace(self) -> np.ndarray:
        r, B = self.rng, self.body
        cy = r.uniform(0.95, 1.35)
        ry = r.uniform(0.3, 0.6)
        rx = self.neck_w * r.uniform(1.0, 1.25)
        arc = _ellipse(0, cy, rx, ry, 0, 30, math.radians(15), math.radians(165))
        width = r.uniform(0.025, 0.05)
        self.necklace = dict(arc=arc, width=width, pearls=r.random() < 0.3,
                             colour=(np.array([212, 175, 55], np.float32) if r.random() < 0.4 else
                                     np.array([200, 200, 205], np.float32) if r.random() < 0.5 else
                                     _hsv(r.random(), r.uniform(0, 0.7), r.uniform(0.5, 1.0))))
        mask = B.stroke(arc, width)
        if r.random() < 0.5:  # pendant
            mask |= B.fill(_ellipse(0, cy + ry + 0.06, 0.05, 0.08))
        return mask

    def _hair(self, m: dict, head: np.ndarray) -> None:
        r, H = self.rng, self.head
        style = HAIR_STYLES[r.choice(len(HAIR_STYLES), p=HAIR_STYLE_P)]
        self.hair_style = style
        self.parting = None
        if style == "bald":
            return
        vol = r.uniform(0.04, 0.2)
        shift = r.uniform(-0.08, 0.08)  # more volume on one side
        hl = r.uniform(-0.85, -0.6)  # hairline height
        td = r.uniform(0.15, 0.45)  # temples recede
        if style == "long":
            length = r.uniform(1.6, 3.6)
            sw = r.uniform(0.8, 0.93)
            tucked = r.random() < 0.35
        elif style == "bun":
            length, sw, tucked, td = r.uniform(-0.3, -0.1), r.uniform(0.93, 1.0), True, td * 0.5
        else:
            length, sw, tucked = r.uniform(-0.3, 0.05), r.uniform(0.92, 1.0), True
        rx, ry = 1.0 + vol, self.skull_h + vol * 1.3
        t = np.linspace(math.pi, 2 * math.pi, 24)
        cap = np.stack([shift + rx * np.cos(t), ry * np.sin(t)], 1)
        if style == "long":
            rx_b = rx + r.uniform(0.0, 0.6)
            bx = np.linspace(rx_b, -rx_b, 9)
            by = length - 0.25 * (1 - (bx / rx_b) ** 2) * r.uniform(-1, 1) + r.uniform(-0.1, 0.1, 9)
            back = np.concatenate([cap, [[shift + rx * 1.02, 0.3]], np.stack([bx, by], 1),
                                   [[shift - rx * 1.02, 0.3]]])
        else:
            back = np.concatenate([cap, [[shift + rx, length], [shift - rx, length]]])
        hair = H.fill(back)
        if style != "long":  # short: cut at the sides, hugging the head so no points stick out
            hair &= H.fill(np.array([[-5, length], [5, length], [5, -5], [-5, -5]]))
            hair &= H.fill(self.head_poly * (1 + vol * 0.8) + np.array([shift, 0.0]))
        # Face window: forehead below the hairline and the face between the side locks.
        xs = np.linspace(-sw, sw, 15)
        window_top = hl + td * np.abs(xs / sw) ** 2
        window = H.fill(np.concatenate([np.stack([xs, window_top], 1), [[sw, 5], [-sw, 5]]]))
        hair &= ~(window & head) if style != "long" else ~window
        if tucked:
            hair &= ~(m["l_ear"] | m["r_ear"] | m["ear_r"])
        else:  # long hair falls over the ears
            for e in self.ear_geo.values():
                hair |= H.fill(_ellipse(e["cx"], e["cy"], e["rx"] + 0.08, e["ry"] + 0.1, e["angle"]))
        if style == "long":
            hair &= ~m["neck"]
        if style == "long" and "cloth" in m and r.random() < 0.4:
            hair &= ~m["cloth"]  # hair behind the shoulders
        if style == "bun":
            bx = r.choice([0.0, r.uniform(-0.7, 0.7)])
            hair |= H.fill(_ellipse(bx, -self.skull_h - r.uniform(0.05, 0.25), r.uniform(0.3, 0.5),
                                    r.uniform(0.28, 0.42)))
        # Fringe over the forehead, often swept to one side (asymmetric).
        if style in ("short", "long") and r.random() < 0.3:
            fy = self.brow_y + r.uniform(-0.15, 0.08)
            slope = r.uniform(-0.25, 0.25)
            fx_ = np.linspace(-0.95, 0.95, 11)
            fb = np.minimum(fy + slope * fx_ + r.uniform(-0.03, 0.03, 11), self.eye_y - 0.12)
            fringe = H.fill(np.concatenate([[[-1.0, hl - 0.3], [1.0, hl - 0.3]],
                                            np.stack([fx_, fb], 1)[::-1]]))
            hair |= fringe & head
        elif style in ("short", "long") and r.random() < 0.6:
            self.parting = float(r.choice([-1, 1]) * r.uniform(0.15, 0.5))
        self.hair_geo = dict(hl=hl, rx=rx, ry=ry, shift=shift, length=length, style=style)
        m["hair"] = hair

    def _hat(self) -> np.ndarray:
        r, H = self.rng, self.head
        kind = r.choice(["brim", "cap", "beanie"])
        hb = (self.hair_geo["hl"] if self.hair_style != "bald" else -0.75) + r.uniform(-0.25, 0.05)
        self.hat_brim_y = hb
        rx = r.uniform(1.05, 1.2)
        top = -self.skull_h - r.uniform(0.1, 0.45)
        t = np.linspace(math.pi, 2 * math.pi, 24)
        crown = np.stack([rx * np.cos(t), hb + (hb - top) * np.sin(t)], 1)
        crown = np.concatenate([crown, [[rx, hb + 0.08], [0, hb + 0.12], [-rx, hb + 0.08]]])
        hat = H.fill(crown)
        if kind == "brim":
            hat |= H.fill(_ellipse(0, hb + 0.05, r.uniform(1.45, 1.9), r.uniform(0.1, 0.22)))
        elif kind == "cap":
            hat |= H.fill(_ellipse(self.yaw * 0.5, hb + 0.05, r.uniform(0.9, 1.1), r.uniform(0.15, 0.28),
                                   0, 20, 0, math.pi))
        return hat


# --------------------------------------------------------------------------- painting

# Stacking "later wins" = the highest paint rank wins: a running maximum of rank-valued masks
# (one cheap pass per part) and a lookup table from rank back to class ID.
_RANK = {name: i + 1 for i, name in enumerate(DEFAULT_PAINT_ORDER)}
_RANK_TO_ID = np.zeros(256, np.uint8)
for _name, _rank in _RANK.items():
    _RANK_TO_ID[_rank] = _ID[_name]


def _stack(masks: dict[str, np.ndarray], size: int, skip: tuple[str, ...] = ()) -> np.ndarray:
    """Label map (uint8 class IDs) of 0/1 part masks stacked in DEFAULT_PAINT_ORDER."""
    rank = np.zeros((size, size), np.uint8)
    for name, mask in masks.items():
        if name not in skip:
            np.maximum(rank, mask * np.uint8(_RANK[name]), out=rank)
    return _RANK_TO_ID[rank]


def _member(label: np.ndarray, *names: str) -> np.ndarray:
    """Boolean map of pixels whose label is one of names."""
    table = np.zeros(256, bool)
    table[[_ID[n] for n in names]] = True
    return table[label]


def _palette(rng: np.random.Generator, skin: np.ndarray, hair: np.ndarray) -> list[np.ndarray]:
    """Scene colours shared by background, cloth and hat (some close to skin or hair)."""
    colours = [_hsv(rng.random(), rng.uniform(0, 0.85), rng.uniform(0.08, 1.0)) for _ in range(5)]
    if rng.random() < 0.15:
        colours[0] = _jitter(rng, skin, 0.12)
    if rng.random() < 0.15:
        colours[1] = _jitter(rng, hair, 0.15)
    return colours


def _background(rng: np.random.Generator, size: int, palette: list[np.ndarray]) -> np.ndarray:
    """Gradient + clutter shapes + smooth colour noise, sometimes defocused.

    Drawn at half resolution and upsampled (4x less work; it is behind the face and soft anyway).
    """
    full, size = size, max(16, size // 2)
    c1, c2 = palette[rng.integers(5)], palette[rng.integers(5)]
    a = rng.uniform(0, 2 * math.pi)
    ramp = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    g = np.add.outer(ramp * math.sin(a), ramp * math.cos(a)) + 0.5  # (H, W) in [0, 1]-ish
    img = c1 + (c2 - c1) * g[..., None]
    img = np.ascontiguousarray(img, dtype=np.float32)
    for _ in range(int(rng.integers(0, 14))):
        colour = _colour(palette[rng.integers(5)] * rng.uniform(0.7, 1.2), img)
        kind = rng.integers(4)
        p = rng.uniform(-0.1, 1.1, 2) * size
        s = rng.uniform(0.03, 0.5) * size
        if kind == 0:
            q = p + rng.uniform(-1, 1, 2) * s
            cv2.rectangle(img, tuple(int(v) for v in p), tuple(int(v) for v in q), colour, -1)
        elif kind == 1:
            cv2.ellipse(img, (int(p[0]), int(p[1])), (int(s), int(s * rng.uniform(0.3, 1))),
                        float(rng.uniform(0, 180)), 0, 360, colour, -1)
        elif kind == 2:
            q = p + rng.uniform(-1, 1, 2) * s * 2
            cv2.line(img, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), colour,
                     max(1, int(rng.uniform(0.005, 0.04) * size)))
        else:
            pts = (p + rng.uniform(-1, 1, (int(rng.integers(3, 7)), 2)) * s).astype(np.int32)
            cv2.fillPoly(img, [pts], colour)
    if rng.random() < 0.5:
        k = rng.uniform(0.004, 0.02) * size
        img = cv2.GaussianBlur(img, (0, 0), k)
    amp = rng.uniform(0.0, 40.0)
    img += amp * _low_freq_noise(rng, size, int(rng.integers(3, 9)), 3)
    if rng.random() < 0.3:  # fine texture (fabric, foliage, wallpaper)
        img += rng.uniform(4, 18) * _low_freq_noise(rng, size, max(4, size // 4), 3)
    return cv2.resize(img, (full, full), interpolation=cv2.INTER_LINEAR)


def _lip_colour(rng: np.random.Generator, skin: np.ndarray) -> np.ndarray:
    if rng.random() < 0.15:  # lipstick
        return _hsv(rng.choice([0.97, 0.0, 0.93, 0.03, 0.85]) + rng.uniform(-0.02, 0.02),
                    rng.uniform(0.4, 0.9), rng.uniform(0.35, 0.85))
    alpha = rng.uniform(0.1, 0.55)
    red = np.array([185, 80, 90], np.float32) * (skin.mean() / 180) ** 0.7
    return np.clip((skin * (1 - alpha) + red * alpha) * rng.uniform(0.78, 0.97), 0, 255)


def _clip_draw(img: np.ndarray, region: np.ndarray, draw) -> None:
    """Run draw(tmp) on a copy of img and keep the result only inside region (bool H x W)."""
    x0, y0, w, h = cv2.boundingRect(region.view(np.uint8))
    if w == 0:
        return
    y1, x1 = y0 + h, x0 + w
    tmp = img.copy()
    draw(tmp)
    sub = region[y0:y1, x0:x1, None]
    np.copyto(img[y0:y1, x0:x1], tmp[y0:y1, x0:x1], where=sub)


def _paint(face: _Face, label: np.ndarray, label_under: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Render the RGB image (float32) of the stacked label map (label_under: the same without eye_g)."""
    size, H, B = face.size, face.head, face.body
    unit = face.unit
    is_ = functools.partial(_member, label_under)

    t = rng.uniform(0, len(_SKIN_ANCHORS) - 1)  # a point along the light-to-dark tone ramp
    k = min(int(t), len(_SKIN_ANCHORS) - 2)
    skin = _jitter(rng, _SKIN_ANCHORS[k] + (_SKIN_ANCHORS[k + 1] - _SKIN_ANCHORS[k]) * (t - k), 0.06)
    hair = _HAIR_COLOURS[rng.choice(len(_HAIR_COLOURS), p=_HAIR_P)]
    hair = _jitter(rng, hair, 0.12) if rng.random() > 0.06 else _hsv(rng.random(), rng.uniform(0.4, 0.9),
                                                                      rng.uniform(0.3, 0.9))
    palette = _palette(rng, skin, hair)
    lut = np.zeros((256, 3), np.float32)
    lut[_ID["skin"]] = skin
    lut[_ID["nose"]] = skin * np.array([1.0, 0.97, 0.96])
    sclera = np.array([236, 232, 226], np.float32) * rng.uniform(0.78, 1.0)
    lut[_ID["l_eye"]] = lut[_ID["r_eye"]] = sclera
    brow = hair * rng.uniform(0.55, 0.9) if rng.random() < 0.7 else _jitter(rng, np.array([55, 40, 30], np.float32), 0.3)
    lut[_ID["l_brow"]] = lut[_ID["r_brow"]] = brow
    lut[_ID["l_ear"]] = lut[_ID["r_ear"]] = skin * np.array([0.97, 0.9, 0.88])
    lut[_ID["mouth"]] = _jitter(rng, np.array([70, 22, 28], np.float32), 0.3)
    lips = _lip_colour(rng, skin)
    lut[_ID["u_lip"]] = lips * rng.uniform(0.82, 0.97)
    lut[_ID["l_lip"]] = lips
    lut[_ID["hair"]] = hair
    hat = palette[rng.integers(5)] if rng.random() < 0.6 else _hsv(rng.random(), rng.uniform(0, 1), rng.uniform(0.1, 1))
    lut[_ID["hat"]] = hat
    lut[_ID["ear_r"]] = getattr(face, "earring_colour", np.zeros(3))
    if face.necklace is not None:
        lut[_ID["neck_l"]] = face.necklace["colour"]
    lut[_ID["neck"]] = skin * rng.uniform(0.78, 0.92)
    cloth = palette[rng.integers(5)] if rng.random() < 0.6 else _hsv(rng.random(), rng.uniform(0, 1), rng.uniform(0.05, 1))
    lut[_ID["cloth"]] = cloth
    amp = np.zeros(256, np.float32)
    for name, a in (("skin", 0.03), ("nose", 0.03), ("l_eye", 0.02), ("r_eye", 0.02), ("l_brow", 0.2),
                    ("r_brow", 0.2), ("l_ear", 0.04), ("r_ear", 0.04), ("mouth", 0.12), ("u_lip", 0.06),
                    ("l_lip", 0.06), ("hair", 0.12), ("hat", 0.08), ("ear_r", 0.12), ("neck_l", 0.12),
                    ("neck", 0.03), ("cloth", 0.08)):
        amp[_ID[name]] = a

    img = _background(rng, size, palette)
    noise = 0.6 * _low_freq_noise(rng, size, max(4, size // 16)) + 0.4 * rng.standard_normal((size, size), np.float32)
    fg = label_under > 0
    fore = lut[label_under] * (1 + amp[label_under] * noise)[..., None]
    np.copyto(img, fore, where=fg[..., None])

    # ---- details clipped to their part
    for name, e in face.eyes.items():
        region = label_under == _ID[name]
        if e["closed"]:
            _clip_draw(img, region, lambda im, e=e: H.draw_stroke(im, [e["upper"]], 0.03, skin * 0.35))
            continue
        ir = e["rx"] * rng.uniform(0.38, 0.46)
        ix = e["cx"] + face.gaze[0] * e["rx"] * 0.5
        iy = e["cy"] + face.gaze[1] * e["up"] * 0.5

        def eye_detail(im, e=e, ir=ir, ix=ix, iy=iy):
            H.draw_fill(im, [_ellipse(ix, iy, ir, ir)], face.iris_colour)
            H.draw_stroke(im, [_ellipse(ix, iy, ir, ir)], ir * 0.2, face.iris_colour * 0.55, closed=True)
            H.draw_fill(im, [_ellipse(ix, iy, ir * 0.42, ir * 0.42)], (12, 10, 10))
            H.draw_fill(im, [_ellipse(ix - ir * 0.3, iy - ir * 0.35, ir * 0.15, ir * 0.15)], (250, 250, 250))
            H.draw_stroke(im, [e["upper"]], 0.035, sclera * 0.45)  # lid shadow on the eyeball
        _clip_draw(img, region, eye_detail)
    lash_region = is_("skin", "l_eye", "r_eye")
    lash_colour = np.minimum(brow, skin) * 0.4
    _clip_draw(img, lash_region, lambda im: H.draw_stroke(
        im, [e["upper"] for e in face.eyes.values()], 0.022, lash_colour))

    brows = is_("l_brow", "r_brow")
    if brows.any():
        def brow_strokes(im):
            for sgn, colour in ((1, brow * 0.7), (-1, np.minimum(brow * 1.35, 255))):
                segs = []
                for e in face.eyes.values():
                    for _ in range(10):
                        x = e["cx"] + rng.uniform(-1.2, 1.2) * face.eye_rx * 1.4
                        y = face.brow_y + rng.uniform(-0.06, 0.06)
                        segs.append(np.array([[x, y + 0.03], [x + e["side"] * 0.06, y - 0.03 * sgn]]))
                H.draw_stroke(im, segs, 0.012, colour)
        _clip_draw(img, brows, brow_strokes)

    ng = face.nose_geo
    nose_region = label_under == _ID["nose"]
    nost = [_ellipse(ng["xc"][-1] + s * ng["aw"] * 0.42, ng["nb"] - 0.03, ng["aw"] * 0.26, 0.024, -s * 0.3)
            for s in (-1, 1)]
    ala = [_ellipse(ng["xc"][-1] + s * ng["aw"] * 0.62, ng["nb"] - 0.07, ng["aw"] * 0.45, 0.09, 0, 12,
                    math.pi * (0.6 if s > 0 else -0.4), math.pi * (1.6 if s > 0 else 0.6)) for s in (-1, 1)]
    _clip_draw(img, nose_region, lambda im: H.draw_fill(im, nost, skin * 0.5))

    mg = face.mouth_geo
    if mg["open_h"] == 0:  # closed lips meet in a dark line
        _clip_draw(img, is_("u_lip", "l_lip"), lambda im: H.draw_stroke(
            im, [np.stack([mg["x"], mg["line"]], 1)], 0.018, lips * 0.45))
    mouth_region = label_under == _ID["mouth"]
    if mg["open_h"] > 0 and mouth_region.any():
        def mouth_detail(im):
            if rng.random() < 0.7:
                teeth_bot = mg["inner_top"] + mg["open_h"] * rng.uniform(0.2, 0.4) * (1 - np.linspace(-1, 1, 25) ** 2)
                H.draw_fill(im, [np.concatenate([np.stack([mg["x"], mg["inner_top"] - 0.02], 1),
                                                 np.stack([mg["x"], teeth_bot], 1)[::-1]])],
                            _jitter(rng, np.array([225, 218, 200], np.float32), 0.08))
            if rng.random() < 0.5:
                H.draw_fill(im, [_ellipse(float(mg["x"][12]), mg["my"] + mg["open_h"] * 0.55,
                                          mg["mw"] * 0.5, mg["open_h"] * 0.3)], lips * 0.8)
        _clip_draw(img, mouth_region, mouth_detail)

    hair_region = label_under == _ID["hair"]
    if hair_region.any():
        hg = face.hair_geo
        crown = np.array([face.parting if face.parting is not None else hg["shift"], -face.skull_h * 0.85])

        def strands(im):
            n = int(60 + 80 * max(hg["length"], 0) / 3)
            p0 = np.stack([rng.uniform(-hg["rx"] - 0.4, hg["rx"] + 0.4, n),
                           rng.uniform(-hg["ry"] - 0.4, max(hg["length"], 0.2), n)], 1)
            d = p0 - crown
            d /= np.linalg.norm(d, axis=1, keepdims=True) + 1e-6
            below = p0[:, 1] > 0  # long hair falls down
            d[below] = np.stack([0.15 * np.sign(p0[below, 0]), np.ones(below.sum())], 1)
            length = rng.uniform(0.3, 0.9, n)[:, None]
            bend = rng.uniform(-0.12, 0.12, n)[:, None]
            perp = np.stack([-d[:, 1], d[:, 0]], 1)
            tt = np.array([0, 0.33, 0.66, 1.0])[None, :, None]
            curve = p0[:, None] + d[:, None] * length[:, None] * tt + perp[:, None] * bend[:, None] * np.sin(tt * math.pi)
            groups = np.array_split(np.arange(n), 4)
            for g, f in zip(groups, (0.55, 0.75, 1.25, 1.5)):
                H.draw_stroke(im, list(curve[g]), 0.012 * rng.uniform(0.8, 2), np.minimum(hair * f + 8 * f, 255))
            if face.parting is not None:
                H.draw_stroke(im, [np.array([[face.parting, hg["hl"] - 0.05], [face.parting * 0.7, -face.skull_h]])],
                              0.02, (hair * 0.6 + skin * 0.4))
        _clip_draw(img, hair_region, strands)

    cloth_region = label_under == _ID["cloth"]
    if cloth_region.any():
        second = palette[rng.integers(5)]
        pattern = rng.choice(["plain", "stripes", "checks", "dots"], p=[0.5, 0.25, 0.1, 0.15])

        def cloth_detail(im):
            if pattern in ("stripes", "checks"):
                step = rng.uniform(0.12, 0.4)
                w = step * rng.uniform(0.2, 0.5)
                ys = np.arange(0.5, 8, step)
                lines = [np.array([[-5, y], [5, y]]) for y in ys]
                if pattern == "checks":
                    lines += [np.array([[x, 0], [x, 9]]) for x in np.arange(-5, 5, step)]
                B.draw_stroke(im, lines, w, second)
            elif pattern == "dots":
                pts = rng.uniform([-4, face.shoulder_y], [4, 6], (40, 2))
                B.draw_fill(im, [_ellipse(x, y, 0.05, 0.05, 0, 10) for x, y in pts], second)
            if face.neckline != "high" and rng.random() < 0.4:  # trim along the neckline
                B.draw_stroke(im, [face.cloth], 0.06, second * 0.8)
        _clip_draw(img, cloth_region, cloth_detail)

    hat_region = label_under == _ID["hat"]
    if hat_region.any():
        band = palette[rng.integers(5)]
        _clip_draw(img, hat_region, lambda im: H.draw_stroke(
            im, [np.array([[-1.3, face.hat_brim_y - 0.08], [1.3, face.hat_brim_y - 0.08]])],
            rng.uniform(0.05, 0.15), band))

    if face.necklace is not None and face.necklace["pearls"]:
        nl = face.necklace
        _clip_draw(img, label_under == _ID["neck_l"], lambda im: B.draw_stroke(
            im, [_ellipse(x, y, nl["width"] * 0.3, nl["width"] * 0.3, 0, 8) for x, y in nl["arc"]],
            nl["width"] * 0.2, nl["colour"] * 0.6, closed=True))

    # ---- soft shading: one map of multiplicative offsets, blurred, kept on the foreground
    shade = np.zeros((size, size), np.float32)
    lx = math.cos(face.light)
    shadow_side = -1 if lx > 0 else 1
    H.draw_fill(shade, [np.stack([ng["xc"] + shadow_side * ng["w"] * 0.9, ng["y"]], 1)[::-1].tolist()
                        + np.stack([ng["xc"] + shadow_side * ng["w"] * 0.1, ng["y"]], 1).tolist()], -0.3)
    H.draw_stroke(shade, [np.stack([ng["xc"] - shadow_side * 0.02, ng["y"]], 1)[2:]], 0.04, 0.16)
    H.draw_fill(shade, [_ellipse(float(ng["xc"][-1]), ng["nb"] - 0.1, 0.09, 0.07)], 0.12)
    H.draw_stroke(shade, ala, 0.03, -0.25)  # crease around each nostril wing
    H.draw_fill(shade, [_ellipse(float(ng["xc"][-1]), ng["nb"] + 0.04, ng["aw"] * 0.9, 0.05)], -0.15)
    # Highlights on the lit side of forehead and cheeks, a touch of blush below the eyes.
    lit = -shadow_side
    H.draw_fill(shade, [_ellipse(lit * 0.25, face.brow_y - 0.35, 0.35, 0.15)], 0.1)
    H.draw_fill(shade, [_ellipse(lit * 0.55, face.eye_y + 0.35, 0.2, 0.12)], 0.08)
    for e in face.eyes.values():
        H.draw_fill(shade, [_ellipse(e["cx"] - e["side"] * 0.05, e["cy"] - 0.09, e["rx"] * 1.1, 0.07)], -0.1)
    H.draw_fill(shade, [_ellipse(float(mg["x"][12]), float(mg["bottom"][12]) - 0.04, mg["mw"] * 0.45, 0.025)], 0.14)
    H.draw_fill(shade, [_ellipse(float(mg["x"][12]), float(mg["bottom"][12]) + 0.07, mg["mw"] * 0.6, 0.05)], -0.12)
    H.draw_fill(shade, [face.head_poly + np.array([0.0, 0.22])], -0.3)  # chin shadow on the neck
    for eg in face.ear_geo.values():
        H.draw_fill(shade, [_ellipse(eg["cx"] + eg["side"] * 0.03, eg["cy"] - 0.03, eg["rx"] * 0.55,
                                     eg["ry"] * 0.6, eg["angle"])], -0.18)
    if face.hair_style != "bald":
        hg = face.hair_geo
        H.draw_fill(shade, [_ellipse(hg["shift"] - lx * 0.3, -hg["ry"] * 0.7, hg["rx"] * 0.5, 0.12)], 0.25)
    if face.has_hat:
        H.draw_fill(shade, [_ellipse(0, face.hat_brim_y + 0.15, 1.1, 0.15)], -0.3)
    if cloth_region.any():
        folds = [np.array([[x, face.shoulder_y + 0.3], [x + rng.uniform(-0.3, 0.3), 6]])
                 for x in rng.uniform(-2.5, 2.5, int(rng.integers(0, 5)))]
        if folds:
            B.draw_stroke(shade, folds, 0.1, -0.18)
    shade = cv2.GaussianBlur(shade, (0, 0), max(0.8, 0.05 * unit))
    # Rounded look: skin darkens toward the face/neck outline (distance to the contour).
    face_like = is_("skin", "nose", "l_eye", "r_eye", "l_brow", "r_brow", "mouth", "u_lip", "l_lip")
    dist = cv2.distanceTransform(face_like.astype(np.uint8), cv2.DIST_L2, 3)
    rim = rng.uniform(0.15, 0.35)
    shade -= face_like * rim * (1 - np.clip(dist / (0.35 * unit), 0, 1)) ** 2
    side_parts = is_("neck", "l_ear", "r_ear")
    dist2 = cv2.distanceTransform(side_parts.astype(np.uint8), cv2.DIST_L2, 3)
    shade -= side_parts * 0.15 * (1 - np.clip(dist2 / (0.25 * unit), 0, 1)) ** 2
    # ---- glasses over whatever is beneath the lenses
    if face.glasses:
        on = label == _ID["eye_g"]
        frame = on & face.frame.astype(bool)
        lens = on & ~frame
        alpha = rng.uniform(0.75, 0.92) if face.sunglasses else rng.uniform(0.05, 0.2)
        img[lens] = img[lens] * (1 - alpha) + face.lens_tint * alpha
        img[frame] = face.frame_colour * (1 + 0.1 * noise[frame, None])

    # ---- one multiplicative pass: soft shading on the face, light over the scene, white balance
    ramp = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    strength = rng.uniform(0.1, 0.6)
    gain = 1 + strength * np.add.outer(ramp * math.sin(face.light), ramp * math.cos(face.light))
    gain *= 1 + shade * fg
    balance = rng.uniform(0.9, 1.1, 3).astype(np.float32) * np.float32(rng.uniform(0.8, 1.15))
    img *= gain[..., None] * balance
    return img


def _finish(img: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Camera look: soft edges, sometimes defocus, sensor noise; returns uint8."""
    px = size / 256
    sigma = max(0.5, 0.6 * px) * rng.uniform(0.8, 1.4)
    k = 2 * math.ceil(2 * sigma) + 1  # +-2 sigma is plenty for softening edges
    img = cv2.GaussianBlur(img, (k, k), sigma)
    if rng.random() < 0.2:
        img = cv2.GaussianBlur(img, (0, 0), px * rng.uniform(0.8, 2.0))
    sigma = rng.uniform(1.0, 7.0)
    img += rng.standard_normal((size, size, 1), np.float32) * sigma  # luminance grain
    if rng.random() < 0.3:
        img += rng.standard_normal((size, size, 3), np.float32) * (sigma * 0.5)
    return np.clip(img, 0, 255).astype(np.uint8)


def render_face(rng: np.random.Generator, size: int, *,
                max_rotation: float = 25.0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One synthetic face: (RGB uint8 (size, size, 3), {part: bool (size, size)} for parts present).

    max_rotation (degrees) bounds the in-plane roll; 0 gives upright heads.
    """
    face = _Face(rng, size, max_rotation)
    masks = face.build()
    label = _stack(masks, size)
    label_under = _stack(masks, size, skip=("eye_g",))
    img = _finish(_paint(face, label, label_under, rng), rng, size)
    # Drop parts that end up hidden (e.g. an ear under long hair): absent parts have no file.
    # Lenses are see-through, so eyes and brows behind glasses still count as present.
    counts = np.bincount(label_under.ravel(), minlength=NUM_CLASSES)
    counts[_ID["eye_g"]] = np.count_nonzero(label == _ID["eye_g"])
    min_px = max(4, size * size // 8192)
    out = {name: masks[name].astype(bool) for name in PARTS
           if name in masks and counts[_ID[name]] >= min_px}
    return img, out


# --------------------------------------------------------------------------- dataset writing

def mask_path(out: Path, index: int, part: str) -> Path:
    """Where the raw layout keeps part `part` of face `index`."""
    return out / ANNO_DIR / str(index // IDS_PER_FOLDER) / f"{index:05d}_{part}.png"


def write_face(index: int, out: Path, size: int, seed: int) -> int:
    """Render face `index` and write its image and part masks; returns the number of parts."""
    rng = np.random.default_rng([seed, index])
    img, masks = render_face(rng, size)
    quality = int(rng.integers(60, 96))
    half = size // 2
    written = 0
    for part in PARTS:
        path = mask_path(out, index, part)
        small = None
        if part in masks:
            small = cv2.resize(masks[part].astype(np.uint8) * 255, (half, half), interpolation=cv2.INTER_AREA)
            small = np.where(small > 127, 255, 0).astype(np.uint8)
        if small is not None and small.any():
            write_image(path, small)
            written += 1
        else:  # a rerun into the same folder must not keep a stale part
            path.unlink(missing_ok=True)
    write_image(out / IMAGE_DIR / f"{index}.jpg", img, jpeg_quality=quality)
    return written


def _check_args(num: int, size: int, workers: int) -> None:
    if num < 1:
        raise ValueError(f"--num must be >= 1, got {num}")
    if size < 32 or size % 2:
        raise ValueError(f"--size must be an even number >= 32 (masks are written at size // 2), got {size}")
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")


def _remove_stale(out: Path, num: int) -> None:
    """Drop faces beyond num left by an earlier, larger run into the same folder."""
    mapping = out / MAPPING_FILE
    if not mapping.is_file():
        return
    lines = mapping.read_text().splitlines()
    if not lines or lines[0].split() != MAPPING_HEADER.split():
        return
    for line in lines[1:]:
        fields = line.split()
        if len(fields) == 3 and fields[0].isdigit() and fields[2].startswith("synth_") and int(fields[0]) >= num:
            i = int(fields[0])
            (out / IMAGE_DIR / f"{i}.jpg").unlink(missing_ok=True)
            for part in PARTS:
                mask_path(out, i, part).unlink(missing_ok=True)


def generate(out: str | Path, num: int, size: int = 256, seed: int = 0, workers: int = 1,
             progress: bool = True) -> Path:
    """Write num synthetic faces to out in the raw CelebAMask-HQ layout; returns out.

    Face i depends only on (seed, i), so the output is the same for any number of workers.
    """
    _check_args(num, size, workers)
    out = Path(out)
    (out / IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    _remove_stale(out, num)
    job = functools.partial(write_face, out=out, size=size, seed=seed)
    for _ in run_tasks(job, range(num), workers, progress, f"synth faces {size}px"):
        pass
    write_text(out / MAPPING_FILE,
               MAPPING_HEADER + "\n" + "".join(f"{i} {i} synth_{i:06d}.jpg\n" for i in range(num)))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="output folder (raw CelebAMask-HQ layout)")
    parser.add_argument("--num", type=int, default=200, help="number of faces (default 200)")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels, even, >= 32 (default 256)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1); output does not depend on it")


def main(args: argparse.Namespace) -> int:
    out = generate(args.out, args.num, args.size, args.seed, args.workers)
    print(f"wrote {args.num} synthetic faces ({args.size}px, seed {args.seed}) to {out}")
    return 0
