"""run_ensemble.py end to end: outputs, bad inputs, --skip-bad, prepared datasets, the report."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from configs import CLASSES
from data_prep.layout import read_label_map, read_rgb
from ensemble.submission import run_pipeline as pipeline
from ensemble.submission.csv_codes import read_submission, rle_decode
from run_ensemble import main

from ensemble_fixtures import make_face_dataset, make_image_folder, write_manifest

SIZES = [(64, 64), (80, 50), (40, 72)]
FAST = ["--workers", "0", "--quiet", "--device", "cpu"]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    # Two members with different input sizes: the ensemble averages at the larger one.
    return write_manifest(tmp_path_factory.mktemp("models"), [{}, {"arch": "Unet", "image_size": 96}])


@pytest.fixture
def folder(tmp_path):
    images, gt = tmp_path / "images", tmp_path / "gt"
    stems = make_image_folder(images, SIZES, stems=["10", "2", "7"], masks=gt)
    (images / "notes.txt").write_text("not an image")
    return images, gt, stems


def test_run_writes_csv_masks_at_each_images_size_and_a_report(manifest, folder, tmp_path, capsys):
    images, gt, _ = folder
    out = tmp_path / "out"
    rc = main(
        [
            "--manifest",
            str(manifest),
            "--images",
            str(images),
            "--gt",
            str(gt),
            "--out",
            str(out),
            "--tta",
            "flip",
            "--viz",
            "2",
            *FAST,
        ]
    )
    assert rc == 0
    order = ["2", "7", "10"]  # numeric stem order
    assert (out / "submission_ids.csv").read_text().splitlines() == [
        "position,image",
        "0,2.png",
        "1,7.png",
        "2,10.png",
    ]
    rows = read_submission(out / "submission.csv")
    assert len(rows) == 3 * 19
    size_of = dict(zip(["10", "2", "7"], SIZES))
    for p, stem in enumerate(order):
        labels = read_label_map(out / "masks" / f"{stem}.png")
        assert labels.shape == size_of[stem]  # at the image's own size
        assert read_rgb(out / "color" / f"{stem}.png").shape == size_of[stem] + (3,)
        small = cv2.resize(labels, (256, 256), interpolation=cv2.INTER_NEAREST)  # the seed's resize
        for c in range(19):  # background included: the seed encodes it like any class
            np.testing.assert_array_equal(rle_decode(rows[p * 19 + c][3]), small == c)
    assert sorted(f.name for f in (out / "viz").iterdir()) == ["2.png", "7.png"]
    assert (out / "confusion.png").stat().st_size > 0

    report = json.loads((out / "report.json").read_text())
    stages = [s["stage"] for s in report["stages"]]
    assert stages == [
        "member:m0",
        "member:m1",
        "ensemble",
        "+tta(hflip)",
        "+gaussian(sigma=1)",
        "+remove_small",
        "+fill_holes",
    ]
    for s in report["stages"]:
        assert 0.0 <= s["f1"] <= 1.0 and 0.0 <= s["f1_with_bg"] <= 1.0
        assert set(s["per_class_f1"]) == set(CLASSES)
    assert report["stages"][3]["delta_f1"] == pytest.approx(
        report["stages"][3]["f1"] - report["stages"][2]["f1"]
    )
    assert [m["weight"] for m in report["members"]] == [0.5, 0.5]
    t = report["timings"]
    assert t["forward_total_s"] > 0 and t["per_image_s"] > 0 and t["run_s"] >= t["forward_total_s"]
    assert report["ignored"] == ["notes.txt"]
    md = (out / "report.md").read_text()
    assert "| +tta(hflip) |" in md and "## Timings" in md and "confusion.png" in md
    printed = capsys.readouterr().out
    assert "best member" in printed and "+tta(hflip)" in printed and str(out) in printed
    provenance = json.loads((out / "provenance.json").read_text())  # beside the outputs, not in them
    assert provenance["extra"]["options"]["manifest"] == str(manifest) and provenance["packages"]["torch"]
    assert provenance["config"]["viz"] == 2 and "provenance" not in (out / "report.json").read_text()


def test_the_final_stage_scores_the_written_masks(manifest, folder, tmp_path):
    images, gt, stems = folder
    out = tmp_path / "out"
    assert (
        main(
            [
                "--manifest",
                str(manifest),
                "--images",
                str(images),
                "--gt",
                str(gt),
                "--out",
                str(out),
                "--tta",
                "none",
                "--viz",
                "0",
                *FAST,
            ]
        )
        == 0
    )
    from tuning.metrics import confusion_matrix, scores_from_confusion

    cm = sum(
        confusion_matrix(
            torch.from_numpy(read_label_map(out / "masks" / f"{s}.png")),
            torch.from_numpy(read_label_map(gt / f"{s}.png")),
        )
        for s in stems
    )
    final = json.loads((out / "report.json").read_text())["stages"][-1]
    assert final["stage"] == "+fill_holes"
    assert final["f1"] == pytest.approx(scores_from_confusion(cm.numpy())["f1"], nan_ok=True)
    assert not (out / "viz").exists() or not any((out / "viz").iterdir())


def _corrupt(images):
    (images / "5.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    good = (images / "2.png").read_bytes()
    (images / "3.png").write_bytes(good[: len(good) // 3])  # truncated


def test_a_corrupt_image_stops_the_run_before_anything_is_written(manifest, folder, tmp_path, capsys):
    images, gt, _ = folder
    _corrupt(images)
    out = tmp_path / "out"
    rc = main(["--manifest", str(manifest), "--images", str(images), "--out", str(out), *FAST])
    assert rc == 2
    assert not out.exists()
    err = capsys.readouterr().err.splitlines()
    assert any("5.jpg: not a readable image" in line for line in err)
    assert any("3.png: not a readable image" in line for line in err)
    assert len([line for line in err if "not a readable image" in line]) == 2


def test_skip_bad_writes_empty_rows_for_corrupt_images_in_their_place(manifest, folder, tmp_path):
    images, _, _ = folder
    _corrupt(images)
    out = tmp_path / "out"
    rc = main(
        [
            "--manifest",
            str(manifest),
            "--images",
            str(images),
            "--out",
            str(out),
            "--skip-bad",
            "--tta",
            "none",
            *FAST,
        ]
    )
    assert rc == 0
    ids = (out / "submission_ids.csv").read_text().splitlines()[1:]
    assert ids == ["0,2.png", "1,3.png", "2,5.jpg", "3,7.png", "4,10.png"]
    rows = read_submission(out / "submission.csv")
    assert len(rows) == 5 * 19
    for p in (1, 2):  # the bad images keep their positions, all rows empty
        assert [r[3] for r in rows[p * 19 : (p + 1) * 19]] == ["0"] * 19
    assert [r[0] for r in rows] == list(range(95))
    assert any(r[3] != "0" for r in rows[3 * 19 : 4 * 19])
    assert sorted(f.name for f in (out / "masks").iterdir()) == ["10.png", "2.png", "7.png"]
    report = json.loads((out / "report.json").read_text())
    assert sorted(s["file"].rsplit("/", 1)[-1] for s in report["skipped"]) == ["3.png", "5.jpg"]
    assert report["stages"] is None  # no ground truth given
    assert "3.png" in (out / "report.md").read_text()


def test_prepared_dataset_split_brings_its_own_ground_truth(manifest, tmp_path):
    prep = make_face_dataset(tmp_path / "prep", {"train": 1, "val": 2, "test": 3}, size=64)
    out = tmp_path / "out"
    rc = main(
        [
            "--manifest",
            str(manifest),
            "--images",
            str(prep.root),
            "--out",
            str(out),
            "--tta",
            "none",
            "--no-postprocess",
            *FAST,
        ]
    )
    assert rc == 0
    ids = [line.split(",")[1] for line in (out / "submission_ids.csv").read_text().splitlines()[1:]]
    assert ids == [f"{i}.jpg" for i in prep.split_ids("test")]
    report = json.loads((out / "report.json").read_text())
    assert [s["stage"] for s in report["stages"]] == ["member:m0", "member:m1", "ensemble"]
    assert report["postprocess"] == []


def test_pickled_weights_stop_the_run_with_nothing_written(tmp_path, folder, capsys):
    images, _, _ = folder
    manifest = write_manifest(tmp_path / "models")
    torch.save({"x": torch.zeros(1)}, manifest.parent / "m0.safetensors")
    out = tmp_path / "out"
    assert main(["--manifest", str(manifest), "--images", str(images), "--out", str(out), *FAST]) == 2
    assert not out.exists()
    assert "pickled weights are refused" in capsys.readouterr().err


def test_config_file_gives_defaults_and_flags_override_them(manifest, folder, tmp_path):
    images, _, _ = folder
    config = tmp_path / "run.yaml"
    config.write_text(
        "ensemble:\n  tta: flip+scale\n  scales: [1.0, 1.5]\n  viz: 1\n"
        "  postprocess: {smooth: none, fill_holes: false}\n"
    )
    out = tmp_path / "out"
    assert (
        main(
            [
                "--manifest",
                str(manifest),
                "--images",
                str(images),
                "--out",
                str(out),
                "--config",
                str(config),
                "--viz",
                "3",
                *FAST,
            ]
        )
        == 0
    )
    report = json.loads((out / "report.json").read_text())
    assert report["views"] == ["identity", "hflip", "scale1.5", "scale1.5+hflip"]
    assert report["postprocess"] == ["remove_small"]
    assert len(list((out / "viz").iterdir())) == 3  # the flag beat the config's 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("ensemble:\n  tta: sideways\n")
    assert (
        main(
            [
                "--manifest",
                str(manifest),
                "--images",
                str(images),
                "--out",
                str(tmp_path / "o2"),
                "--config",
                str(bad),
                *FAST,
            ]
        )
        == 2
    )


def test_an_internal_value_error_propagates_instead_of_being_reported_as_bad_input(
    manifest, folder, tmp_path, monkeypatch
):
    images, _, _ = folder

    def broken_build_steps(cfg):
        raise ValueError("a bug, not bad input")

    monkeypatch.setattr(pipeline, "build_steps", broken_build_steps)
    with pytest.raises(ValueError, match="a bug, not bad input"):
        main(["--manifest", str(manifest), "--images", str(images), "--out", str(tmp_path / "out"), *FAST])


def test_tta_scales_that_give_no_views_are_bad_input(manifest, folder, tmp_path, capsys):
    images, _, _ = folder
    config = tmp_path / "run.yaml"
    config.write_text("ensemble:\n  tta: flip+scale\n  scales: []\n")
    out = tmp_path / "out"
    assert (
        main(
            [
                "--manifest",
                str(manifest),
                "--images",
                str(images),
                "--out",
                str(out),
                "--config",
                str(config),
                *FAST,
            ]
        )
        == 2
    )
    assert not out.exists()
    assert "gives no views" in capsys.readouterr().err
