"""Face detectors (ensemble.faces.detect): parser-only mode on wild scenes, dlib on a real photo."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from ensemble.core.inference import Ensemble
from ensemble.faces.detect import DetectorError, DlibDetector, ParserDetector, build_detector
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
    assert ParserDetector(lambda crop: _parser("none").parse_crop(crop), 64)(image) == []


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
