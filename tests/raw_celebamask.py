"""A raw CelebAMask-HQ tree in miniature for the importer tests: part masks, images, expected maps."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from configs import CLASS_ID, DEFAULT_PAINT_ORDER
from data_prep import celebamask

MASK = 16  # part mask side (the real data: 512)
IMAGE = 32  # raw image side (the real data: 1024)


# --- raw fixture helpers ------------------------------------------------------------------------


def anno_path(raw: Path, sample_id: int, part: str) -> Path:
    return raw / "CelebAMask-HQ-mask-anno" / str(sample_id // 2000) / f"{sample_id:05d}_{part}.png"


def write_mask(path: Path, is_set: np.ndarray, mode: str = "L") -> None:
    """Write a bool part mask as a PNG in the given PIL mode (white on black)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    grey = np.where(is_set, 255, 0).astype(np.uint8)
    if mode == "L":
        image = Image.fromarray(grey, "L")
    elif mode == "1":
        image = Image.fromarray(grey, "L").convert("1")
    elif mode == "RGB":
        image = Image.fromarray(np.stack([grey] * 3, -1), "RGB")
    elif mode == "RGB_red":  # only one channel set: "any channel > 127" must still count it
        image = Image.fromarray(np.stack([grey, np.zeros_like(grey), np.zeros_like(grey)], -1), "RGB")
    elif mode == "RGBA":
        image = Image.fromarray(np.stack([grey] * 3 + [np.full_like(grey, 255)], -1), "RGBA")
    elif mode == "LA":  # opaque everywhere: alpha alone must not set pixels
        image = Image.fromarray(np.stack([grey, np.full_like(grey, 255)], -1), "LA")
    elif mode == "P":
        image = Image.fromarray(is_set.astype(np.uint8), "P")
        image.putpalette([0, 0, 0, 255, 255, 255])
    elif mode == "I16":
        image = Image.fromarray(is_set.astype(np.uint16) * 65535)
    else:
        raise AssertionError(mode)
    image.save(path)
    assert Image.open(path).mode in {"L", "1", "RGB", "RGBA", "LA", "P", "I;16", "I"}


def face_image(sample_id: int, side: int = IMAGE) -> np.ndarray:
    """A smooth RGB image (JPEG-friendly), different per id."""
    y, x = np.mgrid[0:side, 0:side]
    r = (x * 255 // side + sample_id * 37) % 256
    g = (y * 255 // side + sample_id * 11) % 256
    b = np.full_like(x, (sample_id * 53) % 256)
    return np.stack([r, g, b], -1).astype(np.uint8)


def write_image_file(
    raw: Path, sample_id: int, image: np.ndarray | None = None, suffix: str = ".jpg"
) -> Path:
    path = raw / "CelebA-HQ-img" / f"{sample_id}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    image = face_image(sample_id) if image is None else image
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


def box(y0: int, y1: int, x0: int, x1: int, side: int = MASK) -> np.ndarray:
    m = np.zeros((side, side), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def simple_parts(sample_id: int) -> dict[str, np.ndarray]:
    """Skin, nose, hair boxes that overlap, shifted per id so samples differ."""
    s = sample_id % 4
    return {"skin": box(2, 14, 2, 14), "nose": box(6 + s % 2, 10, 6, 10), "hair": box(0, 5, 0, 16 - s)}


def expected_label(parts: dict[str, np.ndarray], order=DEFAULT_PAINT_ORDER) -> np.ndarray:
    label = np.zeros((MASK, MASK), dtype=np.uint8)
    for name in order:
        if name in parts:
            label[parts[name]] = CLASS_ID[name]
    return label


def make_raw(raw: Path, samples: dict[int, dict[str, np.ndarray]], mode: str = "L") -> Path:
    for sample_id, parts in samples.items():
        write_image_file(raw, sample_id)
        for part, is_set in parts.items():
            write_mask(anno_path(raw, sample_id, part), is_set, mode)
    return raw


def prepare(raw: Path, out: Path, **kwargs) -> dict:
    kwargs.setdefault("size", MASK)
    return celebamask.prepare(raw, out, progress=False, **kwargs)


def all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- stacking and IDs ---------------------------------------------------------------------------
