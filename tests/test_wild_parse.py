"""Aligned parsing of faces in the wild (ensemble.faces.photo_parser): scores, paste-back, no face, face steps."""

from __future__ import annotations

import cv2
import numpy as np

from configs import CLASS_ID
from configs.schema import PostprocessConfig
from data_prep.framing import FACE_CORE, face_box, landmarks
from ensemble.core.inference import Ensemble
from ensemble.faces.photo_parser import WildParser
from ensemble.postprocess.face_regions import Face
from ensemble.postprocess.face_steps import ClipToFace, EyeRepair, GlassesToSkin
from ensemble.postprocess.registry import Context, build_steps

from ensemble_fixtures import PaletteModel, member
from faces import face_label_map, palette_image
from wild_scenes import CentredPaletteModel, drawn_framing, make_scene, mean_f1


def _wild(model, detector, steps=(), **kw) -> WildParser:
    return WildParser(Ensemble([member(model)]), list(steps), drawn_framing(), detector=detector, **kw)


def test_aligned_parse_of_a_wild_face_scores_like_the_precropped_face():
    # A parser that only sees faces framed like its training crops (CentredPaletteModel).
    model = CentredPaletteModel()
    x, y, s = 190, 120, 110
    image, labels, boxes = make_scene(260, 320, [(x, y, s)], seed=5)
    crop_image, crop_labels = image[y : y + s, x : x + s], labels[y : y + s, x : x + s]
    precropped = mean_f1(_wild(model, "none")(crop_image).labels, crop_labels)
    detected = lambda img: [Face(tuple(map(float, boxes[0])), 1.0)]  # noqa: E731  (a perfect detector)
    aligned = _wild(model, detected)(image).labels
    squashed = _wild(model, "none")(image).labels  # no detection: the whole photo shrunk
    assert precropped > 0.8
    assert mean_f1(aligned, labels) >= 0.9 * precropped
    assert mean_f1(squashed, labels) < 0.75 * precropped  # the test tells framings apart


def test_second_pass_aligns_a_rolled_face():
    model = CentredPaletteModel()
    rng = np.random.default_rng(2)
    face = face_label_map(120, 120, rng)
    rot = cv2.getRotationMatrix2D((60, 60), 25, 1.0)
    tilted = cv2.warpAffine(face, rot, (120, 120), flags=cv2.INTER_NEAREST)
    labels = np.zeros((200, 260), np.uint8)
    labels[40:160, 100:220] = tilted
    image = palette_image(labels, rng)
    one = _wild(model, "parser", second_pass=False)(image)
    two = _wild(model, "parser")(image)
    assert mean_f1(two.labels, labels) > 0.8
    assert mean_f1(two.labels, labels) >= mean_f1(one.labels, labels) - 0.01


def test_paste_back_puts_labels_only_inside_the_face_region():
    image, labels, boxes = make_scene(240, 360, [(220, 20, 100)], seed=7)
    result = _wild(PaletteModel(), "parser")(image)
    ys, xs = np.nonzero(result.labels)
    # Everything labelled lies within the drawn face's square (hair/cloth reach its edges; the context
    # view, at half the tight crop's resolution, blurs its edge by a pixel or two) ...
    assert xs.min() >= 220 - 5 and xs.max() < 320 + 5 and ys.min() >= 20 - 5 and ys.max() < 120 + 5
    # ... and the face's own pixels came back where they were drawn (cloth reaches past the crop).
    face = np.isin(labels, (*FACE_CORE, CLASS_ID["hair"]))
    assert (result.labels[face] == labels[face]).mean() > 0.9


def test_a_photo_without_a_face_gives_a_message_and_all_background():
    image = np.random.default_rng(0).integers(0, 40, (90, 130, 3), dtype=np.uint8)
    result = _wild(PaletteModel(), "parser")(image)
    assert result.faces == [] and "no face" in result.message
    assert result.labels.shape == (90, 130) and not result.labels.any()


def test_overlapping_crops_keep_the_stronger_class():
    image, labels, _ = make_scene(160, 240, [(20, 30, 100), (110, 30, 100)], seed=11)
    result = _wild(PaletteModel(), "parser")(image)
    assert len(result.faces) == 2
    face = np.isin(labels, (*FACE_CORE, CLASS_ID["hair"]))
    assert (result.labels[face] == labels[face]).mean() > 0.9


# --- detection-based post-processing (ensemble.postprocess.face_steps) ------------------------------------


def _face_map() -> tuple[np.ndarray, Face]:
    labels = face_label_map(64, 64, np.random.default_rng(0))
    return labels, Face(tuple(map(float, face_box(labels))), 1.0, landmarks(labels))


def test_face_clip_clears_parts_hair_and_skin_outside_their_scaled_boxes():
    labels, face = _face_map()
    labels = labels.copy()
    labels[0:2, 0:2] = CLASS_ID["nose"]  # a stray part far outside the box
    labels[62:64, 0:2] = CLASS_ID["skin"]
    hair_before = (labels == CLASS_ID["hair"]).sum()
    ctx = Context(labels=labels, faces=[face])
    ClipToFace()(ctx)
    assert (labels[0:2, 0:2] == 0).all() and (labels[62:64, 0:2] == 0).all()
    assert (labels == CLASS_ID["l_eye"]).any()  # parts inside the box stay
    assert 0 < (labels == CLASS_ID["hair"]).sum() <= hair_before
    assert (labels == CLASS_ID["cloth"]).any()  # cloth is not a face part: never clipped


def test_glasses_become_skin():
    labels = np.full((4, 4), CLASS_ID["eye_g"], np.uint8)
    GlassesToSkin()(Context(labels=labels))
    assert (labels == CLASS_ID["skin"]).all()


def test_eye_repair_draws_a_missing_eye_and_drops_a_stray_one():
    labels, face = _face_map()
    truth = labels.copy()
    labels = labels.copy()
    labels[labels == CLASS_ID["l_eye"]] = CLASS_ID["skin"]  # the model missed the left eye
    assert labels[40, 26] == CLASS_ID["skin"]
    labels[40, 26] = CLASS_ID["r_eye"]  # and saw a stray right eye on the cheek
    marks = {k: v for k, v in face.landmarks.items() if k != "l_eye"}  # no landmark for it either
    EyeRepair()(Context(labels=labels, faces=[Face(face.box, 1.0, marks)]))
    assert labels[40, 26] == CLASS_ID["skin"]
    drawn, true = labels == CLASS_ID["l_eye"], truth == CLASS_ID["l_eye"]
    assert 2 * (drawn & true).sum() / (drawn.sum() + true.sum()) > 0.6  # mirrored across nose-mouth


def test_face_steps_are_registered_switchable_and_off_by_default():
    assert not any(
        s.name in ("face_clip", "glasses_to_skin", "eye_repair") for s in build_steps(PostprocessConfig())
    )
    on = PostprocessConfig(
        face_clip=True, glasses_to_skin=True, eye_repair=True, face_clip_scales=(0.8, 1.5, 1.2)
    )
    steps = [s for s in build_steps(on) if s.name in ("face_clip", "glasses_to_skin", "eye_repair")]
    assert [s.name for s in steps] == ["face_clip", "glasses_to_skin", "eye_repair"]
    assert steps[0].label == "face_clip(parts=0.8, hair=1.5, skin=1.2)"


def test_face_steps_without_a_detection_use_the_label_maps_face():
    labels, _ = _face_map()
    labels = labels.copy()
    labels[0:2, 0:2] = CLASS_ID["nose"]
    ClipToFace()(Context(labels=labels))  # faces=None: the face-core region of the labels
    assert (labels[0:2, 0:2] == 0).all() and (labels == CLASS_ID["nose"]).sum() > 10
