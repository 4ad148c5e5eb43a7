"""Details drawn inside their part only: irises, lashes, brow hairs, nostrils, teeth, hair strands,
cloth patterns, hat band, pearls.

Each drawing goes through clip_draw, which skips it (and the random numbers it would take) when
its part is not visible.
"""

from __future__ import annotations

import math

import numpy as np

from configs import CLASS_ID
from data_prep.synth.colour import jitter
from data_prep.synth.draw import clip_draw, ellipse
from data_prep.synth.geometry import Eye, Face
from data_prep.synth.labels import region
from data_prep.synth.palette import Colours


def paint_details(
    img: np.ndarray, face: Face, colours: Colours, label_under: np.ndarray, rng: np.random.Generator
) -> None:
    """Draw every part's details into img (float32 RGB) in place; label_under: labels without eye_g."""
    for name, eye in face.eyes.both:
        _paint_eye(img, face, eye, label_under == CLASS_ID[name], colours, rng)
    _paint_lashes(img, face, colours, label_under)
    _paint_brow_hairs(img, face, colours, label_under, rng)
    _paint_nostrils(img, face, colours, label_under)
    _paint_mouth(img, face, colours, label_under, rng)
    _paint_hair_strands(img, face, colours, label_under, rng)
    _paint_cloth_pattern(img, face, colours, label_under, rng)
    _paint_hat_band(img, face, colours, label_under, rng)
    _paint_pearls(img, face, label_under)


def _paint_eye(
    img: np.ndarray, face: Face, eye: Eye, eye_region: np.ndarray, colours: Colours, rng: np.random.Generator
) -> None:
    canvas = face.pose.head
    if eye.closed:
        clip_draw(
            img, eye_region, lambda im: canvas.draw_stroke(im, [eye.upper_lid], 0.03, colours.skin * 0.35)
        )
        return
    iris_r = eye.half_width * rng.uniform(0.38, 0.46)
    iris_x = eye.cx + face.eyes.gaze[0] * eye.half_width * 0.5
    iris_y = eye.cy + face.eyes.gaze[1] * eye.lid_height * 0.5
    iris_colour = face.eyes.iris_colour

    def draw(im: np.ndarray) -> None:
        canvas.draw_fill(im, [ellipse(iris_x, iris_y, iris_r, iris_r)], iris_colour)
        canvas.draw_stroke(
            im, [ellipse(iris_x, iris_y, iris_r, iris_r)], iris_r * 0.2, iris_colour * 0.55, closed=True
        )
        canvas.draw_fill(im, [ellipse(iris_x, iris_y, iris_r * 0.42, iris_r * 0.42)], (12, 10, 10))  # pupil
        catch_light = ellipse(iris_x - iris_r * 0.3, iris_y - iris_r * 0.35, iris_r * 0.15, iris_r * 0.15)
        canvas.draw_fill(im, [catch_light], (250, 250, 250))
        canvas.draw_stroke(im, [eye.upper_lid], 0.035, colours.sclera * 0.45)  # lid shadow on the eyeball

    clip_draw(img, eye_region, draw)


def _paint_lashes(img: np.ndarray, face: Face, colours: Colours, label_under: np.ndarray) -> None:
    lash_colour = np.minimum(colours.brow, colours.skin) * 0.4
    lids = [eye.upper_lid for _, eye in face.eyes.both]
    clip_draw(
        img,
        region(label_under, "skin", "l_eye", "r_eye"),
        lambda im: face.pose.head.draw_stroke(im, lids, 0.022, lash_colour),
    )


def _paint_brow_hairs(
    img: np.ndarray, face: Face, colours: Colours, label_under: np.ndarray, rng: np.random.Generator
) -> None:
    brows = region(label_under, "l_brow", "r_brow")
    if not brows.any():
        return
    brow = colours.brow

    def draw(im: np.ndarray) -> None:
        # Dark hairs leaning one way, then light ones leaning the other.
        for lean, colour in ((1, brow * 0.7), (-1, np.minimum(brow * 1.35, 255))):
            hairs = []
            for _, eye in face.eyes.both:
                for _ in range(10):
                    x = eye.cx + rng.uniform(-1.2, 1.2) * face.eyes.half_width * 1.4
                    y = face.brow_y + rng.uniform(-0.06, 0.06)
                    hairs.append(np.array([[x, y + 0.03], [x + eye.side * 0.06, y - 0.03 * lean]]))
            face.pose.head.draw_stroke(im, hairs, 0.012, colour)

    clip_draw(img, brows, draw)


def _paint_nostrils(img: np.ndarray, face: Face, colours: Colours, label_under: np.ndarray) -> None:
    nose = face.nose
    nostrils = [
        ellipse(
            nose.centre_x[-1] + s * nose.ala_half_width * 0.42,
            nose.bottom - 0.03,
            nose.ala_half_width * 0.26,
            0.024,
            -s * 0.3,
        )
        for s in (-1, 1)
    ]
    clip_draw(
        img,
        label_under == CLASS_ID["nose"],
        lambda im: face.pose.head.draw_fill(im, nostrils, colours.skin * 0.5),
    )


def _paint_mouth(
    img: np.ndarray, face: Face, colours: Colours, label_under: np.ndarray, rng: np.random.Generator
) -> None:
    canvas, mouth, lips = face.pose.head, face.mouth, colours.lips
    if mouth.open_height == 0:  # closed lips meet in a dark line
        clip_draw(
            img,
            region(label_under, "u_lip", "l_lip"),
            lambda im: canvas.draw_stroke(im, [np.stack([mouth.x, mouth.line], 1)], 0.018, lips * 0.45),
        )
    mouth_region = label_under == CLASS_ID["mouth"]
    if mouth.open_height == 0 or not mouth_region.any():
        return

    def draw(im: np.ndarray) -> None:
        if rng.random() < 0.7:  # upper teeth
            teeth_bottom = mouth.inner_top + mouth.open_height * rng.uniform(0.2, 0.4) * (
                1 - np.linspace(-1, 1, 25) ** 2
            )
            canvas.draw_fill(
                im,
                [
                    np.concatenate(
                        [
                            np.stack([mouth.x, mouth.inner_top - 0.02], 1),
                            np.stack([mouth.x, teeth_bottom], 1)[::-1],
                        ]
                    )
                ],
                jitter(rng, np.array([225, 218, 200], np.float32), 0.08),
            )
        if rng.random() < 0.5:  # tongue
            canvas.draw_fill(
                im,
                [
                    ellipse(
                        float(mouth.x[12]),
                        mouth.centre_y + mouth.open_height * 0.55,
                        mouth.half_width * 0.5,
                        mouth.open_height * 0.3,
                    )
                ],
                lips * 0.8,
            )

    clip_draw(img, mouth_region, draw)


def _paint_hair_strands(
    img: np.ndarray, face: Face, colours: Colours, label_under: np.ndarray, rng: np.random.Generator
) -> None:
    hair_region = label_under == CLASS_ID["hair"]
    if not hair_region.any():
        return
    hair, canvas = face.hair, face.pose.head
    crown_x = hair.parting if hair.parting is not None else hair.shift
    crown = np.array([crown_x, -face.head.skull_height * 0.85])

    def draw(im: np.ndarray) -> None:
        n = int(60 + 80 * max(hair.length, 0) / 3)
        start = np.stack(
            [
                rng.uniform(-hair.half_width - 0.4, hair.half_width + 0.4, n),
                rng.uniform(-hair.height - 0.4, max(hair.length, 0.2), n),
            ],
            1,
        )
        direction = start - crown  # strands run away from the crown ...
        direction /= np.linalg.norm(direction, axis=1, keepdims=True) + 1e-6
        below = start[:, 1] > 0  # ... and long hair falls down
        direction[below] = np.stack([0.15 * np.sign(start[below, 0]), np.ones(below.sum())], 1)
        length = rng.uniform(0.3, 0.9, n)[:, None]
        bend = rng.uniform(-0.12, 0.12, n)[:, None]
        across = np.stack([-direction[:, 1], direction[:, 0]], 1)
        t = np.array([0, 0.33, 0.66, 1.0])[None, :, None]
        curves = (
            start[:, None]
            + direction[:, None] * length[:, None] * t
            + across[:, None] * bend[:, None] * np.sin(t * math.pi)
        )
        groups = np.array_split(np.arange(n), 4)
        for group, shade in zip(groups, (0.55, 0.75, 1.25, 1.5)):  # darker and lighter strands
            canvas.draw_stroke(
                im,
                list(curves[group]),
                0.012 * rng.uniform(0.8, 2),
                np.minimum(colours.hair * shade + 8 * shade, 255),
            )
        if hair.parting is not None:
            canvas.draw_stroke(
                im,
                [
                    np.array(
                        [
                            [hair.parting, hair.hairline_y - 0.05],
                            [hair.parting * 0.7, -face.head.skull_height],
                        ]
                    )
                ],
                0.02,
                (colours.hair * 0.6 + colours.skin * 0.4),
            )

    clip_draw(img, hair_region, draw)


def _paint_cloth_pattern(
    img: np.ndarray, face: Face, colours: Colours, label_under: np.ndarray, rng: np.random.Generator
) -> None:
    cloth_region = label_under == CLASS_ID["cloth"]
    if not cloth_region.any():
        return
    canvas = face.pose.body
    second = colours.scene[rng.integers(5)]
    pattern = rng.choice(["plain", "stripes", "checks", "dots"], p=[0.5, 0.25, 0.1, 0.15])

    def draw(im: np.ndarray) -> None:
        if pattern in ("stripes", "checks"):
            step = rng.uniform(0.12, 0.4)
            width = step * rng.uniform(0.2, 0.5)
            lines = [np.array([[-5, y], [5, y]]) for y in np.arange(0.5, 8, step)]
            if pattern == "checks":
                lines += [np.array([[x, 0], [x, 9]]) for x in np.arange(-5, 5, step)]
            canvas.draw_stroke(im, lines, width, second)
        elif pattern == "dots":
            centres = rng.uniform([-4, face.body.shoulder_y], [4, 6], (40, 2))
            canvas.draw_fill(im, [ellipse(x, y, 0.05, 0.05, 0, 10) for x, y in centres], second)
        if face.cloth.neckline != "high" and rng.random() < 0.4:  # trim along the neckline
            canvas.draw_stroke(im, [face.cloth.outline], 0.06, second * 0.8)

    clip_draw(img, cloth_region, draw)


def _paint_hat_band(
    img: np.ndarray, face: Face, colours: Colours, label_under: np.ndarray, rng: np.random.Generator
) -> None:
    hat_region = label_under == CLASS_ID["hat"]
    if not hat_region.any():
        return
    band = colours.scene[rng.integers(5)]
    band_y = face.hat.brim_y - 0.08
    clip_draw(
        img,
        hat_region,
        lambda im: face.pose.head.draw_stroke(
            im, [np.array([[-1.3, band_y], [1.3, band_y]])], rng.uniform(0.05, 0.15), band
        ),
    )


def _paint_pearls(img: np.ndarray, face: Face, label_under: np.ndarray) -> None:
    necklace = face.necklace
    if necklace is None or not necklace.pearls:
        return
    radius = necklace.width * 0.3
    clip_draw(
        img,
        label_under == CLASS_ID["neck_l"],
        lambda im: face.pose.body.draw_stroke(
            im,
            [ellipse(x, y, radius, radius, 0, 8) for x, y in necklace.arc],
            necklace.width * 0.2,
            necklace.colour * 0.6,
            closed=True,
        ),
    )


def paint_glasses(
    img: np.ndarray, face: Face, label: np.ndarray, noise: np.ndarray, rng: np.random.Generator
) -> None:
    """Tinted lenses over whatever is beneath them, and the frame, where eye_g is visible."""
    glasses = face.glasses
    if glasses is None:
        return
    visible = label == CLASS_ID["eye_g"]
    frame = visible & glasses.frame.astype(bool)
    lens = visible & ~frame
    alpha = rng.uniform(0.75, 0.92) if glasses.sunglasses else rng.uniform(0.05, 0.2)
    img[lens] = img[lens] * (1 - alpha) + glasses.lens_tint * alpha
    img[frame] = glasses.frame_colour * (1 + 0.1 * noise[frame, None])
