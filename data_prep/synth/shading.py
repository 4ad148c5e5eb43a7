"""Light: soft shading offsets on the face (nose, cheeks, lids, chin, rim) and the scene light."""

from __future__ import annotations

import math

import cv2
import numpy as np

from configs import CLASS_ID
from data_prep.synth.draw import ellipse
from data_prep.synth.geometry import Face
from data_prep.synth.labels import region


def shading(face: Face, label_under: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative offsets (float32 (size, size), about -0.5..0.3), blurred: shadows < 0 < highlights."""
    size, canvas, unit = face.size, face.pose.head, face.pose.unit
    nose, mouth = face.nose, face.mouth
    shade = np.zeros((size, size), np.float32)
    light_x = math.cos(face.light_angle)
    shadow_side = -1 if light_x > 0 else 1
    # Nose: shadow on the side away from the light, a highlight down the bridge and on the tip.
    outer = np.stack([nose.centre_x + shadow_side * nose.half_width * 0.9, nose.y], 1)
    inner = np.stack([nose.centre_x + shadow_side * nose.half_width * 0.1, nose.y], 1)
    canvas.draw_fill(shade, [outer[::-1].tolist() + inner.tolist()], -0.3)
    canvas.draw_stroke(shade, [np.stack([nose.centre_x - shadow_side * 0.02, nose.y], 1)[2:]], 0.04, 0.16)
    canvas.draw_fill(shade, [ellipse(float(nose.centre_x[-1]), nose.bottom - 0.1, 0.09, 0.07)], 0.12)
    alae = [
        ellipse(
            nose.centre_x[-1] + s * nose.ala_half_width * 0.62,
            nose.bottom - 0.07,
            nose.ala_half_width * 0.45,
            0.09,
            0,
            12,
            math.pi * (0.6 if s > 0 else -0.4),
            math.pi * (1.6 if s > 0 else 0.6),
        )
        for s in (-1, 1)
    ]
    canvas.draw_stroke(shade, alae, 0.03, -0.25)  # crease around each nostril wing
    canvas.draw_fill(
        shade, [ellipse(float(nose.centre_x[-1]), nose.bottom + 0.04, nose.ala_half_width * 0.9, 0.05)], -0.15
    )
    # Highlights on the lit side of forehead and cheeks, a touch of blush below the eyes.
    lit = -shadow_side
    canvas.draw_fill(shade, [ellipse(lit * 0.25, face.brow_y - 0.35, 0.35, 0.15)], 0.1)
    canvas.draw_fill(shade, [ellipse(lit * 0.55, face.head.eye_y + 0.35, 0.2, 0.12)], 0.08)
    for _, eye in face.eyes.both:  # eye sockets
        socket = ellipse(eye.cx - eye.side * 0.05, eye.cy - 0.09, eye.half_width * 1.1, 0.07)
        canvas.draw_fill(shade, [socket], -0.1)
    mouth_x, lip_bottom = float(mouth.x[12]), float(mouth.bottom[12])
    canvas.draw_fill(shade, [ellipse(mouth_x, lip_bottom - 0.04, mouth.half_width * 0.45, 0.025)], 0.14)
    canvas.draw_fill(shade, [ellipse(mouth_x, lip_bottom + 0.07, mouth.half_width * 0.6, 0.05)], -0.12)
    canvas.draw_fill(shade, [face.head.outline + np.array([0.0, 0.22])], -0.3)  # chin shadow on the neck
    for ear in face.ears:
        canvas.draw_fill(
            shade,
            [ellipse(ear.cx + ear.side * 0.03, ear.cy - 0.03, ear.rx * 0.55, ear.ry * 0.6, ear.angle)],
            -0.18,
        )
    if face.hair is not None:  # sheen on the crown
        hair = face.hair
        sheen = ellipse(hair.shift - light_x * 0.3, -hair.height * 0.7, hair.half_width * 0.5, 0.12)
        canvas.draw_fill(shade, [sheen], 0.25)
    if face.hat is not None:  # the brim's shadow
        canvas.draw_fill(shade, [ellipse(0, face.hat.brim_y + 0.15, 1.1, 0.15)], -0.3)
    if (label_under == CLASS_ID["cloth"]).any():
        folds = [
            np.array([[x, face.body.shoulder_y + 0.3], [x + rng.uniform(-0.3, 0.3), 6]])
            for x in rng.uniform(-2.5, 2.5, int(rng.integers(0, 5)))
        ]
        if folds:
            face.pose.body.draw_stroke(shade, folds, 0.1, -0.18)
    shade = cv2.GaussianBlur(shade, (0, 0), max(0.8, 0.05 * unit))
    # Rounded look: skin darkens toward the face/neck outline (distance to the contour).
    face_like = region(
        label_under, "skin", "nose", "l_eye", "r_eye", "l_brow", "r_brow", "mouth", "u_lip", "l_lip"
    )
    distance = cv2.distanceTransform(face_like.astype(np.uint8), cv2.DIST_L2, 3)
    rim = rng.uniform(0.15, 0.35)
    shade -= face_like * rim * (1 - np.clip(distance / (0.35 * unit), 0, 1)) ** 2
    side_parts = region(label_under, "neck", "l_ear", "r_ear")
    distance = cv2.distanceTransform(side_parts.astype(np.uint8), cv2.DIST_L2, 3)
    shade -= side_parts * 0.15 * (1 - np.clip(distance / (0.25 * unit), 0, 1)) ** 2
    return shade


def apply_light(
    img: np.ndarray, face: Face, shade: np.ndarray, foreground: np.ndarray, rng: np.random.Generator
) -> None:
    """One multiplicative pass in place: shading on the foreground, light across the scene, white balance."""
    ramp = np.linspace(-0.5, 0.5, face.size, dtype=np.float32)
    strength = rng.uniform(0.1, 0.6)
    gain = 1 + strength * np.add.outer(ramp * math.sin(face.light_angle), ramp * math.cos(face.light_angle))
    gain *= 1 + shade * foreground
    balance = rng.uniform(0.9, 1.1, 3).astype(np.float32) * np.float32(rng.uniform(0.8, 1.15))
    img *= gain[..., None] * balance
