"""The dataset layouts: the raw CelebAMask-HQ tree (read by its importer, written by synth) and
the prepared layout every importer writes and every reader uses.

    RAW/CelebA-HQ-img/{i}.jpg   RAW/CelebAMask-HQ-mask-anno/{i // 2000}/{i:05d}_{part}.png
    RAW/CelebA-HQ-to-CelebA-mapping.txt
    PREP/images/{id}.jpg   PREP/masks/{id}.png   PREP/splits/{train,val,test}.txt   PREP/dataset.json
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from configs import CLASSES, NUM_CLASSES
from configs.errors import FaceParseError
from data_prep.atomic import write_json, write_text

SPLITS = ("train", "val", "test")

# Raw CelebAMask-HQ, as downloaded.
RAW_IMAGE_DIR = "CelebA-HQ-img"
RAW_ANNO_DIR = "CelebAMask-HQ-mask-anno"
RAW_MAPPING_FILE = "CelebA-HQ-to-CelebA-mapping.txt"
RAW_MAPPING_HEADER = "idx orig_idx orig_file"
RAW_IDS_PER_FOLDER = 2000  # the anno folder of id i is i // 2000


def raw_mask_path(root: Path, index: int, part: str) -> Path:
    """RAW/CelebAMask-HQ-mask-anno/{index // 2000}/{index:05d}_{part}.png"""
    return root / RAW_ANNO_DIR / str(index // RAW_IDS_PER_FOLDER) / f"{index:05d}_{part}.png"


class DatasetError(FaceParseError):
    """A prepared dataset that is missing or malformed."""


@dataclass(frozen=True)
class PreparedDataset:
    root: Path

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def masks(self) -> Path:
        return self.root / "masks"

    @property
    def splits(self) -> Path:
        return self.root / "splits"

    @property
    def meta_path(self) -> Path:
        return self.root / "dataset.json"

    def image_path(self, sample_id: str) -> Path:
        return self.images / f"{sample_id}.jpg"

    def mask_path(self, sample_id: str) -> Path:
        return self.masks / f"{sample_id}.png"

    def split_ids(self, split: str) -> list[str]:
        """Sample ids of one split, in file order."""
        if split not in SPLITS:
            raise DatasetError(f"unknown split {split!r}; expected one of {SPLITS}")
        path = self.splits / f"{split}.txt"
        if not path.is_file():
            raise DatasetError(f"{path}: split file not found (is {self.root} a prepared dataset?)")
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]

    def meta(self) -> dict:
        if not self.meta_path.is_file():
            raise DatasetError(f"{self.meta_path}: not found (is {self.root} a prepared dataset?)")
        return json.loads(self.meta_path.read_text())

    def label_set(self) -> str:
        """The class IDs its masks hold: 'celebamask19' (our table) unless dataset.json names another."""
        return self.meta().get("label_set", "celebamask19") if self.meta_path.is_file() else "celebamask19"

    def require_training_classes(self) -> None:
        """Training and class weights read masks as our 19 classes: refuse a set with other IDs."""
        label_set = self.label_set()
        if label_set != "celebamask19":
            raise DatasetError(
                f"{self.meta_path}: masks hold {label_set!r} class IDs, not the 19-class table; "
                "re-prepare it without --label-set to train on it (that set is for scoring only)"
            )

    def class_frequencies(self) -> np.ndarray:
        """Per-class pixel frequency (sums to 1) from dataset.json."""
        freq = self.meta()["class_frequency"]
        return np.array([freq[name] for name in CLASSES], dtype=np.float64)


def write_splits(prep: PreparedDataset, splits: dict[str, list[str]]) -> None:
    for split in SPLITS:
        write_text(prep.splits / f"{split}.txt", "".join(f"{i}\n" for i in splits.get(split, [])))


def write_meta(
    prep: PreparedDataset,
    *,
    source: str,
    size: int,
    splits: dict[str, list[str]],
    pixel_counts: np.ndarray,
    skipped: list[dict],
    extra: dict | None = None,
) -> dict:
    """Write dataset.json: source, size, counts per split, per-class pixel frequency, skipped."""
    total = float(pixel_counts.sum()) or 1.0
    meta = {
        "source": source,
        "size": size,
        "classes": list(CLASSES),
        "counts": {s: len(splits.get(s, [])) for s in SPLITS},
        "class_pixels": {CLASSES[c]: int(pixel_counts[c]) for c in range(NUM_CLASSES)},
        "class_frequency": {CLASSES[c]: float(pixel_counts[c]) / total for c in range(NUM_CLASSES)},
        "skipped": skipped,
        **(extra or {}),
    }
    write_json(prep.meta_path, meta)
    return meta


def decode(path: str | Path, flags: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Read a file's bytes and decode them with OpenCV -> (image, bytes); failures name the file."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
        image = cv2.imdecode(data, flags) if data.size else None
    except OSError as err:
        raise DatasetError(f"{path}: cannot read ({err.strerror or err})") from None
    except cv2.error as err:
        raise DatasetError(f"{path}: not a readable {what} ({err.err or 'OpenCV error'})") from None
    if image is None:
        raise DatasetError(f"{path}: not a readable {what}")
    return image, data


def read_rgb(path: str | Path) -> np.ndarray:
    """Read any image OpenCV decodes as uint8 RGB, as displayed: EXIF orientation applied; grey,
    RGBA and 16-bit converted."""
    # IMREAD_UNCHANGED would keep the stored pixel order (a phone's portrait photo lying on its
    # side); ANYDEPTH|ANYCOLOR keeps 16-bit and grey but applies the EXIF orientation.
    image, _ = decode(path, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR, "image")
    if image.dtype == np.uint16:
        image = (image // 257).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def fit_pixels(image: np.ndarray, max_pixels: int | None) -> np.ndarray:
    """The image shrunk (area interpolation, aspect kept) to at most max_pixels pixels; None: as is."""
    h, w = image.shape[:2]
    size = scaled_size(h, w, max_pixels)
    return image if size == (h, w) else cv2.resize(image, size[::-1], interpolation=cv2.INTER_AREA)


def scaled_size(h: int, w: int, max_pixels: int | None) -> tuple[int, int]:
    """(H, W) scaled down so H * W <= max_pixels (unchanged when it already fits or max_pixels is None)."""
    if max_pixels is None or h * w <= max_pixels:
        return h, w
    scale = (max_pixels / (h * w)) ** 0.5
    return max(1, int(h * scale)), max(1, int(w * scale))


def read_label_map(path: str | Path) -> np.ndarray:
    """Read a uint8 label map PNG."""
    mask, _ = decode(path, cv2.IMREAD_UNCHANGED, "label map")
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise DatasetError(
            f"{path}: expected a single-channel uint8 label map, got {mask.shape} {mask.dtype}"
        )
    return mask
