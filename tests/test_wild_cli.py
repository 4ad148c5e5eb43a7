"""`python -m ensemble predict` and the notebook API (ensemble.api) on photos of any size."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from data_prep.atomic import write_image
from data_prep.layout import read_label_map, read_rgb
from ensemble.__main__ import main
from ensemble.api import Parser

from ensemble_fixtures import write_manifest


def predict(photos, manifest, out, *flags) -> int:
    return main(["predict", str(photos), "--manifest", str(manifest), "--out", str(out), *flags])


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return write_manifest(tmp_path_factory.mktemp("wild_models"))


def test_predict_writes_masks_overlays_and_faces_at_each_photos_size(manifest, tmp_path, capsys):
    photos, out = tmp_path / "photos", tmp_path / "out"
    rng = np.random.default_rng(0)
    write_image(photos / "wide.png", rng.integers(0, 255, (50, 90, 3), dtype=np.uint8))
    plain = Image.fromarray(rng.integers(0, 255, (40, 64, 3), dtype=np.uint8))
    exif = plain.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display": shown as a 40x64 portrait
    plain.save(photos / "phone.jpg", exif=exif.tobytes())
    assert predict(photos, manifest, out, "--detector", "none", "--save-crops", "--quiet") == 0
    assert read_label_map(out / "masks" / "wide.png").shape == (50, 90)
    assert read_label_map(out / "masks" / "phone.png").shape == (64, 40)  # as displayed
    assert read_rgb(out / "color" / "phone.png").shape == (64, 40, 3)
    overlay = read_rgb(out / "overlay" / "wide.png")
    assert overlay.shape[1] == 90 and overlay.shape[0] >= 50  # the photo, then the legend below it
    assert json.loads((out / "faces.json").read_text()) == {"phone": [], "wide": []}
    # the crop the model saw: kept with --save-crops, outlined in cyan on the overlay (the whole
    # photo padded to a square here: its left and right edges)
    assert read_rgb(out / "crops" / "wide_0.png").shape == (64, 64, 3)
    cyan = (overlay[:50, :, 0] < 40) & (overlay[:50, :, 1] > 200) & (overlay[:50, :, 2] > 200)
    assert cyan[:, 0].mean() > 0.8 and cyan[:, 89].mean() > 0.8
    page = (out / "report.html").read_text()
    assert 'data-image="wide.png"' in page and "crops/wide_0.png" in page
    assert "faces.json" in capsys.readouterr().out
    assert json.loads((out / "provenance.json").read_text())["extra"]["args"]["detector"] == "none"
    # A second run needs --overwrite, and a missing manifest is one error line, nothing replaced.
    assert predict(photos, manifest, out, "--detector", "none") == 2
    assert predict(photos, tmp_path / "none.json", out, "--overwrite") == 2
    assert (out / "faces.json").is_file()


def test_predict_finds_the_astronaut_and_a_grey_wall_has_no_face(manifest, tmp_path, capsys):
    pytest.importorskip("dlib")
    data = pytest.importorskip("skimage.data")
    photos, out = tmp_path / "photos", tmp_path / "out"
    write_image(photos / "astronaut.png", data.astronaut())
    write_image(photos / "wall.png", np.full((80, 120, 3), 128, np.uint8))
    assert predict(photos, manifest, out, "--detector", "dlib", "--quiet") == 0
    # A grey wall: parsed whole and in windows; no view holds a face, so no face and a background map.
    assert "wall.png: no face found (not by the detector, not in the whole photo's parse)" in (
        capsys.readouterr().out
    )
    faces = json.loads((out / "faces.json").read_text())
    assert faces["wall"] == [] and not read_label_map(out / "masks" / "wall.png").any()
    assert faces["astronaut"][0]["found_by"] == "dlib"
    x0, y0, x1, y1 = faces["astronaut"][0]["box"]
    assert abs(x0 - 175) < 25 and abs(x1 - 266) < 25 and abs(y1 - 167) < 40
    labels = read_label_map(out / "masks" / "astronaut.png")
    assert labels.shape == (512, 512)
    ys, xs = np.nonzero(labels)
    # Labels only where the face's views reach (the context view: about four times the face box), not
    # over the whole photo.
    assert xs.size and xs.min() > 20 and xs.max() < 430 and ys.max() < 430


def test_parser_api_returns_labels_at_the_photos_size(manifest):
    parser = Parser.from_manifest(manifest, detector="none", device="cpu")
    image = np.random.default_rng(1).integers(0, 255, (37, 71, 3), dtype=np.uint8)
    labels = parser.parse(image)
    assert labels.shape == (37, 71) and labels.dtype == np.uint8
    assert parser.framing_source == "default"
