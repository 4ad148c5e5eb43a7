"""Post-processing steps, each alone: what each one changes and what it must leave alone."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest
import torch

from configs import CLASS_ID
from configs.schema import PostprocessConfig
from data_prep.atomic import write_image
from ensemble.postprocess.dense_crf import DenseCRF
from ensemble.postprocess.fill_holes import FillHoles
from ensemble.postprocess.grabcut import GrabCut
from ensemble.postprocess.registry import PostprocessError, argmax_labels, build_steps, postprocess
from ensemble.postprocess.small_components import RemoveSmall
from ensemble.postprocess.smoothing import GaussianSmooth

SKIN, NOSE, HAIR, BG = CLASS_ID["skin"], CLASS_ID["nose"], CLASS_ID["hair"], 0
L_EYE, U_LIP, L_LIP, MOUTH = CLASS_ID["l_eye"], CLASS_ID["u_lip"], CLASS_ID["l_lip"], CLASS_ID["mouth"]


def probs_for(labels: np.ndarray, second: int = SKIN, confidence: float = 0.7) -> np.ndarray:
    """Probabilities whose argmax is labels, with `second` as runner-up everywhere."""
    probs = np.full((19,) + labels.shape, 0.01, np.float32)
    np.put_along_axis(probs, labels[None].astype(np.int64), confidence, axis=0)
    runner = np.where(labels == second, BG, second)
    np.put_along_axis(probs, runner[None].astype(np.int64), 0.2, axis=0)
    return probs


def run_step(step, labels, probs=None, image_path=None):
    probs = probs if probs is not None else probs_for(labels)
    assert (argmax_labels(probs) == labels).all()
    return postprocess(probs, [step], image_path)


def test_remove_small_drops_a_stray_nose_blob_and_keeps_the_nose():
    labels = np.full((48, 48), SKIN, np.uint8)
    labels[15:30, 20:28] = NOSE  # the nose, 120 px
    labels[40:43, 5:8] = NOSE  # a stray 9 px blob far away
    out = run_step(RemoveSmall(0.2), labels)
    assert (out[15:30, 20:28] == NOSE).all()
    assert (out[40:43, 5:8] == SKIN).all()  # relabelled with the runner-up class there
    assert (out == NOSE).sum() == 120


def test_remove_small_keeps_pieces_of_similar_size():
    labels = np.full((48, 48), SKIN, np.uint8)
    labels[30:34, 10:20] = U_LIP  # an upper lip cut in two by the mouth
    labels[30:34, 24:33] = U_LIP
    out = run_step(RemoveSmall(0.2), labels)
    assert (out == U_LIP).sum() == (labels == U_LIP).sum()


def test_fill_holes_fills_background_hole_in_hair_and_speck_inside_nose():
    labels = np.full((64, 64), BG, np.uint8)
    labels[5:30, 5:60] = HAIR
    labels[12:15, 20:23] = BG  # a hole in the hair
    labels[35:60, 20:44] = SKIN
    labels[40:55, 28:36] = NOSE
    labels[46:48, 31:33] = SKIN  # a speck of skin inside the nose
    out = run_step(FillHoles(), labels)
    assert (out[12:15, 20:23] == HAIR).all()
    assert (out[46:48, 31:33] == NOSE).all()
    changed = out != labels
    assert changed.sum() == 9 + 4  # nothing else moved


def test_fill_holes_leaves_parts_that_belong_inside_others():
    labels = np.full((64, 64), BG, np.uint8)
    labels[10:54, 10:54] = SKIN
    labels[20:25, 15:25] = L_EYE  # an eye inside the skin: not a hole
    labels[40:43, 25:40] = U_LIP
    labels[43:45, 25:40] = MOUTH  # a mouth between the lips
    labels[45:48, 25:40] = L_LIP
    labels[0:10, 0:64] = HAIR
    labels[0:4, 30:34] = BG  # background touching the border: outside, not a hole
    out = run_step(FillHoles(), labels)
    np.testing.assert_array_equal(out, labels)


def test_gaussian_smoothing_removes_a_one_pixel_speckle():
    labels = np.full((32, 32), SKIN, np.uint8)
    probs = probs_for(labels, second=NOSE, confidence=0.6)
    probs[NOSE, 16, 16], probs[SKIN, 16, 16] = 0.6, 0.2  # one pixel flips to nose
    assert argmax_labels(probs)[16, 16] == NOSE
    smoothed = GaussianSmooth(1.0).apply(torch.from_numpy(probs))
    assert (argmax_labels(smoothed) == SKIN).all()
    np.testing.assert_allclose(smoothed.sum(0).numpy(), probs.sum(0), atol=1e-5)  # mass kept
    assert argmax_labels(probs)[16, 16] == NOSE  # the input is not modified


def test_gaussian_smoothing_matches_opencv_away_from_the_border():
    probs = np.random.default_rng(0).random((19, 40, 40)).astype(np.float32)
    ours = GaussianSmooth(1.5).apply(torch.from_numpy(probs)).numpy()
    theirs = np.stack([cv2.GaussianBlur(p, (13, 13), 1.5, borderType=cv2.BORDER_REFLECT_101) for p in probs])
    np.testing.assert_allclose(ours, theirs, atol=2e-3)


def test_grabcut_snaps_an_uncertain_face_boundary_to_the_image(tmp_path):
    rng = np.random.default_rng(0)
    image = np.full((64, 64, 3), 40, np.uint8)
    cv2.circle(image, (32, 32), 18, (220, 180, 150), -1)
    image = np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
    write_image(tmp_path / "face.png", image)
    r = np.hypot(*(np.mgrid[:64, :64] - 32))
    face = np.where(r <= 12, 0.99, np.where(r <= 26, 0.6, 0.01)).astype(np.float32)
    probs = np.zeros((19, 64, 64), np.float32)
    probs[SKIN], probs[BG] = face, 1 - face  # too wide a face, unsure between r 12 and 26
    truth = r <= 18

    def iou(a, b):
        return (a & b).sum() / (a | b).sum()

    before = argmax_labels(probs) > 0
    after = run_step(GrabCut(), argmax_labels(probs), probs, tmp_path / "face.png") > 0
    assert iou(before, truth) < 0.6
    assert iou(after, truth) > 0.95


def test_crf_without_its_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "pydensecrf", None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "pydensecrf.densecrf", None)
    with pytest.raises(PostprocessError, match=r"pip install '\.\[crf\]'"):
        DenseCRF()
    with pytest.raises(PostprocessError, match="pydensecrf2"):
        build_steps(PostprocessConfig(crf=True))


def test_each_step_is_switched_by_its_own_config_field():
    off = PostprocessConfig(smooth="none", remove_small=False, fill_holes=False)
    assert build_steps(off) == []
    for field, name in (
        ({"smooth": "gaussian"}, "gaussian"),
        ({"remove_small": True}, "remove_small"),
        ({"fill_holes": True}, "fill_holes"),
        ({"grabcut": True}, "grabcut"),
    ):
        steps = build_steps(off.model_copy(update=field))
        assert [s.name for s in steps] == [name]
    assert [s.name for s in build_steps(PostprocessConfig())] == ["gaussian", "remove_small", "fill_holes"]
    # the run order of STEPS: tests/test_postprocess_registry.py


def test_postprocess_reports_labels_after_every_step():
    labels = np.full((48, 48), SKIN, np.uint8)
    labels[15:30, 20:28] = NOSE
    labels[40:43, 5:8] = NOSE
    seen = []
    out = postprocess(
        probs_for(labels),
        build_steps(PostprocessConfig(sigma=0.5)),
        on_step=lambda step, lab: seen.append((step.name, lab.copy())),
    )
    assert [n for n, _ in seen] == ["gaussian", "remove_small", "fill_holes"]
    assert (seen[0][1][40:43, 5:8] == NOSE).any()  # smoothing alone keeps the blob
    assert (seen[1][1][40:43, 5:8] == SKIN).all()
    np.testing.assert_array_equal(seen[-1][1], out)
