"""Clothes grown down the photo below a face (ensemble.postprocess.clothes_below)."""

from __future__ import annotations

import numpy as np

from configs import CLASS_ID
from configs.schema import PostprocessConfig
from ensemble.postprocess.clothes_below import ClothesBelow
from ensemble.postprocess.face_regions import Face
from ensemble.postprocess.registry import Context, build_steps

CLOTH, SKIN, HAIR = CLASS_ID["cloth"], CLASS_ID["skin"], CLASS_ID["hair"]


def _photo(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, Face]:
    """(image, parsed labels, true labels, face): a person whose jumper runs from row 60 to the bottom
    (darker further down, noisy), a table across its lower part from row 150, a grey wall beside it;
    the parse (a context view) ends at row 90."""
    rng = np.random.default_rng(seed)
    h, w = 200, 160
    image = np.full((h, w, 3), (150, 150, 150), np.float32)  # the wall
    truth = np.zeros((h, w), np.uint8)
    truth[20:60, 60:100] = SKIN  # the face
    jumper = np.zeros((h, w), bool)
    for y in range(60, h):
        half = 30 + (y - 60) // 8  # the body widens downwards
        jumper[y, 80 - half : 80 + half] = True
    shade = np.linspace(1.0, 0.6, h)[:, None, None]
    image = np.where(jumper[..., None], np.array([40, 90, 170], np.float32) * shade, image)
    truth[jumper] = CLOTH
    truth[150:, :] = 0
    image[150:, :] = (120, 80, 30)  # the table in front
    image[20:60, 60:100] = (220, 180, 150)
    image = np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)
    parsed = truth.copy()
    parsed[90:] = 0  # the views end here
    parsed[120, 40] = HAIR  # a stray label below: not background, so never overwritten
    parsed[80:90, 22:28] = CLOTH  # a blob on the wall the parse took for clothes: not grown from
    return image, parsed, truth, Face((60.0, 20.0, 100.0, 60.0), 1.0)


def test_clothes_grow_down_to_the_next_colour_edge_and_widen_with_the_body():
    image, labels, truth, face = _photo()
    before = labels.copy()
    ClothesBelow()(Context(labels=labels, faces=[face], _image=image))
    cloth, true = labels == CLOTH, truth == CLOTH
    assert (cloth & true).sum() / true.sum() > 0.95  # down to the table, as the body widens (edges blur)
    assert not (cloth[90:] & ~true[90:]).any()  # not into the wall beside, not past the table's edge
    assert labels[120, 40] == HAIR
    assert (labels[before != 0] == before[before != 0]).all()  # only background changed


def test_clothes_below_does_nothing_without_clothes_or_above_the_face():
    image, labels, _, face = _photo()
    labels[labels == CLOTH] = 0
    unchanged = labels.copy()
    ClothesBelow()(Context(labels=labels, faces=[face], _image=image))
    assert (labels == unchanged).all()
    image, labels, _, _ = _photo()
    below = Face((60.0, 20.0, 100.0, 160.0), 1.0)  # a face box below every cloth pixel
    unchanged = labels.copy()
    ClothesBelow()(Context(labels=labels, faces=[below], _image=image))
    assert (labels == unchanged).all()


def test_clothes_below_is_off_by_default_and_switchable():
    assert "clothes_below" not in [s.name for s in build_steps(PostprocessConfig())]
    assert "clothes_below" in [s.name for s in build_steps(PostprocessConfig(clothes_below=True))]
