"""Input discovery: a folder of images or a prepared dataset split in submission order, with optional
ground truth, checked up front."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from configs import IGNORE_INDEX, NUM_CLASSES
from configs.errors import FaceParseError
from data_prep.layout import DatasetError, PreparedDataset, read_label_map, read_rgb

# File types OpenCV decodes (others in an image folder are ignored and listed).
IMAGE_EXTENSIONS = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".png",
        ".bmp",
        ".dib",
        ".tif",
        ".tiff",
        ".webp",
        ".jp2",
        ".pbm",
        ".pgm",
        ".ppm",
        ".pnm",
        ".pxm",
        ".sr",
        ".ras",
        ".exr",
        ".hdr",
        ".pic",
        ".avif",
    }
)


class InputError(FaceParseError):
    """Inputs that cannot be used (missing folder, duplicate stems, empty split ...)."""


@dataclass(frozen=True)
class ImageItem:
    """One input image: its stem (sort key and output name) and file."""

    stem: str
    path: Path


def sort_stems(stems: Iterable[str]) -> list[str]:
    """Ascending order: numeric when every stem is a number, natural order ("img2" < "img10") otherwise."""
    stems = list(stems)
    if all(s.isdecimal() for s in stems):
        return sorted(stems, key=lambda s: (int(s), s))
    return sorted(stems, key=natural_key)


def natural_key(stem: str) -> tuple:
    """Digit runs compare as numbers, the rest case-insensitively; ties broken by the raw stem."""
    parts = re.split(r"(\d+)", stem)
    key = tuple((0, int(p), "") if p.isdecimal() else (1, 0, p.casefold()) for p in parts if p)
    return key, stem


@dataclass
class ImageSet:
    """The images of one run in submission order, with ground truth masks when available."""

    items: list[ImageItem]
    source: str
    gt_paths: list[Path] | None = None
    ignored: list[str] = field(default_factory=list)  # folder entries that are not images
    sizes: dict[Path, tuple[int, int]] = field(default_factory=dict)  # (H, W) as decoded, set by validate

    @property
    def names(self) -> list[str]:
        return [item.path.name for item in self.items]


@dataclass(frozen=True)
class BadFile:
    path: Path
    reason: str

    def line(self) -> str:
        return f"{self.path}: {self.reason}"


def is_prepared(path: Path) -> bool:
    return (Path(path) / "dataset.json").is_file()


def discover(images: str | Path, split: str = "test", gt: str | Path | None = None) -> ImageSet:
    """Find the test images (a folder, or a prepared dataset's split) and their masks."""
    images = Path(images)
    if not images.exists():
        raise InputError(f"{images}: no such folder")
    if is_prepared(images):
        prep = PreparedDataset(images)
        try:
            ids = prep.split_ids(split)
        except DatasetError as err:
            raise InputError(str(err)) from None
        if not ids:
            raise InputError(f"{prep.splits / f'{split}.txt'}: split {split!r} is empty")
        ids = sort_stems(ids)
        items = [ImageItem(i, prep.image_path(i)) for i in ids]
        source = f"{images} (prepared, split {split})"
        gt_dir = Path(gt) if gt is not None else prep.masks
        image_set = ImageSet(items=items, source=source)
        if gt is not None or any(prep.mask_path(i).is_file() for i in ids):
            image_set.gt_paths = [gt_dir / f"{i}.png" for i in ids]
        return image_set
    if not images.is_dir():
        raise InputError(f"{images}: expected a folder of images or a prepared dataset (dataset.json)")
    by_stem: dict[str, list[Path]] = {}
    ignored = []
    for path in sorted(images.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
            by_stem.setdefault(path.stem, []).append(path)
        else:
            ignored.append(path.name)
    dupes = {s: p for s, p in by_stem.items() if len(p) > 1}
    if dupes:
        listing = "; ".join(f"{s}: {', '.join(p.name for p in ps)}" for s, ps in sorted(dupes.items()))
        raise InputError(f"{images}: several images share a stem (outputs are named by stem): {listing}")
    if not by_stem:
        raise InputError(f"{images}: no images found (extensions {sorted(IMAGE_EXTENSIONS)})")
    items = [ImageItem(s, by_stem[s][0]) for s in sort_stems(by_stem)]
    image_set = ImageSet(items=items, source=str(images), ignored=ignored)
    if gt is not None:
        image_set.gt_paths = [Path(gt) / f"{item.stem}.png" for item in items]
    return image_set


def _check_image(path: Path) -> tuple[tuple[int, int] | None, str | None]:
    try:
        image = read_rgb(path)
    except DatasetError as err:  # read errors and decode errors alike (layout.decode)
        return None, str(err).split(": ", 1)[-1]
    return image.shape[:2], None


def _check_mask(path: Path, size: tuple[int, int] | None) -> str | None:
    if not path.is_file():
        return "ground-truth mask not found"
    try:
        mask = read_label_map(path)
    except DatasetError as err:
        return str(err).split(": ", 1)[-1]
    if size is not None and mask.shape != size:
        return f"ground-truth mask is {mask.shape[1]}x{mask.shape[0]}, the image {size[1]}x{size[0]}"
    bad = np.unique(mask[(mask >= NUM_CLASSES) & (mask != IGNORE_INDEX)])
    if bad.size:
        return (
            f"ground-truth mask has values {bad[:5].tolist()} outside 0..{NUM_CLASSES - 1} and {IGNORE_INDEX}"
        )
    return None


def validate(
    image_set: ImageSet, workers: int = 4, progress: bool = True
) -> tuple[list[BadFile], list[BadFile]]:
    """Decode every image (and mask) once; returns (bad images, bad masks)."""
    workers = max(1, min(workers, os.cpu_count() or 1, 8))
    # Threads suffice: OpenCV releases the GIL while decoding.
    with ThreadPoolExecutor(workers) as pool:
        results = list(
            tqdm(
                pool.map(_check_image, [i.path for i in image_set.items]),
                total=len(image_set.items),
                desc="checking images",
                unit="img",
                disable=not progress,
            )
        )
        bad_images = [
            BadFile(item.path, reason) for item, (_, reason) in zip(image_set.items, results) if reason
        ]
        image_set.sizes = {item.path: size for item, (size, _) in zip(image_set.items, results) if size}
        bad_masks: list[BadFile] = []
        if image_set.gt_paths is not None:
            sizes = [size for size, _ in results]
            reasons = pool.map(_check_mask, image_set.gt_paths, sizes)
            bad_masks = [BadFile(p, r) for p, r in zip(image_set.gt_paths, reasons) if r]
    return bad_images, bad_masks
