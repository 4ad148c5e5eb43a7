"""Crop/inverse geometry (ensemble.faces.align) and the training framing (data_prep.framing)."""

from __future__ import annotations

import json

import cv2
import numpy as np

from configs import CLASS_ID
from data_prep.framing import DEFAULT_FRAMING, face_box, landmarks, read_framing
from ensemble.faces.align import (
    apply,
    box_transform,
    invert,
    landmark_transform,
    similarity,
    view_transform,
    warp_back,
    warp_crop,
)

from faces import face_label_map
from wild_scenes import drawn_framing


def _rotation(theta: float, scale: float, shift=(0.0, 0.0)) -> np.ndarray:
    c, s = np.cos(theta) * scale, np.sin(theta) * scale
    return np.array([[c, -s, shift[0]], [s, c, shift[1]]])


def test_crop_then_inverse_is_exact_within_a_pixel():
    # A label map cropped (rotated, scaled, shifted) and its one-hot warped back lands where it was.
    rng = np.random.default_rng(0)
    labels = np.zeros((150, 200), np.uint8)
    labels[30:130, 50:150] = face_label_map(100, 100, rng)
    m = _rotation(0.4, 0.7, (10.0, -40.0))
    crop = warp_crop(np.dstack([labels] * 3), m, 96)[..., 0]
    onehot = (np.arange(19)[:, None, None] == crop[None]).astype(np.float32)
    rect, back, covered = warp_back(onehot, m, 150, 200)
    x0, y0, x1, y1 = rect
    restored = back.argmax(0).astype(np.uint8)
    inner = cv2.erode(covered.astype(np.uint8), np.ones((5, 5))) > 0
    truth = labels[y0:y1, x0:x1]
    # Only pixels on a part boundary (within a pixel of another class) may differ.
    boundary = cv2.morphologyEx(truth, cv2.MORPH_GRADIENT, np.ones((3, 3))) > 0
    assert (restored == truth)[inner & ~boundary].all()
    # Points: photo -> crop -> photo to float precision.
    pts = rng.uniform(0, 150, (10, 2))
    assert np.abs(apply(invert(m), apply(m, pts)) - pts).max() < 1e-9


def test_box_transform_puts_the_box_on_the_framing_without_squashing():
    framing = {"box": [0.5, 0.45, 0.5, 0.6], "landmarks": {}}
    m = box_transform((100, 40, 180, 140), framing, 128)
    assert abs(m[0, 0] - m[1, 1]) < 1e-12 and m[0, 1] == m[1, 0] == 0  # one scale: aspect kept
    centre = apply(m, np.array([[140, 90]]))[0]
    assert np.allclose(centre, [64, 0.45 * 128])
    # Box 80x100, framing 64x76.8: the scale is the geometric mean of both ratios.
    assert np.isclose(m[0, 0], np.sqrt(64 / 80 * 76.8 / 100))


def test_view_pads_a_landscape_photo_into_the_square():
    m = view_transform(100, 200, 64)
    assert np.allclose(apply(m, np.array([[0, 0], [200, 100]])), [[0, 16], [64, 48]])


def test_landmark_transform_undoes_roll():
    framing = drawn_framing()
    size = 64
    target = {k: np.array(v) * size for k, v in framing["landmarks"].items()}
    tilt = _rotation(0.3, 2.0, (40, 25))  # the face in the photo: rolled, twice as large
    photo_points = {k: apply(invert(tilt), v[None])[0] for k, v in target.items()}
    m = landmark_transform(photo_points, framing, size)
    assert np.allclose(m, tilt, atol=1e-6)
    assert landmark_transform({"nose": (1, 2), "mouth": (3, 4)}, framing, size) is None


def test_similarity_is_least_squares_exact_on_noise_free_points():
    src = np.array([[0, 0], [10, 0], [0, 5], [7, 7]], np.float64)
    m = _rotation(-1.1, 0.5, (3, 4))
    assert np.allclose(similarity(src, apply(m, src)), m)


def test_framing_is_measured_from_drawn_faces():
    framing = drawn_framing()
    cx, cy, w, h = framing["box"]
    # tests/faces.py draws skin of half-width 16/64 at x = 0.5, and the brows/eyes above the middle.
    assert abs(cx - 0.5) < 0.03 and 0.4 < w < 0.6 and 0.5 < h < 0.7
    marks = framing["landmarks"]
    assert marks["r_eye"][0] < 0.5 < marks["l_eye"][0]  # the subject's left eye on the image's right
    assert marks["l_eye"][1] < marks["nose"][1] < marks["mouth"][1]


def test_face_box_and_landmarks_of_a_label_map():
    labels = np.zeros((20, 30), np.uint8)
    labels[2:15, 5:20] = CLASS_ID["skin"]
    labels[0:20, 0:3] = CLASS_ID["hair"]  # not face core
    labels[4:6, 8:10] = CLASS_ID["r_eye"]
    assert face_box(labels) == (5, 2, 20, 15)
    assert landmarks(labels) == {"r_eye": (9.0, 5.0)}
    assert face_box(np.zeros((4, 4), np.uint8)) is None


def test_prepare_stores_the_framing_and_old_datasets_measure_it(tmp_path):
    from raw_celebamask import make_raw, prepare, simple_parts

    raw = make_raw(tmp_path / "raw", {i: simple_parts(i) for i in range(6)})
    meta = prepare(raw, tmp_path / "prep", val_fraction=0.2, test_fraction=0.2)
    stored = meta["framing"]
    assert stored["samples"] == 6
    # simple_parts: skin cols 2..13 of 16, rows 5..13 below the hair (painted over rows 0..4).
    assert np.allclose(stored["box"], [0.5, 9.5 / 16, 12 / 16, 9 / 16], atol=1e-4)
    # An older dataset.json without it: measured from its labels.
    path = tmp_path / "prep" / "dataset.json"
    old = json.loads(path.read_text())
    del old["framing"]
    path.write_text(json.dumps(old))
    assert np.allclose(read_framing(tmp_path / "prep")["box"], stored["box"])
    assert read_framing(None) == DEFAULT_FRAMING
