"""The importer pipeline through a toy importer: what a dataset supplies is enough for the whole layout."""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pytest

from configs import CLASS_ID, IGNORE_INDEX, NUM_CLASSES
from data_prep import importer
from data_prep.importer import (
    Found,
    Importer,
    Sample,
    Tally,
    add_common_arguments,
    common_options,
    prepare_dataset,
    read_image,
)
from data_prep.layout import DatasetError, PreparedDataset, read_label_map, read_rgb
from data_prep.splits import make_splits, sorted_ids

SIDE = 32  # raw side; prepared at 16, so a label map is its every second pixel


# --- the toy importer: ROOT/{id}.png photos beside ROOT/{id}_label.png maps of our class IDs ---------


def find_pairs(root: Path, limit: int | None) -> Found:
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: folder not found")
    photos = {p.stem: p for p in root.glob("*.png") if not p.stem.endswith("_label")}
    ids = sorted_ids(photos)[:limit]
    labels = {i: root / f"{i}_label.png" for i in ids}
    ignored = sorted(p.name for p in root.iterdir() if p.suffix != ".png")
    return Found(
        ids,
        [Sample(i, photos[i], labels[i]) for i in ids if labels[i].is_file()],
        {i: f"{labels[i]}: not found" for i in ids if not labels[i].is_file()},
        [f"{root}: ignored {', '.join(ignored)}"] if ignored else [],
    )


def convert_pair(sample: Sample, ignore_unknown: bool) -> tuple[np.ndarray, np.ndarray]:
    label = read_label_map(sample.annotation)
    unknown = label >= NUM_CLASSES
    if unknown.any() and not ignore_unknown:
        values = np.unique(label[unknown]).tolist()
        raise DatasetError(f"{sample.annotation}: values {values} are no class IDs")
    return read_image(sample.image), np.where(unknown, IGNORE_INDEX, label).astype(np.uint8)


def has_hair(label: np.ndarray) -> bool:
    return bool((label == CLASS_ID["hair"]).any())


def prepare_pairs(
    root: Path,
    out: Path,
    *,
    size: int = 16,
    workers: int = 1,
    val_fraction: float = 0.0,
    test_fraction: float = 0.0,
    seed: int = 0,
    limit: int | None = None,
    ignore_unknown: bool = False,
) -> dict:
    def meta(tally: Tally) -> dict:
        return {
            "ignore_unknown": ignore_unknown,
            "samples_with_hair": tally.stats[True],
            "ignore_pixels": int(tally.pixel_counts[IGNORE_INDEX]),
            "split": {"seed": seed},
        }

    pairs = Importer(
        name="pairs",
        source="toy-pairs",
        find_samples=find_pairs,
        convert_sample=partial(convert_pair, ignore_unknown=ignore_unknown),
        split=partial(make_splits, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed),
        settings={"ignore_unknown": ignore_unknown},
        meta=meta,
        sample_stat=has_hair,
        allow_ignore=ignore_unknown,
    )
    return prepare_dataset(pairs, root, out, size=size, workers=workers, limit=limit, progress=False)


# --- raw fixture ---------------------------------------------------------------------------------


def label_of(sample_id: int) -> np.ndarray:
    """Skin face, a nose, and hair on even ids only; 2-px blocks so the 16-px map keeps every part."""
    label = np.zeros((SIDE, SIDE), np.uint8)
    label[4:28, 4:28] = CLASS_ID["skin"]
    label[12:20, 14 + sample_id % 4 : 18 + sample_id % 4] = CLASS_ID["nose"]
    if sample_id % 2 == 0:
        label[0:6, :] = CLASS_ID["hair"]
    return label


def write_pair(root: Path, sample_id: int, label: np.ndarray | None = None) -> None:
    root.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:SIDE, 0:SIDE]
    photo = np.stack([x * 8, y * 8, np.full_like(x, sample_id * 40)], -1).astype(np.uint8)
    assert cv2.imwrite(str(root / f"{sample_id}.png"), photo)
    assert cv2.imwrite(str(root / f"{sample_id}_label.png"), label_of(sample_id) if label is None else label)


def make_raw(root: Path, ids=(1, 2, 3, 10, 11)) -> Path:
    """Pairs for ids; 3 has no label map, 11's holds a value that is no class ID, and one stray file."""
    for i in ids:
        write_pair(root, i)
    (root / "3_label.png").unlink()
    unknown = label_of(11)
    unknown[20:24, 20:24] = 40
    assert cv2.imwrite(str(root / "11_label.png"), unknown)
    (root / "README.txt").write_text("toy")
    return root


def all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- tests -----------------------------------------------------------------------------------------


def test_toy_importer_writes_the_prepared_layout_skips_and_reports(tmp_path, capsys):
    raw = make_raw(tmp_path / "raw")
    prep = PreparedDataset(tmp_path / "prep")
    prep.images.mkdir(parents=True)
    (prep.images / "11.jpg").write_bytes(b"left by a killed run")  # 11 now fails: must not outlive it
    prep.masks.mkdir()
    (prep.masks / ".2.png.abc123.tmp").write_bytes(b"half")
    meta = prepare_pairs(raw, prep.root, val_fraction=0.25)

    assert [(s["id"], s["reason"]) for s in meta["skipped"]] == [
        ("3", f"{raw / '3_label.png'}: not found"),  # found missing, then failed converting: id order
        ("11", f"{raw / '11_label.png'}: values [40] are no class IDs"),
    ]
    good = ["1", "2", "10"]
    # Split over every candidate id, then the skipped ones dropped: here the one val id was skipped.
    candidates = make_splits(["1", "2", "3", "10", "11"], val_fraction=0.25)
    assert {s: prep.split_ids(s) for s in candidates} == {
        s: [i for i in ids if i in good] for s, ids in candidates.items()
    }
    assert meta["counts"] == {"train": 3, "val": 0, "test": 0}
    assert sorted(p.name for p in prep.images.iterdir()) == ["1.jpg", "10.jpg", "2.jpg"]
    assert sorted(p.name for p in prep.masks.iterdir()) == ["1.png", "10.png", "2.png"]
    for i in good:
        np.testing.assert_array_equal(read_label_map(prep.mask_path(i)), label_of(int(i))[1::2, 1::2])
        assert read_rgb(prep.image_path(i)).shape == (16, 16, 3)
    assert meta["source"] == "toy-pairs" and meta["size"] == 16
    assert list(meta)[-5:] == ["root", "ignore_unknown", "samples_with_hair", "ignore_pixels", "split"]
    assert meta["root"] == str(raw.resolve()) and meta["samples_with_hair"] == 2  # ids 2 and 10
    assert meta["class_pixels"]["nose"] == 3 * 4 * 2
    assert sum(meta["class_frequency"].values()) == pytest.approx(1)
    assert prep.meta() == meta
    out, err = capsys.readouterr()
    assert out == (
        f"toy-pairs: 3 samples (train 3, val 0, test 0), 2 skipped (reasons in dataset.json), "
        f"0 reused from an earlier run -> {prep.root}\n"
        f"report: {prep.root / 'report.html'} (samples, class frequencies, augmentation preview)\n"
    )
    assert err == f"warning: {raw}: ignored README.txt\n"


def test_ignored_pixels_are_kept_counted_apart_and_left_out_of_frequencies(tmp_path):
    raw = make_raw(tmp_path / "raw")
    meta = prepare_pairs(raw, tmp_path / "prep", ignore_unknown=True)
    assert [s["id"] for s in meta["skipped"]] == ["3"]
    label = read_label_map(PreparedDataset(tmp_path / "prep").mask_path("11"))
    assert (label[10:12, 10:12] == IGNORE_INDEX).all() and (label == IGNORE_INDEX).sum() == 4
    assert meta["ignore_pixels"] == 4
    assert sum(meta["class_pixels"].values()) == 4 * 16 * 16 - 4
    assert sum(meta["class_frequency"].values()) == pytest.approx(1)


def test_rerun_rewrites_nothing_and_a_changed_setting_is_refused(tmp_path, capsys, monkeypatch):
    raw = make_raw(tmp_path / "raw")
    out = tmp_path / "prep"
    first = prepare_pairs(raw, out, ignore_unknown=True)
    before = all_files(out)
    writes = []
    real_write = importer.write_image
    monkeypatch.setattr(
        importer, "write_image", lambda path, *a, **k: (writes.append(path), real_write(path, *a, **k))
    )
    capsys.readouterr()
    assert prepare_pairs(raw, out, ignore_unknown=True) == first
    assert writes == [] and all_files(out) == before
    assert "4 reused from an earlier run" in capsys.readouterr().out
    with pytest.raises(ValueError, match="prepared with --ignore-unknown on \\(now off\\)"):
        prepare_pairs(raw, out)


def test_nothing_preparable_is_an_error_naming_the_first_reason(tmp_path):
    raw = make_raw(tmp_path / "raw", ids=(3, 11))
    with pytest.raises(ValueError, match="no sample could be prepared; first reason: .*3_label.png: not"):
        prepare_pairs(raw, tmp_path / "prep")


def test_two_spawned_workers_write_the_same_files_as_one(tmp_path):
    raw = make_raw(tmp_path / "raw", ids=(1, 2, 3, 4, 5, 11))
    one = prepare_pairs(raw, tmp_path / "one", val_fraction=0.2, seed=1)
    two = prepare_pairs(raw, tmp_path / "two", val_fraction=0.2, seed=1, workers=2)
    assert one == two and all_files(tmp_path / "one") == all_files(tmp_path / "two")


def test_common_flags_parse_into_the_keywords_of_a_datasets_prepare(tmp_path):
    parser = argparse.ArgumentParser()
    add_common_arguments(
        parser, root_help="pairs folder", val_fraction=(0.0, "val share"), test_fraction=(None, "test share")
    )
    defaults = parser.parse_args(["--root", "r", "--out", "o"])
    assert (defaults.root, defaults.out) == (Path("r"), Path("o"))
    assert common_options(defaults) == {
        "size": 512,
        "workers": 1,
        "val_fraction": 0.0,
        "test_fraction": None,
        "seed": 0,
        "limit": None,
    }
    with pytest.raises(SystemExit):
        parser.parse_args(["--root", "r", "--out", "o", "--workers", "0"])
    raw = make_raw(tmp_path / "raw")
    args = parser.parse_args(
        [
            "--root",
            str(raw),
            "--out",
            str(tmp_path / "prep"),
            "--size",
            "8",
            "--workers",
            "1",
            "--val-fraction",
            "0.5",
            "--test-fraction",
            "0",
            "--seed",
            "2",
            "--limit",
            "2",
        ]
    )
    meta = prepare_pairs(args.root, args.out, **common_options(args))
    assert meta["size"] == 8 and meta["counts"] == {"train": 1, "val": 1, "test": 0}
    assert meta["split"] == {"seed": 2}
