"""CelebAMask-HQ importer: paint order, class IDs, mask modes, skips, re-runs, splits, resize, workers."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image
from raw_celebamask import (
    IMAGE,
    MASK,
    all_files,
    anno_path,
    box,
    expected_label,
    make_raw,
    prepare,
    simple_parts,
    write_image_file,
    write_mask,
)

from configs import CLASS_ID, CLASSES, DEFAULT_PAINT_ORDER, NUM_CLASSES
from data_prep import celebamask, importer
from data_prep.layout import PreparedDataset, read_label_map, read_rgb


def test_later_part_in_paint_order_wins_where_parts_overlap(tmp_path):
    parts = {"skin": box(0, 16, 0, 16), "nose": box(4, 12, 4, 12), "hair": box(0, 6, 0, 16)}
    raw = make_raw(tmp_path / "raw", {7: parts})
    prepare(raw, tmp_path / "prep")
    label = read_label_map(tmp_path / "prep" / "masks" / "7.png")
    expected = np.full((MASK, MASK), CLASS_ID["skin"], np.uint8)
    expected[4:12, 4:12] = CLASS_ID["nose"]
    expected[0:6, :] = CLASS_ID["hair"]  # hair is painted after nose and skin
    np.testing.assert_array_equal(label, expected)


def test_custom_paint_order_changes_the_winner(tmp_path):
    parts = {"skin": box(0, 16, 0, 16), "nose": box(4, 12, 4, 12), "hair": box(0, 6, 0, 16)}
    raw = make_raw(tmp_path / "raw", {7: parts})
    order = [n for n in DEFAULT_PAINT_ORDER if n != "nose"] + ["nose"]  # nose last: over the hair
    meta = prepare(raw, tmp_path / "prep", paint_order=order)
    label = read_label_map(tmp_path / "prep" / "masks" / "7.png")
    assert label[4, 8] == CLASS_ID["nose"] and label[2, 8] == CLASS_ID["hair"]
    np.testing.assert_array_equal(label, expected_label(parts, order))
    assert meta["paint_order"] == order


def test_bad_paint_order_is_refused(tmp_path):
    raw = make_raw(tmp_path / "raw", {1: simple_parts(1)})
    with pytest.raises(ValueError, match="missing"):
        prepare(raw, tmp_path / "prep", paint_order=["skin", "hair"])


def test_each_part_gets_its_official_class_id(tmp_path):
    names = CLASSES[1:]
    parts = {}
    for k, name in enumerate(names):  # one disjoint cell per part: 18 cells in the 16x16 grid
        parts[name] = box(k // 4 * 3, k // 4 * 3 + 3, k % 4 * 4, k % 4 * 4 + 4)
    raw = make_raw(tmp_path / "raw", {3: parts})
    meta = prepare(raw, tmp_path / "prep")
    label = read_label_map(tmp_path / "prep" / "masks" / "3.png")
    # The official CelebAMask-HQ IDs, written out so a reordered class table fails here.
    official = {
        "skin": 1,
        "nose": 2,
        "eye_g": 3,
        "l_eye": 4,
        "r_eye": 5,
        "l_brow": 6,
        "r_brow": 7,
        "l_ear": 8,
        "r_ear": 9,
        "mouth": 10,
        "u_lip": 11,
        "l_lip": 12,
        "hair": 13,
        "hat": 14,
        "ear_r": 15,
        "neck_l": 16,
        "neck": 17,
        "cloth": 18,
    }
    for name, is_set in parts.items():
        assert (label[is_set] == official[name]).all(), name
    assert (label[~np.any(list(parts.values()), axis=0)] == 0).all()
    for name, is_set in parts.items():
        assert meta["class_pixels"][name] == is_set.sum()
    assert meta["class_pixels"]["background"] == MASK * MASK - sum(m.sum() for m in parts.values())
    assert sum(meta["class_frequency"].values()) == pytest.approx(1.0)


@pytest.mark.parametrize("mode", ["L", "1", "RGB", "RGB_red", "RGBA", "LA", "P", "I16"])
def test_part_masks_read_in_any_png_mode(tmp_path, mode):
    parts = simple_parts(1)
    raw = make_raw(tmp_path / "raw", {1: parts}, mode=mode)
    prepare(raw, tmp_path / "prep")
    np.testing.assert_array_equal(
        read_label_map(tmp_path / "prep" / "masks" / "1.png"), expected_label(parts)
    )


def test_transparent_pixels_of_an_rgba_mask_are_not_set(tmp_path):
    raw = make_raw(tmp_path / "raw", {1: {"skin": box(0, 16, 0, 16)}})
    rgba = np.zeros((MASK, MASK, 4), np.uint8)
    rgba[..., :3] = 255  # white everywhere,
    rgba[..., 3] = np.where(box(0, 8, 0, 16), 255, 0)  # but only the top half opaque
    Image.fromarray(rgba, "RGBA").save(anno_path(raw, 1, "hair"))
    prepare(raw, tmp_path / "prep")
    label = read_label_map(tmp_path / "prep" / "masks" / "1.png")
    assert (label[:8] == CLASS_ID["hair"]).all() and (label[8:] == CLASS_ID["skin"]).all()


def test_ids_in_anno_folder_1_are_found(tmp_path):
    samples = {
        5: simple_parts(5),
        2000: simple_parts(2000),
        2001: simple_parts(2001),
        3999: simple_parts(3999),
    }
    raw = make_raw(tmp_path / "raw", samples)
    assert anno_path(raw, 2001, "skin").parent.name == "1"
    meta = prepare(raw, tmp_path / "prep")
    assert meta["skipped"] == []
    for sample_id, parts in samples.items():
        label = read_label_map(tmp_path / "prep" / "masks" / f"{sample_id}.png")
        np.testing.assert_array_equal(label, expected_label(parts))


# --- bad samples -------------------------------------------------------------------------------


def test_corrupt_files_are_skipped_and_reported_while_the_rest_is_exact(tmp_path):
    samples = {i: simple_parts(i) for i in range(1, 10)}
    raw = make_raw(tmp_path / "raw", samples)
    (raw / "CelebA-HQ-img" / "2.jpg").write_bytes(b"not a jpeg at all")
    anno_path(raw, 4, "nose").write_bytes(b"\x89PNG garbage")
    jpeg = (raw / "CelebA-HQ-img" / "6.jpg").read_bytes()
    (raw / "CelebA-HQ-img" / "6.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (raw / "CelebA-HQ-img" / "9.jpg").write_bytes(jpeg[:-2])  # only the end marker lost
    for part in samples[7]:
        anno_path(raw, 7, part).unlink()  # an image without any mask
    meta = prepare(raw, tmp_path / "prep")

    reasons = {s["id"]: s["reason"] for s in meta["skipped"]}
    assert sorted(reasons, key=int) == ["2", "4", "6", "7", "9"]
    assert "2.jpg" in reasons["2"] and "not a readable image" in reasons["2"]
    assert "00004_nose.png" in reasons["4"] and "not a readable mask" in reasons["4"]
    assert "6.jpg" in reasons["6"] and ("truncated" in reasons["6"] or "not a readable" in reasons["6"])
    assert "9.jpg" in reasons["9"] and ("truncated" in reasons["9"] or "not a readable" in reasons["9"])
    assert "no part masks" in reasons["7"] and "00007" in reasons["7"]
    assert json.loads((tmp_path / "prep" / "dataset.json").read_text())["skipped"] == meta["skipped"]

    prep = PreparedDataset(tmp_path / "prep")
    good = ["1", "3", "5", "8"]
    assert sorted(sum((prep.split_ids(s) for s in ("train", "val", "test")), []), key=int) == good
    assert sorted(p.stem for p in prep.masks.iterdir()) == sorted(good)
    assert sorted(p.stem for p in prep.images.iterdir()) == sorted(good)
    for sample_id in good:
        np.testing.assert_array_equal(
            read_label_map(prep.mask_path(sample_id)), expected_label(samples[int(sample_id)])
        )
    assert sum(meta["counts"].values()) == 4


def test_a_jpeg_without_its_end_marker_is_refused_even_where_opencv_decodes_it(tmp_path):
    # Whether OpenCV decodes a JPEG cut before its end marker depends on the last bits; find one it does.
    y, x = np.mgrid[0:32, 0:32]
    smooth = np.stack([x * 8, y * 8, (x + y) * 4], -1).astype(np.uint8)
    for seed in range(50):
        image = smooth + np.random.default_rng(seed).integers(0, 20, smooth.shape, dtype=np.uint8)
        data = cv2.imencode(".jpg", image)[1].tobytes()[:-2]
        if cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is not None:
            break
    else:
        pytest.skip("this OpenCV refuses every cut file by itself")
    path = tmp_path / "1.jpg"
    path.write_bytes(data)
    with pytest.raises(ValueError, match="1.jpg: truncated JPEG"):
        celebamask.read_image(path)


def test_mask_sizes_that_disagree_skip_the_sample(tmp_path):
    raw = make_raw(tmp_path / "raw", {1: simple_parts(1), 2: simple_parts(2)})
    write_mask(anno_path(raw, 2, "hat"), np.ones((8, 8), bool))
    meta = prepare(raw, tmp_path / "prep")
    assert [s["id"] for s in meta["skipped"]] == ["2"]
    assert "00002_hat.png" in meta["skipped"][0]["reason"] and "8x8" in meta["skipped"][0]["reason"]


# --- re-runs -----------------------------------------------------------------------------------


def test_rerun_rewrites_nothing_and_gives_identical_files(tmp_path, monkeypatch):
    samples = {i: simple_parts(i) for i in range(10)}
    raw = make_raw(tmp_path / "raw", samples)
    (raw / "CelebA-HQ-img" / "3.jpg").write_bytes(b"broken")
    out = tmp_path / "prep"
    first_meta = prepare(raw, out)
    before = all_files(out)
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")} | {
        p: p.stat().st_mtime_ns for p in out.rglob("*.jpg")
    }

    writes = []
    real_write = importer.write_image
    monkeypatch.setattr(
        importer, "write_image", lambda path, *a, **k: (writes.append(path), real_write(path, *a, **k))
    )
    second_meta = prepare(raw, out)

    assert writes == []
    assert all_files(out) == before  # dataset.json and splits included, byte for byte
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    assert second_meta == first_meta
    assert second_meta["class_pixels"]["hair"] > 0


def test_rerun_finishes_what_a_killed_run_left(tmp_path):
    samples = {i: simple_parts(i) for i in range(6)}
    raw = make_raw(tmp_path / "raw", samples)
    out = tmp_path / "prep"
    prepare(raw, out)
    finished = all_files(out)
    prep = PreparedDataset(out)
    # A run killed after image 4 and before its mask; its temp file of an unfinished write remains.
    prep.mask_path("4").unlink()
    (prep.images / "5.jpg").unlink()
    prep.mask_path("5").unlink()
    (prep.masks / ".5.png.abc123.tmp").write_bytes(b"half")
    (prep.meta_path).unlink()
    untouched = prep.mask_path("1").stat().st_mtime_ns
    prepare(raw, out)
    assert all_files(out) == finished
    assert prep.mask_path("1").stat().st_mtime_ns == untouched


def test_rerun_with_another_size_is_refused(tmp_path):
    raw = make_raw(tmp_path / "raw", {1: simple_parts(1)})
    prepare(raw, tmp_path / "prep", size=16)
    with pytest.raises(ValueError, match="size 16"):
        prepare(raw, tmp_path / "prep", size=8)


# --- splits ------------------------------------------------------------------------------------


def test_split_file_sends_listed_ids_to_train_and_val_and_the_rest_to_test(tmp_path):
    samples = {i: simple_parts(i) for i in range(12)}
    raw = make_raw(tmp_path / "raw", samples)
    split_file = tmp_path / "train_ids.txt"
    split_file.write_text("0\n1\n2\n3\n4\n5\n6\n7\n99\n")  # 99 has no image: ignored
    meta = prepare(raw, tmp_path / "prep", split_file=split_file, val_fraction=0.25, seed=3)
    prep = PreparedDataset(tmp_path / "prep")
    train, val, test = (prep.split_ids(s) for s in ("train", "val", "test"))
    assert test == ["8", "9", "10", "11"]
    assert sorted(train + val, key=int) == [str(i) for i in range(8)]
    assert len(val) == 2 and not set(train) & set(val)
    assert train == sorted(train, key=int)
    assert meta["counts"] == {"train": 6, "val": 2, "test": 4}
    assert meta["split"]["method"] == "file"


def test_random_split_is_seeded_and_a_bad_sample_does_not_move_the_others(tmp_path):
    samples = {i: simple_parts(i) for i in range(20)}
    raw = make_raw(tmp_path / "raw", samples)
    prepare(raw, tmp_path / "a", seed=5, val_fraction=0.2, test_fraction=0.2)
    prepare(raw, tmp_path / "b", seed=5, val_fraction=0.2, test_fraction=0.2)
    a, b = PreparedDataset(tmp_path / "a"), PreparedDataset(tmp_path / "b")
    splits_a = {s: a.split_ids(s) for s in ("train", "val", "test")}
    assert splits_a == {s: b.split_ids(s) for s in ("train", "val", "test")}
    assert [len(splits_a[s]) for s in ("train", "val", "test")] == [12, 4, 4]
    bad = splits_a["val"][0]
    (raw / "CelebA-HQ-img" / f"{bad}.jpg").write_bytes(b"broken")
    prepare(raw, tmp_path / "c", seed=5, val_fraction=0.2, test_fraction=0.2)
    c = PreparedDataset(tmp_path / "c")
    assert c.split_ids("val") == [i for i in splits_a["val"] if i != bad]
    assert c.split_ids("train") == splits_a["train"] and c.split_ids("test") == splits_a["test"]


def test_split_file_and_test_fraction_together_are_refused(tmp_path):
    raw = make_raw(tmp_path / "raw", {1: simple_parts(1)})
    (tmp_path / "ids.txt").write_text("1\n")
    with pytest.raises(ValueError, match="not both"):
        prepare(raw, tmp_path / "prep", split_file=tmp_path / "ids.txt", test_fraction=0.1)


def test_limit_takes_the_first_ids_in_numeric_order(tmp_path):
    raw = make_raw(tmp_path / "raw", {i: simple_parts(i) for i in (1, 2, 10, 11)})
    meta = prepare(raw, tmp_path / "prep", limit=3, val_fraction=0.0, test_fraction=0.0)
    assert PreparedDataset(tmp_path / "prep").split_ids("train") == ["1", "2", "10"]
    assert meta["counts"]["train"] == 3


# --- resize ------------------------------------------------------------------------------------


def test_shrinking_averages_image_areas_and_picks_label_ids_by_nearest(tmp_path):
    parts = {
        "skin": box(2, 14, 2, 14),
        "l_eye": box(5, 7, 4, 6),
        "r_eye": box(5, 7, 10, 12),
        "hair": box(0, 3, 0, 16),
    }
    raw = make_raw(tmp_path / "raw", {1: parts})
    stripes = np.zeros((IMAGE, IMAGE, 3), np.uint8)
    stripes[:, 3::4] = 240  # every 4th column bright: the area mean of 4 columns is 60
    (raw / "CelebA-HQ-img" / "1.jpg").unlink()
    write_image_file(raw, 1, stripes, suffix=".png")  # lossless input
    prepare(raw, tmp_path / "prep", size=8)
    image = read_rgb(tmp_path / "prep" / "images" / "1.jpg")
    assert image.shape == (8, 8, 3)
    assert np.abs(image.astype(int) - 60).max() <= 3  # bilinear would give 0, nearest 0 or 240
    label = read_label_map(tmp_path / "prep" / "masks" / "1.png")
    full = expected_label(parts)
    np.testing.assert_array_equal(label, full[1::2, 1::2])  # pixel-centre nearest, 16 -> 8
    assert set(np.unique(label)) <= set(np.unique(full))


def test_growing_interpolates_the_image_and_repeats_label_pixels(tmp_path):
    parts = simple_parts(1)
    raw = make_raw(tmp_path / "raw", {1: parts})
    stripes = np.zeros((IMAGE, IMAGE, 3), np.uint8)
    stripes[:, 1::2] = 240
    (raw / "CelebA-HQ-img" / "1.jpg").unlink()
    write_image_file(raw, 1, stripes, suffix=".png")
    prepare(raw, tmp_path / "prep", size=64)
    image = read_rgb(tmp_path / "prep" / "images" / "1.jpg").astype(int)
    linear = cv2.resize(stripes, (64, 64), interpolation=cv2.INTER_LINEAR).astype(int)
    assert np.abs(image - linear).mean() < 8
    label = read_label_map(tmp_path / "prep" / "masks" / "1.png")
    np.testing.assert_array_equal(label, np.kron(expected_label(parts), np.ones((4, 4), np.uint8)))


def test_real_geometry_image_twice_the_mask_size_aligns(tmp_path):
    """1024-px images with 512-px masks, scaled down: here 32-px images, 16-px masks, --size 16."""
    raw = make_raw(tmp_path / "raw", {1: simple_parts(1)})
    prepare(raw, tmp_path / "prep", size=16)
    assert read_rgb(tmp_path / "prep" / "images" / "1.jpg").shape == (16, 16, 3)
    assert read_label_map(tmp_path / "prep" / "masks" / "1.png").shape == (16, 16)


# --- workers and CLI -----------------------------------------------------------------------------


def test_two_workers_write_the_same_output_as_one(tmp_path):
    samples = {i: simple_parts(i) for i in range(0, 4400, 200)}  # 22 ids over anno folders 0, 1, 2
    raw = make_raw(tmp_path / "raw", samples)
    anno_path(raw, 600, "skin").write_bytes(b"corrupt")
    one = prepare(raw, tmp_path / "one", workers=1)
    two = prepare(raw, tmp_path / "two", workers=2)
    assert all_files(tmp_path / "one") == all_files(tmp_path / "two")
    assert one == two and [s["id"] for s in one["skipped"]] == ["600"]
    assert sum(one["counts"].values()) == 21


def test_every_label_value_is_a_class_id(tmp_path):
    rng = np.random.default_rng(0)
    parts = {name: rng.random((MASK, MASK)) < 0.3 for name in CLASSES[1:]}
    raw = make_raw(tmp_path / "raw", {1: parts})
    prepare(raw, tmp_path / "prep", size=11)
    label = read_label_map(tmp_path / "prep" / "masks" / "1.png")
    assert label.max() < NUM_CLASSES and set(np.unique(label)) <= set(np.unique(expected_label(parts)))


@pytest.mark.timeout(120)
def test_workers_start_cleanly_after_opencv_has_used_its_thread_pool(tmp_path):
    # A forked worker inherits OpenCV's thread-pool state without its threads and could hang.
    raw = make_raw(tmp_path / "raw", {i: simple_parts(i) for i in range(8)})
    big = np.zeros((2048, 2048, 3), np.uint8)
    for _ in range(3):  # right before the pool starts, so OpenCV's threads are still busy-waiting
        cv2.resize(big, (512, 512), interpolation=cv2.INTER_AREA)
    meta = prepare(raw, tmp_path / "prep", workers=2)
    assert sum(meta["counts"].values()) == 8
