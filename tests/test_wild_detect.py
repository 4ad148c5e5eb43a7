"""Face detectors (ensemble.faces.detect): parser-only mode on wild scenes, dlib on a real photo."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from configs.optional import installed
from ensemble.core.inference import Ensemble
from ensemble.faces.detect import DetectorError, DetectorUnion, DlibDetector, ParserDetector, build_detector
from ensemble.faces.photo_parser import WildParser
from ensemble.postprocess.face_regions import Face, centre_first

from ensemble_fixtures import PaletteModel, member
from wild_scenes import drawn_framing, iou, make_scene


def _parser(detector="parser", **kw) -> WildParser:
    return WildParser(Ensemble([member(PaletteModel())]), [], drawn_framing(), detector=detector, **kw)


def test_parser_mode_finds_each_face_box_in_a_wild_scene():
    placements = [(20, 30, 90), (230, 60, 130), (150, 190, 70)]
    image, _, boxes = make_scene(300, 400, placements, seed=3)
    parser = _parser()
    found = parser.detect(image)  # the shrunk whole-photo parse alone
    assert len(found) == 3 and all(max(iou(b, f.box) for f in found) >= 0.5 for b in boxes)
    result = parser(image)  # boxes refined by each face's aligned parse
    assert len(result.faces) == 3
    for box in boxes:
        assert max(iou(box, f.box) for f in result.faces) >= 0.5
    for face in result.faces:  # the first parse gave each face its part centroids
        assert {"l_eye", "r_eye", "nose", "mouth"} <= set(face.landmarks)
        assert face.landmarks["r_eye"][0] < face.landmarks["l_eye"][0]


def test_faces_come_centre_first():
    faces = [Face((0, 0, 10, 10), 1.0), Face((45, 45, 55, 55), 0.5), Face((80, 0, 100, 20), 0.9)]
    assert [f.score for f in centre_first(faces, 100, 100)] == [0.5, 0.9, 1.0]
    # The wild parser orders the scene's faces the same way.
    image, _, boxes = make_scene(200, 300, [(10, 10, 60), (120, 70, 70)], seed=1)
    first = _parser()(image).faces[0]
    assert iou(first.box, boxes[1]) >= 0.5
    # The seed's rule (one face per photo): only the face nearest the centre is parsed.
    only = _parser(max_faces=1)(image)
    assert len(only.faces) == 1 and iou(only.faces[0].box, boxes[1]) >= 0.5
    assert not only.labels[:, :70].any()  # the other face (x 10..70) stays background


def test_parser_mode_on_a_photo_without_a_face_finds_none():
    image = np.full((120, 160, 3), 30, np.uint8)  # PaletteModel's background colour only
    assert ParserDetector(_parser("none").parse_crops, 64)(image) == []


def test_parser_windows_step_down_to_a_small_faces_training_size_within_the_view_cap():
    detector = ParserDetector(lambda crops: [], 64, framing={"box": [0.5, 0.5, 0.5, 0.6]}, max_views=1000)
    sides = sorted({round(side) for *_, side in detector.windows(400, 600)}, reverse=True)
    assert sides[0] == 600 and sides[-1] >= 64 and sides[-1] * 0.7 < 64  # 32 px face / 0.5 of the crop
    assert all(b / a == pytest.approx(0.7, abs=0.01) for a, b in zip(sides, sides[1:]))
    capped = ParserDetector(lambda crops: [], 64, max_views=20).windows(4000, 4000)
    assert 1 < len(capped) <= 20  # a large photo: the levels stop before the cap


def test_a_small_face_the_whole_view_misses_is_found_in_the_finer_windows_and_never_blank():
    image, labels, boxes = make_scene(560, 640, [(300, 250, 70)], seed=5)
    parser = _parser("none")
    whole_only = ParserDetector(parser.scout_crops, 64, levels=(1.0,), framing=parser.framing)
    assert whole_only(image) == []  # 70 px of 640: too small in the whole view
    found = ParserDetector(parser.scout_crops, 64, framing=parser.framing)(image)
    assert len(found) == 1 and iou(found[0].box, boxes[0]) >= 0.5
    # The photo parser's fallback when its detector finds nothing uses the same windows.
    missed = _parser(lambda photo: [])(image)
    assert [f.found_by for f in missed.faces] == ["whole_photo"] and iou(missed.faces[0].box, boxes[0]) >= 0.5
    assert (missed.labels[labels > 0] == labels[labels > 0]).mean() > 0.8


def test_the_fallback_parses_the_windows_once_whoever_found_no_face():
    image = np.full((120, 160, 3), 30, np.uint8)  # no face anywhere
    for detector in ("parser", lambda photo: []):
        parser = _parser(detector)
        calls, real = [], parser._scout.predict
        parser._scout.predict = lambda crops, **kw: calls.append(len(crops)) or real(crops, **kw)
        result = parser(image)
        assert result.faces == [] and "no face found" in result.message
        # the parser detector's windows are the fallback's: parsed by one of them, not both
        assert calls == [len(ParserDetector(None, 64, framing=parser.framing).windows(120, 160))]


def test_a_union_keeps_the_first_detectors_faces_and_adds_the_others_new_ones():
    first = [Face((10.0, 10.0, 50.0, 50.0), 0.9, {"nose": (30.0, 30.0)}, "mtcnn")]
    second = [
        Face((12.0, 8.0, 52.0, 48.0), 0.99, found_by="parser"),
        Face((100.0, 10.0, 140.0, 50.0), 0.6, found_by="parser"),
    ]
    faces = DetectorUnion([lambda image: first, lambda image: second])(np.zeros((60, 160, 3), np.uint8))
    assert [f.found_by for f in faces] == ["mtcnn", "parser"] and faces[0].landmarks  # the overlap: MTCNN's
    assert faces[1].box == (100.0, 10.0, 140.0, 50.0)
    union = build_detector("dlib+parser", lambda crops: [], 64) if installed("dlib") else None
    assert union is None or (isinstance(union, DetectorUnion) and union.name == "dlib+parser")
    for bad in ("parser+parser", "auto+parser", "mtcnn+none"):
        with pytest.raises(DetectorError, match="join distinct detectors"):
            build_detector(bad, lambda crops: [], 64)


def test_dlib_missing_says_how_to_install_it(monkeypatch, tmp_path):
    real_import = builtins.__import__

    def no_dlib(name, *args, **kwargs):
        if name == "dlib":
            raise ImportError("no dlib")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dlib)
    monkeypatch.setenv("FACEPARSE_MTCNN", str(tmp_path / "missing.safetensors"))  # no MTCNN weights either
    with pytest.raises(DetectorError, match=r"pip install '\.\[detect\]'"):
        build_detector("dlib", lambda crop: crop, 64)
    assert isinstance(build_detector("auto", lambda crop: crop, 64), ParserDetector)


def test_dlib_finds_the_astronauts_face_where_it_is():
    pytest.importorskip("dlib")
    data = pytest.importorskip("skimage.data")
    image = data.astronaut()
    faces = centre_first(DlibDetector()(image), *image.shape[:2])
    best = max(faces, key=lambda f: f.score)
    # dlib's own box is (175, 76)-(266, 167) (exclusive ends); ours reaches up to the hairline.
    x0, y0, x1, y1 = best.box
    assert (x0, x1, y1) == (175, 266, 167) and 55 <= y0 <= 76
    assert best.score > 1.0
