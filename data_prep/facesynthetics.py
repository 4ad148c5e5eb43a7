"""python -m data_prep facesynthetics: Microsoft FaceSynthetics -> prepared dataset.

ROOT/{id:06d}.png + ROOT/{id:06d}_seg.png   (ROOT/{id:06d}_ldmks.txt is not used)
-> PREP/images/{id}.jpg, PREP/masks/{id}.png, PREP/splits/*.txt, PREP/dataset.json
"""

from __future__ import annotations

import argparse
import re
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from configs import CLASS_ID, FLIP_LUT, IGNORE_INDEX
from configs.errors import ConfigError, MissingPathError
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
from data_prep.layout import DatasetError, decode
from data_prep.left_right import left_right_check, lr_vote, warn_if_mirrored
from data_prep.splits import check_fraction, make_splits, sorted_ids

SOURCE = "facesynthetics"
IMAGE_NAME = re.compile(r"^(\d+)\.png$", re.IGNORECASE)
SEG_NAME = re.compile(r"^(\d+)_seg\.png$", re.IGNORECASE)

# FaceSynthetics' label IDs, from the dataset README (github.com/microsoft/FaceSynthetics).
FS_LABELS: dict[int, str] = {
    0: "BACKGROUND",
    1: "SKIN",
    2: "NOSE",
    3: "RIGHT_EYE",
    4: "LEFT_EYE",
    5: "RIGHT_BROW",
    6: "LEFT_BROW",
    7: "RIGHT_EAR",
    8: "LEFT_EAR",
    9: "MOUTH_INTERIOR",
    10: "TOP_LIP",
    11: "BOTTOM_LIP",
    12: "NECK",
    13: "HAIR",
    14: "BEARD",
    15: "CLOTHING",
    16: "GLASSES",
    17: "HEADWEAR",
    18: "FACEWEAR",
    255: "IGNORE",
}

# FaceSynthetics name -> our class name; None = ignore (IGNORE_INDEX, no loss, no metric).
#
# Left/right: RIGHT_* is taken as the subject's right, as CelebAMask-HQ's r_* is. The README does
# not say which; the labels are rendered from a 3D head model whose parts are named anatomically
# (the model's own left and right), and independent FaceSynthetics->CelebAMask-HQ converters on
# GitHub map RIGHT_EYE->r_eye the same way. dataset.json's "left_right_check" counts, per sample,
# whether r_eye lies on the image's left (the subject's right in a frontal photo), so a user sees
# on the real data whether the convention holds; --swap-lr flips it.
FS_TO_CLASS: dict[str, str | None] = {
    "BACKGROUND": "background",
    "SKIN": "skin",
    "NOSE": "nose",
    "RIGHT_EYE": "r_eye",
    "LEFT_EYE": "l_eye",
    "RIGHT_BROW": "r_brow",
    "LEFT_BROW": "l_brow",
    "RIGHT_EAR": "r_ear",
    "LEFT_EAR": "l_ear",
    "MOUTH_INTERIOR": "mouth",
    "TOP_LIP": "u_lip",
    "BOTTOM_LIP": "l_lip",
    "NECK": "neck",
    "HAIR": "hair",
    "BEARD": "skin",  # CelebAMask-HQ annotates facial hair as skin
    "CLOTHING": "cloth",
    "GLASSES": "eye_g",  # opaque lenses are GLASSES there; transparent ones show what is behind
    "HEADWEAR": "hat",
    # Masks, scarves over the face: CelebAMask-HQ has no such class. As skin it would teach that
    # fabric is skin; as cloth, that cloth grows over the mouth and nose. No label is the honest one.
    "FACEWEAR": None,
    "IGNORE": None,
}


def class_lut(swap_lr: bool = False) -> np.ndarray:
    """256-entry uint8 table: FaceSynthetics label -> our class ID (IGNORE_INDEX for ignored labels).

    Values FaceSynthetics does not define also map to IGNORE_INDEX; convert_sample refuses them first.
    """
    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for fs_id, fs_name in FS_LABELS.items():
        name = FS_TO_CLASS[fs_name]
        lut[fs_id] = IGNORE_INDEX if name is None else CLASS_ID[name]
    # The class table's flip permutation is exactly the l_/r_ swap (and keeps 255 as it is).
    return FLIP_LUT[lut] if swap_lr else lut


def label_mapping(swap_lr: bool = False) -> dict[str, str]:
    """FaceSynthetics name -> our class name ("ignore" for IGNORE_INDEX), as written to dataset.json."""
    lut = class_lut(swap_lr)
    names = {CLASS_ID[n]: n for n in CLASS_ID} | {IGNORE_INDEX: "ignore"}
    return {fs_name: names[int(lut[fs_id])] for fs_id, fs_name in FS_LABELS.items()}


# ---------------------------------------------------------------------------------------------
# Reading and checking


def read_seg(path: Path) -> np.ndarray:
    """Read a FaceSynthetics segmentation PNG as a uint8 (H, W) map of FaceSynthetics labels."""
    seg, _ = decode(path, cv2.IMREAD_UNCHANGED, "segmentation map")
    if seg.dtype != np.uint8:
        raise DatasetError(f"{path}: expected an 8-bit segmentation map, got {seg.dtype}")
    if seg.ndim == 3:
        # Grey re-saved as RGB(A) by some tool: identical colour channels still hold the labels.
        colour = seg[:, :, :3]
        if not (colour == colour[:, :, :1]).all():
            raise DatasetError(
                f"{path}: expected a single-channel label map, got {seg.shape[2]} different channels"
            )
        seg = np.ascontiguousarray(colour[:, :, 0])
    return seg


def convert_sample(sample: Sample, swap_lr: bool) -> tuple[np.ndarray, np.ndarray]:
    """Read one sample's image and segmentation map (sample.annotation) -> (image, our label map)."""
    image = read_image(sample.image)
    seg = read_seg(sample.annotation)
    if image.shape[:2] != seg.shape:
        raise DatasetError(
            f"{sample.annotation}: segmentation map is {seg.shape[1]}x{seg.shape[0]} but "
            f"{sample.image.name} is {image.shape[1]}x{image.shape[0]}"
        )
    present = np.flatnonzero(np.bincount(seg.ravel(), minlength=256))
    unknown = [int(v) for v in present if int(v) not in FS_LABELS]
    if unknown:
        raise DatasetError(
            f"{sample.annotation}: label value(s) {unknown[:10]} are not FaceSynthetics "
            f"labels (expected 0..18 or 255)"
        )
    return image, class_lut(swap_lr)[seg]


# ---------------------------------------------------------------------------------------------
# The whole dataset


def _scan(folder: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """(id -> image file, id -> segmentation file) of the files directly in folder."""
    images: dict[str, Path] = {}
    segs: dict[str, Path] = {}
    for path in folder.iterdir():
        for pattern, found in ((IMAGE_NAME, images), (SEG_NAME, segs)):
            match = pattern.match(path.name)
            if match and path.is_file():
                found[match.group(1)] = path
    return images, segs


def _find_files(root: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """Map id -> {id}.png and id -> {id}_seg.png in ROOT (ids keep their zero padding)."""
    if not root.is_dir():
        raise MissingPathError(
            f"{root}: FaceSynthetics folder not found (expected the unzipped "
            f"dataset: {{id:06d}}.png and {{id:06d}}_seg.png files)"
        )
    images, segs = _scan(root)
    if images or segs:
        return images, segs
    # The zips unpack into a folder of their own (e.g. dataset_1000/): point the user at it.
    nested = [d for d in sorted(root.iterdir()) if d.is_dir() and any(_scan(d))]
    hint = f"; did you mean --root {nested[0]}?" if nested else ""
    raise DatasetError(f"{root}: no FaceSynthetics files {{id:06d}}.png / {{id:06d}}_seg.png found{hint}")


def find_samples(root: Path, limit: int | None) -> Found:
    """The first `limit` ids with an image or a segmentation map; those without both are skipped."""
    images, segs = _find_files(root)
    ids = sorted_ids(images.keys() | segs.keys())[:limit]
    skipped = {}
    for i in ids:
        if i not in segs:
            skipped[i] = f"{images[i]}: no segmentation map {i}_seg.png beside it"
        elif i not in images:
            skipped[i] = f"{segs[i]}: no image {i}.png beside it"
    return Found(ids, [Sample(i, images[i], segs[i]) for i in ids if i in images and i in segs], skipped)


def prepare(
    root: str | Path,
    out: str | Path,
    *,
    size: int = 512,
    workers: int = 1,
    val_fraction: float = 0.0,
    test_fraction: float = 0.0,
    seed: int = 0,
    limit: int | None = None,
    swap_lr: bool = False,
    progress: bool = True,
) -> dict:
    """Prepare an unzipped FaceSynthetics folder into a prepared dataset; returns dataset.json's content.

    Re-running over the same output reuses finished samples. The fractions default to 0 (all
    train): the dataset is meant as extra training data, and a val split of it would mix synthetic
    faces into the validation score of a model mixed with real ones.
    """
    check_fraction("val_fraction", val_fraction)
    check_fraction("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError(f"val_fraction + test_fraction must be < 1, got {val_fraction} + {test_fraction}")

    def meta(tally: Tally) -> dict:
        return {
            "swap_lr": swap_lr,
            "label_map": label_mapping(swap_lr),
            "ignore_pixels": int(tally.pixel_counts[IGNORE_INDEX]),
            "left_right_check": left_right_check(tally.stats),
            "split": {
                "method": "random",
                "val_fraction": val_fraction,
                "test_fraction": test_fraction,
                "seed": seed,
            },
        }

    importer = Importer(
        name=SOURCE,
        source=SOURCE,
        find_samples=find_samples,
        convert_sample=partial(convert_sample, swap_lr=swap_lr),
        split=partial(make_splits, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed),
        settings={"swap_lr": swap_lr},
        meta=meta,
        sample_stat=lr_vote,
        allow_ignore=True,
    )
    result = prepare_dataset(importer, root, out, size=size, workers=workers, limit=limit, progress=progress)
    warn_if_mirrored(result["left_right_check"], swap_lr)
    return result


# ---------------------------------------------------------------------------------------------
# CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(
        parser,
        root_help="unzipped FaceSynthetics folder holding {id:06d}.png and {id:06d}_seg.png",
        val_fraction=(0.0, "fraction of all ids -> val (default 0: extra training data only)"),
        test_fraction=(0.0, "fraction of all ids -> test (default 0)"),
    )
    parser.add_argument(
        "--swap-lr",
        action="store_true",
        help="map RIGHT_* to l_* and LEFT_* to r_* (if the labels turn out to be the "
        "viewer's right; see left_right_check in dataset.json)",
    )


def main(args: argparse.Namespace) -> int:
    prepare(args.root, args.out, **common_options(args), swap_lr=args.swap_lr)
    return 0
