"""run_ensemble.py's outputs are this run's only: a fresh folder or --overwrite, photos in their
displayed orientation, huge images shrunk with a message, quoted CSV fields, umask permissions."""

from __future__ import annotations

import csv
import io
import json
import os

import pytest
from PIL import Image

from data_prep.layout import read_label_map
from ensemble.submission.csv_codes import read_ids
from run_ensemble import main

from ensemble_fixtures import make_image_folder, write_manifest

FAST = ["--workers", "0", "--quiet", "--device", "cpu", "--tta", "none", "--no-postprocess"]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return write_manifest(tmp_path_factory.mktemp("models"))


def run(manifest, images, out, *extra):
    return main(["--manifest", str(manifest), "--images", str(images), "--out", str(out), *FAST, *extra])


def test_a_used_output_folder_is_refused_and_overwrite_replaces_only_our_outputs(manifest, tmp_path, capsys):
    first, second, gt = tmp_path / "first", tmp_path / "second", tmp_path / "gt"
    make_image_folder(first, [(64, 64), (48, 64)], stems=["a", "b"], masks=gt)
    make_image_folder(second, [(64, 64)], stems=["c"])
    out = tmp_path / "out"
    assert run(manifest, first, out, "--gt", str(gt), "--viz", "2") == 0
    (out / "notes.md").write_text("mine")
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))

    assert run(manifest, second, out) == 2
    assert "output folder is not empty" in capsys.readouterr().err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == before  # untouched

    assert run(manifest, second, out, "--overwrite", "--viz", "1") == 0
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["c.png"]  # a.png, b.png gone
    assert sorted(p.name for p in (out / "viz").iterdir()) == ["c.png"]
    assert not (out / "confusion.png").exists()  # the first run's; this one had no ground truth
    assert (out / "notes.md").read_text() == "mine"  # not ours: kept
    assert read_ids(out / "submission_ids.csv") == ["c.png"]
    assert json.loads((out / "report.json").read_text())["images"] == 1


def test_overwrite_with_bad_input_leaves_the_previous_run_intact(manifest, tmp_path):
    images, out = tmp_path / "images", tmp_path / "out"
    make_image_folder(images, [(64, 64)], stems=["a"])
    assert run(manifest, images, out) == 0
    assert run(manifest, tmp_path / "missing", out, "--overwrite") == 2
    assert (out / "masks" / "a.png").is_file() and (out / "submission.csv").is_file()


def test_exif_orientation_is_honoured_masks_in_the_displayed_layout(manifest, tmp_path):
    images, out = tmp_path / "images", tmp_path / "out"
    make_image_folder(tmp_path / "plain", [(40, 64)], stems=["phone"])  # stored landscape 64x40
    images.mkdir()
    photo = Image.open(tmp_path / "plain" / "phone.png").convert("RGB")
    exif = photo.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display": shown as a 40x64 portrait
    photo.save(images / "phone.jpg", exif=exif.tobytes())
    assert run(manifest, images, out) == 0
    assert read_label_map(out / "masks" / "phone.png").shape == (64, 40)


def test_huge_images_are_predicted_shrunk_with_a_message_and_masks_at_full_size(manifest, tmp_path, capsys):
    images, out = tmp_path / "images", tmp_path / "out"
    make_image_folder(images, [(128, 96), (32, 32)], stems=["big", "small"])
    config = tmp_path / "run.yaml"
    config.write_text("ensemble:\n  max_pixels: 4096\n")  # 128x96 = 12288 pixels is above
    assert run(manifest, images, out, "--config", str(config)) == 0
    said = capsys.readouterr().out
    assert "big.png: 96x128 is above ensemble.max_pixels (4096 pixels): predicted at 55x73" in said
    assert "small.png" not in said
    assert read_label_map(out / "masks" / "big.png").shape == (128, 96)  # scaled back
    report = json.loads((out / "report.json").read_text())
    assert [(d["size"], d["predicted_at"]) for d in report["downscaled"]] == [([128, 96], [73, 55])]


def test_image_names_with_commas_and_quotes_are_quoted_in_submission_ids(manifest, tmp_path):
    images, out = tmp_path / "images", tmp_path / "out"
    names = ["0,a,b", 'say "hi"']
    make_image_folder(images, [(32, 32), (32, 32)], stems=names)
    assert run(manifest, images, out) == 0
    rows = list(csv.reader(io.StringIO((out / "submission_ids.csv").read_text())))
    assert rows == [["position", "image"], ["0", "0,a,b.png"], ["1", 'say "hi".png']]
    assert read_ids(out / "submission_ids.csv") == ["0,a,b.png", 'say "hi".png']


def test_outputs_get_the_usual_umask_permissions(manifest, tmp_path):
    images, out = tmp_path / "images", tmp_path / "out"
    make_image_folder(images, [(32, 32)], stems=["a"])
    assert run(manifest, images, out) == 0
    umask = os.umask(0)
    os.umask(umask)
    expected = 0o666 & ~umask
    for path in [
        out / "submission.csv",
        out / "submission_ids.csv",
        out / "report.json",
        out / "masks" / "a.png",
        out / "color" / "a.png",
    ]:
        assert oct(path.stat().st_mode & 0o777) == oct(expected), path
