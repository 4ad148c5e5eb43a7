"""Real photos (ensemble.faces): never a blank map, labels past the crop, overlapping faces, landmark
alignment, and MTCNN on two public sample photos."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
import torch

from configs import CLASS_ID
from data_prep.framing import FACE_CORE, LANDMARK_CLASSES, landmarks
from ensemble.core.inference import Ensemble
from ensemble.faces.align import apply, invert, landmark_transform, warp_back, warp_crop
from ensemble.faces.paste import FaceParse, composite, zoom_out
from ensemble.faces.photo_parser import WildParser
from ensemble.postprocess.face_regions import Face

from ensemble_fixtures import PaletteModel, member
from faces import face_label_map, palette_image
from wild_scenes import drawn_framing, long_haired_scene, make_scene, mean_f1

HAIR = CLASS_ID["hair"]


def _wild(model, detector, **kw) -> WildParser:
    return WildParser(Ensemble([member(model)]), [], drawn_framing(), detector=detector, **kw)


def test_a_close_up_no_detector_finds_still_gets_a_parse():
    rng = np.random.default_rng(3)
    labels = face_label_map(240, 240, rng)[30:190, 40:200]  # the face fills the frame
    image = palette_image(labels, rng)
    result = _wild(PaletteModel(), lambda img: [])(image)  # a detector that finds nothing
    assert result.labels.any() and "parsed the whole photo" in result.message
    assert [f.found_by for f in result.faces] == ["whole_photo"]
    assert mean_f1(result.labels, labels) > 0.7


def test_long_hair_is_labelled_past_the_face_crop():
    image, labels, box = long_haired_scene()
    detector = lambda img: [Face(tuple(map(float, box)), 1.0)]  # noqa: E731  (a perfect detector)
    tight = _wild(PaletteModel(), detector, context=1.0)
    crop_m = tight.align(Face(tuple(map(float, box)), 1.0))
    corners = apply(invert(crop_m), np.array([[0, 0], [tight.size, tight.size]]))
    assert corners[1, 1] < labels.shape[0] - 100  # the tight crop ends well above the hair's end
    below = np.zeros(labels.shape, bool)
    below[int(np.ceil(corners[1, 1])) + 2 :] = True  # rows under the tight crop
    hair_below = (labels == HAIR) & below
    assert hair_below.sum() > 2000
    wide = zoom_out(crop_m, tight.size, 2.0)
    in_view = warp_back(np.ones((1, tight.size, tight.size), np.float32), wide, *labels.shape)
    (x0, y0, x1, y1), _, covered = in_view
    context_view = np.zeros(labels.shape, bool)
    context_view[y0:y1, x0:x1] = covered
    without = tight(image).labels
    with_context = _wild(PaletteModel(), detector, context=2.0)(image).labels
    assert not without[below].any()  # the tight crop alone stops at its edge
    # Past the crop, as far as the context view reaches (twice the crop's side), the hair is hair.
    assert (hair_below & context_view).sum() > 2000
    assert (with_context[hair_below & context_view] == HAIR).mean() > 0.9
    face = np.isin(labels, FACE_CORE)
    assert (with_context[face] == labels[face]).mean() > 0.9  # the face itself from the tight crop


class HairBeyondModel(PaletteModel):
    """A parser of centred crops that, beyond a centred disc, calls everything hair, more confidently
    than it names the parts inside (a real parser's confident hair around the face it is framed on)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = super().forward(x) / 25
        h, w = x.shape[-2:]
        yy, xx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
        outside = ((yy - h / 2) ** 2 + (xx - w / 2) ** 2) > (0.4 * min(h, w)) ** 2
        logits[:, HAIR][:, outside] = logits.amax(1)[:, outside] + 8
        return logits


def test_overlapping_faces_keep_their_own_labels():
    # Each face's crop reaches into its neighbour, where this parser says hair more confidently than the
    # neighbour's own crop names its parts: a per-class maximum, or the last crop pasted, would hand
    # one face's eye or skin to the other's hair.
    image, labels, boxes = make_scene(160, 230, [(20, 30, 110), (95, 30, 110)], seed=11)
    detector = lambda img: [Face(tuple(map(float, b)), 1.0) for b in boxes]  # noqa: E731
    result = _wild(HairBeyondModel(), detector, context=1.0, second_pass=False)(image)
    for x in (20, 95):
        own = np.zeros(labels.shape, bool)
        own[30:140, x + 25 : x + 85] = True  # each face's middle, overlap included
        face = own & np.isin(labels, FACE_CORE)
        assert (result.labels[face] == labels[face]).mean() > 0.9


def test_ownership_goes_to_the_face_that_parses_the_pixel_as_its_own():
    size, h, w = 32, 40, 80
    m_a = np.array([[1.0, 0, 0], [0, 1.0, 4]])  # face A's crop covers x 0..32
    m_b = np.array([[1.0, 0, -20], [0, 1.0, 4]])  # face B's covers x 20..52
    a = np.zeros((19, size, size), np.float32)
    a[CLASS_ID["l_eye"]] = 0.9
    a[0] = 0.1
    b = np.zeros((19, size, size), np.float32)
    b[0, :, :12] = 0.95  # x 20..32 of the photo: B says background, confidently
    b[HAIR, :, :12] = 0.05
    b[CLASS_ID["nose"], :, 12:] = 1.0
    full = composite([FaceParse(a, m_a), FaceParse(b, m_b)], h, w).argmax(0)
    assert (full[2:26, 22:30] == CLASS_ID["l_eye"]).all()  # A's eye, where B's background is stronger
    assert (full[2:26, 34:50] == CLASS_ID["nose"]).all()
    assert (full[:, 60:] == 0).all()


def test_landmark_alignment_round_trips_within_a_pixel():
    # A drawn face rotated, scaled and moved into a photo: aligned on its measured landmarks, its crop
    # puts the parts on the framing's landmarks, and the crop's parts map back onto the photo's.
    rng = np.random.default_rng(6)
    framing = drawn_framing()
    size = 64
    face = face_label_map(size, size, rng)
    rot = cv2.getRotationMatrix2D((size / 2, size / 2), 23, 2.2)
    rot[:, 2] += (150, 90)
    photo = cv2.warpAffine(face, rot, (360, 300), flags=cv2.INTER_NEAREST)
    marks = landmarks(photo)
    m = landmark_transform(marks, framing, 256)
    crop_marks = {}
    for name, classes in LANDMARK_CLASSES.items():  # centroids of each part's warped mask
        mask = warp_crop(np.dstack([np.isin(photo, classes).astype(np.float32)] * 3), m, 256)[..., 0]
        ys, xs = np.mgrid[:256, :256] + 0.5
        crop_marks[name] = ((xs * mask).sum() / mask.sum(), (ys * mask).sum() / mask.sum())
    for name in ("l_eye", "r_eye", "nose", "mouth"):
        back = apply(invert(m), np.array([crop_marks[name]]))[0]
        assert np.abs(back - marks[name]).max() < 1.0, name
    # ... and on the framing itself (the drawn faces vary, so up to a few crop pixels off)
    target = np.array([framing["landmarks"][n] for n in ("l_eye", "r_eye")]) * 256
    assert np.abs(np.array([crop_marks["l_eye"], crop_marks["r_eye"]]) - target).max() < 8


def test_context_view_shares_the_crops_centre_at_twice_its_side():
    m = np.array([[0.8, -0.3, 12.0], [0.3, 0.8, -7.0]])
    wide = zoom_out(m, 64, 2.0)
    centre = apply(invert(m), np.array([[32, 32]]))
    assert np.allclose(apply(invert(wide), np.array([[32, 32]])), centre)
    assert np.isclose(np.linalg.det(invert(wide)[:, :2]), 4 * np.linalg.det(invert(m)[:, :2]))


# --- MTCNN on public sample photos -------------------------------------------------------------------


def _mtcnn():
    from ensemble.faces.mtcnn import MtcnnDetector, weights_available, weights_path

    if not weights_available():
        if os.environ.get("FACEPARSE_REQUIRE_WEIGHTS"):
            pytest.fail(f"MTCNN weights missing at {weights_path()} and FACEPARSE_REQUIRE_WEIGHTS is set")
        pytest.skip(f"MTCNN weights not fetched ({weights_path()}): run `make weights`")
    return MtcnnDetector()


def test_mtcnn_finds_the_astronauts_face_with_its_landmarks():
    data = pytest.importorskip("skimage.data")
    faces = _mtcnn()(data.astronaut())
    assert len(faces) == 1 and faces[0].found_by == "mtcnn" and faces[0].score > 0.95
    x0, y0, x1, y1 = faces[0].box
    # The face (brows to chin) spans about x 180..268, y 75..170 (dlib: (175, 76)-(266, 167)).
    assert 165 < x0 < 200 and 250 < x1 < 285 and 40 < y0 < 100 and 150 < y1 < 190
    r_eye, l_eye = faces[0].landmarks["r_eye"], faces[0].landmarks["l_eye"]
    assert r_eye[0] < l_eye[0] and abs(r_eye[1] - 100) < 10 and abs(l_eye[1] - 102) < 10


def test_mtcnn_finds_a_face_in_deep_shadow_on_its_lifted_copy():
    # astronaut() at 5% of its brightness: neither the photo nor its CLAHE copy shows MTCNN the face;
    # the gamma-lifted copy does (the wild scenes' misses were mostly dark faces).
    data = pytest.importorskip("skimage.data")
    dark = (data.astronaut().astype(np.float32) * 0.05).astype(np.uint8)
    detector = _mtcnn()
    detector.lift = False
    assert detector(dark) == []
    detector.lift = True
    faces = detector(dark)
    assert len(faces) == 1
    cx, cy = faces[0].centre
    assert abs(cx - 224) < 25 and abs(cy - 122) < 30


def test_mtcnn_finds_grace_hoppers_face():
    cbook = pytest.importorskip("matplotlib.cbook")
    image = pytest.importorskip("matplotlib.image").imread(cbook.get_sample_data("grace_hopper.jpg"))
    faces = _mtcnn()(np.ascontiguousarray(image[..., :3]))
    assert len(faces) == 1 and faces[0].score > 0.95
    cx, cy = faces[0].centre
    assert abs(cx - 260) < 25 and abs(cy - 230) < 35  # her face, under the cap (512 x 600 photo)
