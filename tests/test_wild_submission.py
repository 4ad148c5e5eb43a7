"""run_ensemble.py --detector: a folder of photos becomes a submission through the photo parser."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from data_prep.atomic import write_image
from data_prep.layout import read_label_map
from ensemble.api import Parser
from ensemble.submission.csv_codes import read_submission, rle_decode
from run_ensemble import main

from ensemble_fixtures import write_manifest
from faces import face_label_map, palette_image


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return write_manifest(tmp_path_factory.mktemp("photo_models"))


def test_photos_become_a_submission_from_the_photo_parsers_label_maps(manifest, tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "out"
    rng = np.random.default_rng(0)
    scene = np.zeros((120, 200), np.uint8)
    scene[10:110, 60:160] = face_label_map(100, 100, rng)
    write_image(photos / "scene.png", palette_image(scene, rng))
    write_image(photos / "wall.png", np.full((60, 90, 3), 128, np.uint8))
    flags = ["--detector", "parser", "--context", "2", "--workers", "0", "--quiet", "--device", "cpu"]
    assert main(["--manifest", str(manifest), "--images", str(photos), "--out", str(out), *flags]) == 0
    parser = Parser.from_manifest(manifest, detector="parser", context=2.0, device="cpu")
    rows = read_submission(out / "submission.csv")
    assert len(rows) == 2 * 19
    for position, stem in enumerate(["scene", "wall"]):
        mask = read_label_map(out / "masks" / f"{stem}.png")
        expected = parser.parse(photos / f"{stem}.png")
        assert np.array_equal(mask, expected)  # the photo parser's map, at the photo's size
        small = cv2.resize(mask, (256, 256), interpolation=cv2.INTER_NEAREST)
        for c in range(19):
            assert np.array_equal(rle_decode(rows[position * 19 + c][3]), small == c)
    report = json.loads((out / "report.json").read_text())
    photos_report = report["photos"]
    assert photos_report["settings"]["detector"] == "parser" and photos_report["settings"]["context"] == 2.0
    assert "wall.png" in photos_report["no_face"]
    assert all(f in ("parser", "whole_photo") for faces in photos_report["faces"].values() for f in faces)
    assert "## Photos" in (out / "report.md").read_text()
