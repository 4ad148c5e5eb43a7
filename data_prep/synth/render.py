"""One synthetic face: sample its shape, stack the part masks, paint the image from the label map."""

from __future__ import annotations

import numpy as np

from configs import CLASS_ID, CLASSES, NUM_CLASSES
from data_prep.synth.background import paint_background
from data_prep.synth.camera import camera_finish
from data_prep.synth.colour import low_freq_noise
from data_prep.synth.details import paint_details, paint_glasses
from data_prep.synth.face import build_face
from data_prep.synth.geometry import Face
from data_prep.synth.labels import stack_parts
from data_prep.synth.palette import TEXTURE_AMPLITUDE, sample_colours
from data_prep.synth.shading import apply_light, shading

PARTS: tuple[str, ...] = CLASSES[1:]  # every class but background can have a part file


def paint(face: Face, label: np.ndarray, label_under: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Render the RGB image (float32) of the stacked label map (label_under: the same without eye_g)."""
    size = face.size
    colours = sample_colours(rng, face)
    img = paint_background(rng, size, colours.scene)
    noise = 0.6 * low_freq_noise(rng, size, max(4, size // 16)) + 0.4 * rng.standard_normal(
        (size, size), np.float32
    )
    foreground = label_under > 0
    parts = colours.by_class[label_under] * (1 + TEXTURE_AMPLITUDE[label_under] * noise)[..., None]
    np.copyto(img, parts, where=foreground[..., None])
    paint_details(img, face, colours, label_under, rng)
    shade = shading(face, label_under, rng)
    paint_glasses(img, face, label, noise, rng)
    apply_light(img, face, shade, foreground, rng)
    return img


def render_face(
    rng: np.random.Generator, size: int, *, max_rotation: float = 25.0
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One synthetic face: (RGB uint8 (size, size, 3), {part: bool (size, size)} for parts present).

    max_rotation (degrees) bounds the in-plane roll; 0 gives upright heads.
    """
    face, masks = build_face(rng, size, max_rotation)
    label = stack_parts(masks, size)
    label_under = stack_parts(masks, size, skip=("eye_g",))
    img = camera_finish(paint(face, label, label_under, rng), rng, size)
    # Drop parts that end up hidden (e.g. an ear under long hair): absent parts have no file.
    # Lenses are see-through, so eyes and brows behind glasses still count as present.
    counts = np.bincount(label_under.ravel(), minlength=NUM_CLASSES)
    counts[CLASS_ID["eye_g"]] = np.count_nonzero(label == CLASS_ID["eye_g"])
    min_pixels = max(4, size * size // 8192)
    present = {
        name: masks[name].astype(bool)
        for name in PARTS
        if name in masks and counts[CLASS_ID[name]] >= min_pixels
    }
    return img, present
