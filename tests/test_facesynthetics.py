"""FaceSynthetics importer: label mapping by name, left/right, ignore, resize, skips, re-runs, CLI, reading."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import data_prep.__main__ as data_prep_cli
from configs import CLASS_ID, NUM_CLASSES
from configs.schema import parse_config
from data_prep import facesynthetics, importer
from data_prep.dataset import FaceParsingDataset, build_datasets
from data_prep.layout import PreparedDataset, read_label_map, read_rgb

SIDE = 40  # raw side (the real data: 512); 8-px blocks on a 5x5 grid
BLOCK = 8
# FaceSynthetics label -> the class its README name means here, written out by hand (not taken from
# the module under test). 255 = no label.
EXPECTED = {
    0: "background",
    1: "skin",
    2: "nose",
    3: "r_eye",
    4: "l_eye",
    5: "r_brow",
    6: "l_brow",
    7: "r_ear",
    8: "l_ear",
    9: "mouth",
    10: "u_lip",
    11: "l_lip",
    12: "neck",
    13: "hair",
    14: "skin",  # BEARD
    15: "cloth",
    16: "eye_g",
    17: "hat",
    18: 255,  # FACEWEAR
    255: 255,  # IGNORE
}
FS_VALUES = list(EXPECTED)  # block k of the grid holds FS_VALUES[k]; the last 5 blocks are background


def expected_id(fs_value: int, swap_lr: bool = False) -> int:
    name = EXPECTED[fs_value]
    if name == 255:
        return 255
    if swap_lr and name[:2] in ("l_", "r_") and name != "l_lip":
        name = {"l": "r", "r": "l"}[name[0]] + name[1:]
    return CLASS_ID[name]


def fs_seg() -> np.ndarray:
    """A label map holding every FaceSynthetics value once, one 8x8 block each, row-major.

    RIGHT_EYE (3) sits in column 3 and LEFT_EYE (4) in column 4: the subject's right eye on the
    image's left, as in a frontal photo.
    """
    seg = np.zeros((SIDE, SIDE), np.uint8)
    for k, value in enumerate(FS_VALUES):
        r, c = divmod(k, SIDE // BLOCK)
        seg[r * BLOCK : (r + 1) * BLOCK, c * BLOCK : (c + 1) * BLOCK] = value
    return seg


def expected_label(seg: np.ndarray, swap_lr: bool = False) -> np.ndarray:
    out = np.zeros_like(seg)
    for value in FS_VALUES:
        out[seg == value] = expected_id(value, swap_lr)
    return out


def fs_image(sample_id: int, side: int = SIDE) -> np.ndarray:
    y, x = np.mgrid[0:side, 0:side]
    return np.stack(
        [
            (x * 6 + sample_id * 37) % 256,
            (y * 6 + sample_id * 11) % 256,
            np.full_like(x, sample_id * 53 % 256),
        ],
        -1,
    ).astype(np.uint8)


def write_sample(
    raw: Path, sample_id: int, image: np.ndarray | None = None, seg: np.ndarray | None = None
) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    image = fs_image(sample_id) if image is None else image
    assert cv2.imwrite(str(raw / f"{sample_id:06d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert cv2.imwrite(str(raw / f"{sample_id:06d}_seg.png"), fs_seg() if seg is None else seg)
    (raw / f"{sample_id:06d}_ldmks.txt").write_text("1.0 2.0\n" * 70)


def make_raw(raw: Path, n: int = 5) -> Path:
    for i in range(n):
        write_sample(raw, i)
    return raw


def prepare(raw: Path, out: Path, **kwargs) -> dict:
    kwargs.setdefault("size", SIDE)
    return facesynthetics.prepare(raw, out, progress=False, **kwargs)


def all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- label mapping ------------------------------------------------------------------------------


def test_each_facesynthetics_label_lands_on_the_class_its_name_means(tmp_path):
    raw = make_raw(tmp_path / "raw", 1)
    meta = prepare(raw, tmp_path / "prep")
    label = read_label_map(tmp_path / "prep" / "masks" / "000000.png")
    seg = fs_seg()
    for value in FS_VALUES:
        assert set(np.unique(label[seg == value])) == {expected_id(value)}, f"FaceSynthetics label {value}"
    assert meta["label_map"]["RIGHT_EYE"] == "r_eye" and meta["label_map"]["FACEWEAR"] == "ignore"
    assert meta["swap_lr"] is False


def test_swap_lr_swaps_eyes_brows_and_ears_and_nothing_else(tmp_path):
    raw = make_raw(tmp_path / "raw", 1)
    prepare(raw, tmp_path / "prep", swap_lr=True)
    label = read_label_map(tmp_path / "prep" / "masks" / "000000.png")
    np.testing.assert_array_equal(label, expected_label(fs_seg(), swap_lr=True))
    seg = fs_seg()
    assert (label[seg == 3] == CLASS_ID["l_eye"]).all() and (label[seg == 8] == CLASS_ID["r_ear"]).all()
    assert (label[seg == 11] == CLASS_ID["l_lip"]).all()  # the lower lip is no "left" part


def test_left_right_check_counts_where_r_eye_lies_and_warns_when_mirrored(tmp_path, capsys):
    raw = make_raw(tmp_path / "raw", 3)
    write_sample(raw, 3, seg=np.where(fs_seg() == 3, 1, fs_seg()).astype(np.uint8))  # no right eye
    meta = prepare(raw, tmp_path / "as_is")
    assert meta["left_right_check"] == {"r_eye_on_image_left": 3, "r_eye_on_image_right": 0, "undecided": 1}
    assert "mirrored" not in capsys.readouterr().err
    meta = prepare(raw, tmp_path / "swapped", swap_lr=True)
    assert meta["left_right_check"] == {"r_eye_on_image_left": 0, "r_eye_on_image_right": 3, "undecided": 1}
    err = capsys.readouterr().err
    assert "mirrored" in err and "without --swap-lr" in err


def test_ignore_and_facewear_stay_255_and_are_left_out_of_class_frequencies(tmp_path):
    raw = make_raw(tmp_path / "raw", 2)
    meta = prepare(raw, tmp_path / "prep")
    label = read_label_map(tmp_path / "prep" / "masks" / "000001.png")
    seg = fs_seg()
    assert (label[(seg == 255) | (seg == 18)] == 255).all()
    ignored = 2 * 2 * BLOCK * BLOCK  # two blocks per sample, two samples
    assert meta["ignore_pixels"] == ignored
    labelled = 2 * SIDE * SIDE - ignored
    assert sum(meta["class_pixels"].values()) == labelled
    assert meta["class_pixels"]["skin"] == 2 * 2 * BLOCK * BLOCK  # SKIN + BEARD
    assert meta["class_frequency"]["nose"] == pytest.approx(2 * BLOCK * BLOCK / labelled)
    assert sum(meta["class_frequency"].values()) == pytest.approx(1.0)
    freq = PreparedDataset(tmp_path / "prep").class_frequencies()
    assert freq.shape == (NUM_CLASSES,) and freq[CLASS_ID["ear_r"]] == 0.0


def test_segmentation_saved_as_grey_rgb_reads_the_same(tmp_path):
    raw = make_raw(tmp_path / "raw", 1)
    cv2.imwrite(str(raw / "000000_seg.png"), np.repeat(fs_seg()[:, :, None], 3, axis=2))
    prepare(raw, tmp_path / "prep")
    np.testing.assert_array_equal(
        read_label_map(tmp_path / "prep" / "masks" / "000000.png"), expected_label(fs_seg())
    )


# --- resize -------------------------------------------------------------------------------------


def test_shrinking_averages_image_areas_and_picks_label_ids_by_nearest(tmp_path):
    stripes = np.zeros((SIDE, SIDE, 3), np.uint8)
    stripes[:, 3::4] = 240  # every 4th column bright: the area mean over 4 columns is 60
    write_sample(tmp_path / "raw", 0, image=stripes)
    prepare(tmp_path / "raw", tmp_path / "prep", size=10)
    image = read_rgb(tmp_path / "prep" / "images" / "000000.jpg")
    assert image.shape == (10, 10, 3)
    assert np.abs(image.astype(int) - 60).max() <= 3  # bilinear or nearest would give 0 or 240
    label = read_label_map(tmp_path / "prep" / "masks" / "000000.png")
    np.testing.assert_array_equal(label, expected_label(fs_seg())[2::4, 2::4])  # pixel centres, 40 -> 10


# --- bad input ----------------------------------------------------------------------------------


def test_corrupt_and_incomplete_samples_are_skipped_and_reported_while_the_rest_is_exact(tmp_path):
    raw = make_raw(tmp_path / "raw", 7)
    (raw / "000001.png").write_bytes(b"not a png")
    data = (raw / "000002_seg.png").read_bytes()
    (raw / "000002_seg.png").write_bytes(data[: len(data) // 2])  # a download cut short
    bad = fs_seg()
    bad[0, 0] = 77
    cv2.imwrite(str(raw / "000003_seg.png"), bad)
    (raw / "000004_seg.png").unlink()
    cv2.imwrite(str(raw / "000005_seg.png"), np.zeros((20, 20), np.uint8))
    meta = prepare(raw, tmp_path / "prep")
    reasons = {s["id"]: s["reason"] for s in meta["skipped"]}
    assert list(reasons) == ["000001", "000002", "000003", "000004", "000005"]
    assert "000001.png" in reasons["000001"] and "not a readable image" in reasons["000001"]
    assert "000002_seg.png" in reasons["000002"] and "not a readable" in reasons["000002"]
    assert "[77]" in reasons["000003"]
    assert "no segmentation map 000004_seg.png" in reasons["000004"]
    assert "20x20" in reasons["000005"] and "40x40" in reasons["000005"]
    prep = PreparedDataset(tmp_path / "prep")
    assert prep.split_ids("train") == ["000000", "000006"]
    assert sorted(p.name for p in prep.masks.iterdir()) == ["000000.png", "000006.png"]
    np.testing.assert_array_equal(read_label_map(prep.mask_path("000006")), expected_label(fs_seg()))


def test_root_above_the_unzipped_folder_is_named_in_the_error(tmp_path):
    make_raw(tmp_path / "download" / "dataset_100", 1)
    with pytest.raises(ValueError, match="did you mean --root .*dataset_100"):
        prepare(tmp_path / "download", tmp_path / "prep")


# --- re-runs ------------------------------------------------------------------------------------


def test_rerun_rewrites_nothing_and_gives_identical_files(tmp_path, monkeypatch):
    raw = make_raw(tmp_path / "raw", 4)
    (raw / "000002.png").write_bytes(b"broken")
    out = tmp_path / "prep"
    first = prepare(raw, out, val_fraction=0.25)
    before = all_files(out)
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.suffix in (".png", ".jpg")}
    writes = []
    real_write = importer.write_image
    monkeypatch.setattr(
        importer, "write_image", lambda path, *a, **k: (writes.append(path), real_write(path, *a, **k))
    )
    second = prepare(raw, out, val_fraction=0.25)
    assert writes == []
    assert all_files(out) == before  # dataset.json and splits included, byte for byte
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    assert second == first and first["ignore_pixels"] > 0


def test_rerun_finishes_what_a_killed_run_left(tmp_path):
    raw = make_raw(tmp_path / "raw", 4)
    out = tmp_path / "prep"
    prepare(raw, out)
    finished = all_files(out)
    prep = PreparedDataset(out)
    prep.mask_path("000003").unlink()  # killed after the image, before the mask
    (prep.masks / ".000003.png.abc123.tmp").write_bytes(b"half")
    prep.meta_path.unlink()
    untouched = prep.mask_path("000001").stat().st_mtime_ns
    prepare(raw, out)
    assert all_files(out) == finished
    assert prep.mask_path("000001").stat().st_mtime_ns == untouched


@pytest.mark.parametrize("change", [{"size": 20}, {"swap_lr": True}])
def test_rerun_with_another_size_or_lr_convention_is_refused(tmp_path, change):
    raw = make_raw(tmp_path / "raw", 1)
    prepare(raw, tmp_path / "prep")
    with pytest.raises(ValueError, match="use a new --out"):
        prepare(raw, tmp_path / "prep", **change)


# --- CLI and reading the output -----------------------------------------------------------------


@pytest.fixture
def cli_main(monkeypatch):
    """The real `python -m data_prep` entry, registering only this subcommand."""
    monkeypatch.setattr(
        data_prep_cli, "COMMANDS", {"facesynthetics": data_prep_cli.COMMANDS["facesynthetics"]}
    )
    return data_prep_cli.main


def test_cli_prepares_splits_and_limits_like_the_python_api_with_two_workers(tmp_path, capsys, cli_main):
    raw = make_raw(tmp_path / "raw", 12)
    rc = cli_main(
        [
            "facesynthetics",
            "--root",
            str(raw),
            "--out",
            str(tmp_path / "cli"),
            "--size",
            "20",
            "--workers",
            "2",
            "--val-fraction",
            "0.2",
            "--test-fraction",
            "0.1",
            "--seed",
            "3",
            "--limit",
            "10",
            "--swap-lr",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "10 samples (train 7, val 2, test 1)" in out and str(tmp_path / "cli") in out
    meta = PreparedDataset(tmp_path / "cli").meta()
    assert meta["source"] == "facesynthetics" and meta["size"] == 20 and meta["swap_lr"] is True
    assert meta["split"] == {"method": "random", "val_fraction": 0.2, "test_fraction": 0.1, "seed": 3}
    api = prepare(
        raw, tmp_path / "api", size=20, val_fraction=0.2, test_fraction=0.1, seed=3, limit=10, swap_lr=True
    )
    assert all_files(tmp_path / "cli") == all_files(tmp_path / "api")
    assert meta == api


def test_cli_bad_fraction_is_one_clear_line(tmp_path, capsys, cli_main):
    raw = make_raw(tmp_path / "raw", 1)
    rc = cli_main(
        [
            "facesynthetics",
            "--root",
            str(raw),
            "--out",
            str(tmp_path / "prep"),
            "--val-fraction",
            "0.6",
            "--test-fraction",
            "0.5",
        ]
    )
    assert rc == 2
    assert capsys.readouterr().err.strip().startswith("error: val_fraction + test_fraction must be < 1")


def test_output_is_read_by_the_training_dataset_and_mixes_with_another(tmp_path, tiny_prepared):
    raw = make_raw(tmp_path / "raw", 5)
    prepare(raw, tmp_path / "prep", size=32)
    items = FaceParsingDataset(tmp_path / "prep", "train")
    assert len(items) == 5
    image, mask = items[0]
    assert image.shape == (32, 32, 3) and mask.shape == (32, 32)
    assert 255 in mask and set(np.unique(mask)) <= set(range(NUM_CLASSES)) | {255}

    # No affine: ignore pixels near the border must not be shifted out of view by chance.
    cfg = parse_config(
        {
            "data": {
                "image_size": 32,
                "augment": {"affine": 0.0},
                "datasets": [{"path": str(tiny_prepared)}, {"path": str(tmp_path / "prep"), "weight": 0.5}],
            }
        }
    )
    train, val, sampler = build_datasets(cfg)
    assert len(train) == 24 + 5 and sampler is not None
    assert len(val) == 8  # no val split by default: validation stays on the other dataset
    _, fs_mask = train[24]
    assert fs_mask.dtype == torch.int64 and (fs_mask == 255).any()
    assert set(fs_mask.unique().tolist()) <= set(range(NUM_CLASSES)) | {255}
