"""python -m data_prep lapa: LaPa (Liu et al., AAAI 2020) -> prepared dataset.

ROOT/{train,val,test}/images/{stem}.jpg + ROOT/{split}/labels/{stem}.png (11 LaPa IDs)
(ROOT/{split}/landmarks/{stem}.txt, 106 points, is not used: the prepared layout holds none)
-> PREP/images/{stem}.jpg, PREP/masks/{stem}.png, PREP/splits/*.txt (LaPa's own), PREP/dataset.json

LaPa photos come at any size and aspect ratio; each is padded to a square (centred, image black,
label IGNORE_INDEX: no loss, no score there) before the resize, so faces are never squashed.

Two label sets (configs.label_sets):
- celebamask19 (default), to mix LaPa into 19-class training: each LaPa class becomes our class of
  the same meaning (left eyebrow -> l_brow, inner mouth -> mouth, ...). LaPa has no neck, ears,
  clothes, hat, glasses or jewellery: its skin holds the ears (and any glasses frame), its
  background holds the neck, clothes and everything worn. Trained as they are, LaPa would teach
  that necks and clothes are background, against CelebAMask-HQ. So by default LaPa's background
  is written as IGNORE_INDEX (`--ignore background`): only pixels whose meaning both datasets share
  are learned from LaPa, and ears in LaPa's skin are the one remaining (small) mislabel;
  `--ignore skin background` drops that too, `--ignore none` keeps everything.
- lapa11: LaPa's IDs as they are, to score with `python -m ensemble run --label-set lapa11`
  (not for 19-class training: dataset.json says "label_set": "lapa11").
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from configs import CLASS_ID, FLIP_LUT, IGNORE_INDEX
from configs.errors import ConfigError, MissingPathError
from configs.label_sets import LAPA11
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
from data_prep.layout import DatasetError, read_label_map
from data_prep.left_right import left_right_check, lr_vote, warn_if_mirrored
from data_prep.splits import check_fraction, make_splits, sorted_ids

SOURCE = "lapa"
SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
LABEL_SETS = ("celebamask19", "lapa11")


def class_lut(
    label_set: str = "celebamask19", ignore: tuple[str, ...] = ("background",), swap_lr: bool = False
):
    """256-entry uint8 table: LaPa ID -> written ID (values LaPa does not define -> IGNORE_INDEX).

    ignore: LaPa class names (configs.label_sets.LAPA11.classes) written as IGNORE_INDEX.
    """
    lut = np.full(256, IGNORE_INDEX, np.uint8)
    if label_set == "lapa11":
        lut[: LAPA11.num_classes] = np.arange(LAPA11.num_classes)
        if swap_lr:  # swap LaPa's left/right IDs through the 19-class flip table
            lut[: LAPA11.num_classes] = LAPA11.to_set_lut[FLIP_LUT[LAPA11.from_set_lut[: LAPA11.num_classes]]]
        return lut
    lut[: LAPA11.num_classes] = LAPA11.representative  # the class of the same name
    for name in ignore:
        lut[LAPA11.classes.index(name)] = IGNORE_INDEX
    return FLIP_LUT[lut] if swap_lr else lut


def label_mapping(lut: np.ndarray, label_set: str) -> dict[str, str]:
    """LaPa name -> written class name ("ignore" for IGNORE_INDEX), as dataset.json records it."""
    names = LAPA11.classes if label_set == "lapa11" else tuple(CLASS_ID)
    return {
        shown: "ignore" if lut[i] == IGNORE_INDEX else names[int(lut[i])]
        for i, shown in enumerate(LAPA11.display_names)
    }


def pad_to_square(image: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre both in a square: image padded black, label padded IGNORE_INDEX."""
    h, w = label.shape
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    pads = (top, side - h - top, left, side - w - left)
    image = cv2.copyMakeBorder(image, *pads, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    label = cv2.copyMakeBorder(label, *pads, cv2.BORDER_CONSTANT, value=IGNORE_INDEX)
    return image, label


def convert_sample(sample: Sample, lut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One LaPa image and label map -> (square BGR image, square label map in the written IDs)."""
    image = read_image(sample.image)
    label = read_label_map(sample.annotation)
    if image.shape[:2] != label.shape:
        raise DatasetError(
            f"{sample.annotation}: label map is {label.shape[1]}x{label.shape[0]} but "
            f"{sample.image.name} is {image.shape[1]}x{image.shape[0]}"
        )
    present = np.flatnonzero(np.bincount(label.ravel(), minlength=256))
    unknown = [int(v) for v in present if v >= LAPA11.num_classes]
    if unknown:
        raise DatasetError(f"{sample.annotation}: label value(s) {unknown[:10]} are not LaPa labels (0..10)")
    return pad_to_square(image, lut[label])


def lr_vote_lapa11(label: np.ndarray) -> int:
    """lr_vote of a map in LaPa IDs (through the representative 19-class IDs)."""
    return lr_vote(LAPA11.from_set_lut[label])


def find_samples(root: Path, limit: int | None) -> tuple[Found, dict[str, str]]:
    """(Found, id -> LaPa split folder) of ROOT/{split}/images + labels; the first `limit` ids."""
    if not root.is_dir():
        raise MissingPathError(f"{root}: LaPa folder not found (expected train/, val/, test/ inside)")
    present = [s for s in SPLITS if (root / s / "images").is_dir()]
    if not present:
        raise DatasetError(
            f"{root}: no LaPa split folders ({', '.join(f'{s}/images' for s in SPLITS)}) found"
        )
    split_of: dict[str, str] = {}
    images: dict[str, Path] = {}
    skipped: dict[str, str] = {}
    warnings: list[str] = []
    for split in present:
        for path in sorted((root / split / "images").iterdir()):
            if not (path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES):
                continue
            if path.stem in images:
                warnings.append(
                    f"{path}: id {path.stem} is also in {split_of[path.stem]}/; this one is ignored"
                )
                continue
            images[path.stem], split_of[path.stem] = path, split
    ids = sorted_ids(images)[:limit]
    samples = []
    for i in ids:
        label = root / split_of[i] / "labels" / f"{i}.png"
        if label.is_file():
            samples.append(Sample(i, images[i], label))
        else:
            skipped[i] = f"{images[i]}: no label map {label}"
    return Found(ids, samples, skipped, warnings), split_of


def folder_splits(ids: list[str], split_of: dict[str, str]) -> dict[str, list[str]]:
    """LaPa's own train/val/test folders as the splits."""
    return {s: [i for i in ids if split_of[i] == s] for s in SPLITS}


def prepare(
    root: str | Path,
    out: str | Path,
    *,
    size: int = 512,
    workers: int = 1,
    val_fraction: float | None = None,
    test_fraction: float | None = None,
    seed: int = 0,
    limit: int | None = None,
    label_set: str = "celebamask19",
    ignore: tuple[str, ...] = ("background",),
    swap_lr: bool = False,
    progress: bool = True,
) -> dict:
    """Prepare a LaPa tree into a prepared dataset; returns dataset.json's content.

    Splits are LaPa's own folders unless a fraction is given (then a seeded random split of all ids).
    """
    root = Path(root)
    if label_set not in LABEL_SETS:
        raise ConfigError(f"label set must be one of {LABEL_SETS}, got {label_set!r}")
    unknown = [n for n in ignore if n not in LAPA11.classes]
    if unknown:
        raise ConfigError(f"--ignore names {unknown}; expected LaPa classes {list(LAPA11.classes)} or none")
    ignore = () if label_set == "lapa11" else tuple(sorted(set(ignore)))
    random_split = val_fraction is not None or test_fraction is not None
    fractions = (val_fraction or 0.0, test_fraction or 0.0)
    for name, value in zip(("val_fraction", "test_fraction"), fractions):
        check_fraction(name, value)
    found, split_of = find_samples(root, limit)
    lut = class_lut(label_set, ignore, swap_lr)

    def meta(tally: Tally) -> dict:
        extra = {
            "label_set": label_set,
            "ignore": list(ignore),
            "swap_lr": swap_lr,
            "label_map": label_mapping(lut, label_set),
            "ignore_pixels": int(tally.pixel_counts[IGNORE_INDEX]),
            "left_right_check": left_right_check(tally.stats),
            "split": {
                "method": "random",
                "val_fraction": fractions[0],
                "test_fraction": fractions[1],
                "seed": seed,
            }
            if random_split
            else {"method": "lapa folders"},
        }
        if label_set == "lapa11":  # the 19-class keys would name LaPa IDs wrongly: LaPa's own instead
            counts = tally.pixel_counts[: LAPA11.num_classes]
            total = float(counts.sum()) or 1.0
            extra["classes"] = list(LAPA11.display_names)
            extra["class_pixels"] = {n: int(c) for n, c in zip(LAPA11.display_names, counts)}
            extra["class_frequency"] = {n: float(c) / total for n, c in zip(LAPA11.display_names, counts)}
        return extra

    split = (
        partial(make_splits, val_fraction=fractions[0], test_fraction=fractions[1], seed=seed)
        if random_split
        else partial(folder_splits, split_of=split_of)
    )
    importer = Importer(
        name=SOURCE,
        source=SOURCE,
        find_samples=lambda _root, _limit: found,
        convert_sample=partial(convert_sample, lut=lut),
        split=split,
        settings={"label_set": label_set, "ignore": list(ignore), "swap_lr": swap_lr},
        meta=meta,
        sample_stat=lr_vote_lapa11 if label_set == "lapa11" else lr_vote,
        allow_ignore=True,
        to_classes=LAPA11.from_set_lut if label_set == "lapa11" else None,
    )
    result = prepare_dataset(importer, root, out, size=size, workers=workers, limit=limit, progress=progress)
    warn_if_mirrored(result["left_right_check"], swap_lr)
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(
        parser,
        root_help="LaPa folder holding {train,val,test}/images/*.jpg and {split}/labels/*.png",
        val_fraction=(None, "fraction of all ids -> val (default: LaPa's own val/ folder)"),
        test_fraction=(None, "fraction of all ids -> test (default: LaPa's own test/ folder)"),
    )
    parser.add_argument(
        "--label-set",
        choices=LABEL_SETS,
        default="celebamask19",
        help="celebamask19 (default): our 19 class IDs, to mix into training; lapa11: LaPa's own IDs, "
        "to score with `python -m ensemble run --label-set lapa11`",
    )
    parser.add_argument(
        "--ignore",
        nargs="+",
        default=["background"],
        metavar="CLASS",
        help="LaPa classes written as 255 (no loss, no score) with celebamask19: default background "
        "(it holds necks, clothes and hats, classes of their own in the 19); 'none' keeps all; "
        f"names: {', '.join(LAPA11.classes)}",
    )
    parser.add_argument(
        "--swap-lr",
        action="store_true",
        help="swap left/right labels (if left_right_check in dataset.json says they are mirrored)",
    )


def main(args: argparse.Namespace) -> int:
    ignore = () if args.ignore == ["none"] else tuple(args.ignore)
    prepare(
        args.root,
        args.out,
        **common_options(args),
        label_set=args.label_set,
        ignore=ignore,
        swap_lr=args.swap_lr,
    )
    return 0
