"""LaPa importer: the label mapping by name, ignored background, padding, LaPa's splits, lapa11, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import data_prep.__main__ as data_prep_cli
from configs import CLASS_ID
from data_prep import lapa
from data_prep.atomic import write_image
from data_prep.check import check_datasets
from data_prep.layout import DatasetError, PreparedDataset, read_label_map, read_rgb

BLOCK = 4
# LaPa ID -> our class, written out by hand from LaPa's README (not from the module under test).
EXPECTED = {
    0: "background",
    1: "skin",
    2: "l_brow",
    3: "r_brow",
    4: "l_eye",
    5: "r_eye",
    6: "nose",
    7: "u_lip",
    8: "mouth",
    9: "l_lip",
    10: "hair",
}


def lapa_label(h: int, w: int) -> np.ndarray:
    """Blocks of LaPa IDs 1..10 in a row on background; the subject's left eye (4) on the image right."""
    label = np.zeros((h, w), np.uint8)
    for k, value in enumerate([1, 2, 3, 5, 6, 7, 8, 9, 10, 4]):  # r_eye (5) left of l_eye (4)
        label[BLOCK : 2 * BLOCK, k * BLOCK : (k + 1) * BLOCK] = value
    return label


def write_sample(root: Path, split: str, stem: str, h: int, w: int, label: bool = True) -> None:
    rng = np.random.default_rng(len(stem) + h)
    write_image(root / split / "images" / f"{stem}.jpg", rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    if label:
        write_image(root / split / "labels" / f"{stem}.png", lapa_label(h, w))
    (root / split / "landmarks").mkdir(parents=True, exist_ok=True)
    (root / split / "landmarks" / f"{stem}.txt").write_text("106\n" + "1.0 2.0\n" * 106)


@pytest.fixture
def lapa_root(tmp_path) -> Path:
    """A tiny LaPa tree: 2 train (one 40x48 landscape), 1 val, 1 test, 1 train image without labels."""
    root = tmp_path / "LaPa"
    write_sample(root, "train", "10_1", 48, 48)
    write_sample(root, "train", "11_2", 40, 48)  # landscape: padded to 48x48
    write_sample(root, "train", "12_1", 48, 48, label=False)
    write_sample(root, "val", "20_1", 48, 48)
    write_sample(root, "test", "30_1", 48, 48)
    return root


def test_lapa_labels_become_our_classes_by_name_with_background_ignored(lapa_root, tmp_path):
    out = tmp_path / "prep"
    meta = lapa.prepare(lapa_root, out, size=48, progress=False)
    prep = PreparedDataset(out)
    assert {s: prep.split_ids(s) for s in ("train", "val", "test")} == {
        "train": ["10_1", "11_2"],
        "val": ["20_1"],
        "test": ["30_1"],
    }
    assert [s["id"] for s in meta["skipped"]] == ["12_1"]
    mask = read_label_map(prep.mask_path("10_1"))
    raw = lapa_label(48, 48)
    for value, name in EXPECTED.items():
        expected = 255 if name == "background" else CLASS_ID[name]
        assert (mask[raw == value] == expected).all(), name
    assert meta["label_map"]["left eyebrow"] == "l_brow" and meta["label_map"]["background"] == "ignore"
    assert meta["left_right_check"]["r_eye_on_image_left"] == 4  # the convention holds on every sample
    assert meta["split"] == {"method": "lapa folders"}


def test_non_square_photos_are_padded_not_squashed(lapa_root, tmp_path):
    out = tmp_path / "prep"
    lapa.prepare(lapa_root, out, size=48, ignore=(), progress=False)
    prep = PreparedDataset(out)
    mask = read_label_map(prep.mask_path("11_2"))
    assert (mask[:4] == 255).all() and (mask[-4:] == 255).all()  # 4 rows of padding above and below
    np.testing.assert_array_equal(mask[4:-4], lapa.class_lut(ignore=())[lapa_label(40, 48)])
    assert read_rgb(prep.image_path("11_2"))[:3].mean() < 8  # black padding (JPEG ringing aside)


def test_lapa11_keeps_lapa_ids_and_names(lapa_root, tmp_path):
    out = tmp_path / "prep11"
    meta = lapa.prepare(lapa_root, out, size=48, label_set="lapa11", progress=False)
    mask = read_label_map(PreparedDataset(out).mask_path("20_1"))
    np.testing.assert_array_equal(mask, lapa_label(48, 48))
    assert meta["label_set"] == "lapa11" and meta["classes"][8] == "inner mouth"
    assert meta["class_pixels"]["hair"] == 4 * 16  # one 4x4 block in each sample (none resized at 48)
    assert meta["left_right_check"]["r_eye_on_image_left"] == 4
    # Its masks are LaPa IDs: training (and the pre-Ray check) must refuse it, a 19-class one passes.
    with pytest.raises(DatasetError, match="lapa11"):
        PreparedDataset(out).require_training_classes()
    with pytest.raises(DatasetError, match="lapa11"):
        check_datasets([out], progress=False)
    meta19 = lapa.prepare(lapa_root, tmp_path / "prep19", size=48, progress=False)
    PreparedDataset(tmp_path / "prep19").require_training_classes()
    # The framing reads LaPa IDs as the classes they name: same face box and landmarks as the 19-class copy.
    assert meta["framing"] == meta19["framing"] and meta["framing"]["samples"] > 0


def test_swap_lr_swaps_eyes_and_brows(lapa_root, tmp_path):
    meta = lapa.prepare(lapa_root, tmp_path / "p", size=48, swap_lr=True, progress=False)
    assert meta["label_map"]["left eye"] == "r_eye" and meta["label_map"]["right eyebrow"] == "l_brow"
    assert meta["left_right_check"]["r_eye_on_image_right"] == 4


def test_cli_prepares_lapa_and_rejects_a_bad_root(lapa_root, tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["lapa", "--root", str(lapa_root), "--out", str(out), "--size", "32", "--ignore", "none"]
    assert data_prep_cli.main(argv) == 0
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["ignore"] == [] and meta["counts"] == {"train": 2, "val": 1, "test": 1}
    assert read_label_map(PreparedDataset(out).mask_path("10_1")).shape == (32, 32)
    assert data_prep_cli.main(["lapa", "--root", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert "LaPa folder not found" in capsys.readouterr().err
