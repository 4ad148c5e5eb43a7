"""python -m data_prep celebamask: raw CelebAMask-HQ tree -> prepared dataset.

RAW/CelebA-HQ-img/{i}.jpg  +  RAW/CelebAMask-HQ-mask-anno/{i // 2000}/{i:05d}_{part}.png
-> PREP/images/{i}.jpg, PREP/masks/{i}.png, PREP/splits/*.txt, PREP/dataset.json
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from configs import CLASS_ID, CLASSES, DEFAULT_PAINT_ORDER
from configs.classes import validate_paint_order
from configs.errors import ConfigError, MissingPathError
from data_prep.importer import (
    Found,
    Importer,
    Sample,
    add_common_arguments,
    common_options,
    prepare_dataset,
    read_image,
)
from data_prep.layout import RAW_ANNO_DIR, RAW_IDS_PER_FOLDER, RAW_IMAGE_DIR, DatasetError, decode
from data_prep.splits import check_fraction, make_splits, read_split_file

SOURCE = "celebamask-hq"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
MASK_NAME = re.compile(r"^(\d+)_(.+)\.png$", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------
# Reading raw files


def read_part_mask(path: Path) -> np.ndarray:
    """Read one part mask in any PNG mode (L, LA, RGB, RGBA, P, 1, 16-bit) as a bool array.

    A pixel is set if any colour channel is > 127; where the file has alpha, a transparent pixel
    (alpha <= 127) is not set (a grey+alpha mask is opaque everywhere, so alpha alone means nothing).
    """
    mask, _ = decode(path, cv2.IMREAD_UNCHANGED, "mask image")
    if mask.dtype == np.uint16:
        mask = (mask >> 8).astype(np.uint8)  # compare the high byte: > 127 of 255 scale
    elif mask.dtype != np.uint8:
        raise DatasetError(f"{path}: expected an 8- or 16-bit mask, got {mask.dtype}")
    if mask.ndim == 2:
        return mask > 127
    channels = cv2.split(mask)  # contiguous planes: cv2.max over them is far faster than .max(axis=2)
    colour = channels[0]
    for channel in channels[1:3]:
        colour = cv2.max(colour, channel)
    is_set = colour > 127
    if len(channels) == 4:
        is_set &= channels[3] > 127
    return is_set


def build_label_map(parts: Iterable[tuple[int, Path]]) -> np.ndarray:
    """Stack part masks (class id, file), given in paint order, into a uint8 label map: later wins."""
    label = None
    first = None
    for class_id, path in parts:
        is_set = read_part_mask(path)
        if label is None:
            label, first = np.zeros(is_set.shape, dtype=np.uint8), path
        elif is_set.shape != label.shape:
            raise DatasetError(
                f"{path}: mask is {is_set.shape[1]}x{is_set.shape[0]} but "
                f"{first.name} is {label.shape[1]}x{label.shape[0]}"
            )
        np.putmask(label, is_set, class_id)
    if label is None:
        raise DatasetError("no part masks to stack")
    return label


# ---------------------------------------------------------------------------------------------
# Finding samples


def find_images(root: Path) -> dict[int, Path]:
    """Map id -> image file under RAW/CelebA-HQ-img ({id}.jpg; .jpeg/.png also accepted)."""
    if not root.is_dir():
        raise MissingPathError(
            f"{root}: raw dataset root not found (expected a folder holding "
            f"{RAW_IMAGE_DIR}/ and {RAW_ANNO_DIR}/)"
        )
    image_dir = root / RAW_IMAGE_DIR
    if not image_dir.is_dir():
        raise MissingPathError(
            f"{image_dir}: image folder not found (expected the raw CelebAMask-HQ "
            f"layout {RAW_IMAGE_DIR}/{{id}}.jpg)"
        )
    images: dict[int, Path] = {}
    duplicates: set[int] = set()
    for path in image_dir.iterdir():
        if path.suffix.lower() in IMAGE_SUFFIXES and path.stem.isdigit() and path.is_file():
            sample_id = int(path.stem)
            if sample_id in images:
                duplicates.add(sample_id)
            images[sample_id] = path
    if duplicates:
        raise DatasetError(
            f"{image_dir}: several image files for id(s) {sorted(duplicates)[:10]}; "
            f"expected one {{id}}.jpg per id"
        )
    if not images:
        raise DatasetError(f"{image_dir}: no images named {{id}}.jpg found")
    return images


def find_masks(root: Path, ids: Iterable[int]) -> tuple[dict[int, dict[str, Path]], list[str]]:
    """Map id -> {part: file} from RAW/CelebAMask-HQ-mask-anno/{id // 2000}/, plus warnings.

    One directory listing per anno folder instead of 18 existence checks per id.
    """
    anno = root / RAW_ANNO_DIR
    if not anno.is_dir():
        raise MissingPathError(
            f"{anno}: mask folder not found (expected {RAW_ANNO_DIR}/{{id // 2000}}/{{id:05d}}_{{part}}.png)"
        )
    wanted = set(ids)
    folders = sorted({i // RAW_IDS_PER_FOLDER for i in wanted})
    present = [k for k in folders if (anno / str(k)).is_dir()]
    if not present:
        raise MissingPathError(
            f"{anno}: none of the mask folders {folders[:5]}... found "
            f"(expected {RAW_ANNO_DIR}/{{id // {RAW_IDS_PER_FOLDER}}}/)"
        )
    masks: dict[int, dict[str, Path]] = {}
    ignored: list[str] = []
    for k in present:
        for entry in (anno / str(k)).iterdir():
            match = MASK_NAME.match(entry.name)
            if match is None:
                ignored.append(entry.name)
                continue
            sample_id, part = int(match.group(1)), match.group(2)
            if part not in CLASS_ID or part == CLASSES[0] or sample_id // RAW_IDS_PER_FOLDER != k:
                ignored.append(f"{k}/{entry.name}")
                continue
            if sample_id in wanted:
                masks.setdefault(sample_id, {})[part] = entry
    warnings = []
    if ignored:
        warnings.append(
            f"{anno}: ignored {len(ignored)} file(s) that are not {{id:05d}}_{{part}}.png "
            f"of a known part in folder id // {RAW_IDS_PER_FOLDER} (e.g. {ignored[0]})"
        )
    return masks, warnings


def _missing_masks_reason(root: Path, sample_id: int) -> str:
    folder = root / RAW_ANNO_DIR / str(sample_id // RAW_IDS_PER_FOLDER)
    if not folder.is_dir():
        return f"{folder}: mask folder not found (no part masks for this image)"
    return f"{folder}: no part masks {sample_id:05d}_{{part}}.png for this image"


def find_samples(root: Path, limit: int | None, order: Sequence[str]) -> Found:
    """The first `limit` ids with an image, each with its part masks in paint order."""
    images = find_images(root)
    ids = sorted(images)[:limit]
    masks, warnings = find_masks(root, ids)
    rank = {name: position for position, name in enumerate(order)}
    samples = [
        Sample(
            str(i),
            images[i],
            tuple(
                (CLASS_ID[part], path) for part, path in sorted(masks[i].items(), key=lambda kv: rank[kv[0]])
            ),
        )
        for i in ids
        if i in masks
    ]
    skipped = {str(i): _missing_masks_reason(root, i) for i in ids if i not in masks}
    return Found([str(i) for i in ids], samples, skipped, warnings)


def convert_sample(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """Read one sample's image and stack its part masks (sample.annotation) into a label map."""
    image = read_image(sample.image)
    label = build_label_map(sample.annotation)
    (ih, iw), (mh, mw) = image.shape[:2], label.shape
    if abs(iw / ih - mw / mh) > 0.01:
        raise DatasetError(
            f"{sample.image}: image is {iw}x{ih} but its masks are {mw}x{mh} (different aspect ratios)"
        )
    return image, label


# ---------------------------------------------------------------------------------------------
# The whole dataset


def prepare(
    root: str | Path,
    out: str | Path,
    *,
    size: int = 512,
    workers: int = 1,
    split_file: str | Path | None = None,
    val_fraction: float = 0.1,
    test_fraction: float | None = None,
    seed: int = 0,
    paint_order: Sequence[str] | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> dict:
    """Prepare a raw CelebAMask-HQ tree into a prepared dataset; returns dataset.json's content.

    Re-running over the same output reuses finished samples. test_fraction defaults to 0.1 and
    cannot be given with split_file (ids not listed there are the test split).
    """
    order = validate_paint_order(paint_order if paint_order is not None else DEFAULT_PAINT_ORDER)
    check_fraction("val_fraction", val_fraction)
    if split_file is not None and test_fraction is not None:
        raise ConfigError(
            "give either a split file (unlisted ids are the test split) or a test fraction, not both"
        )
    test_fraction = 0.1 if test_fraction is None else check_fraction("test_fraction", test_fraction)
    train_ids = read_split_file(split_file) if split_file is not None else None
    split_info = {
        "method": "file" if split_file is not None else "random",
        "val_fraction": val_fraction,
        "seed": seed,
    }
    if split_file is not None:
        split_info["split_file"] = str(Path(split_file).resolve())
    else:
        split_info["test_fraction"] = test_fraction

    def split(ids: list[str]) -> dict[str, list[str]]:
        if train_ids is not None and not {str(i) for i in train_ids} & set(ids):
            print(
                f"warning: {split_file}: none of its ids has an image; every sample goes to test",
                file=sys.stderr,
            )
        return make_splits(
            ids, train_ids=train_ids, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed
        )

    importer = Importer(
        name="celebamask",
        source=SOURCE,
        find_samples=partial(find_samples, order=order),
        convert_sample=convert_sample,
        split=split,
        settings={"paint_order": order},
        meta=lambda tally: {"paint_order": list(order), "split": split_info},
    )
    return prepare_dataset(importer, root, out, size=size, workers=workers, limit=limit, progress=progress)


# ---------------------------------------------------------------------------------------------
# CLI


def _paint_order(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(
        parser,
        root_help=f"raw CelebAMask-HQ folder holding {RAW_IMAGE_DIR}/ and {RAW_ANNO_DIR}/",
        val_fraction=(
            0.1,
            ("fraction of the training ids (with --split-file) or of all ids -> val (default 0.1)"),
        ),
        test_fraction=(None, "fraction of all ids -> test, without --split-file (default 0.1)"),
    )
    parser.add_argument(
        "--split-file",
        type=Path,
        default=None,
        help="training ids, one int per line: listed -> train, the rest -> test",
    )
    parser.add_argument(
        "--paint-order",
        type=_paint_order,
        default=None,
        help="comma-separated part names, later wins (default: " + ",".join(DEFAULT_PAINT_ORDER) + ")",
    )


def main(args: argparse.Namespace) -> int:
    prepare(
        args.root, args.out, **common_options(args), split_file=args.split_file, paint_order=args.paint_order
    )
    return 0
