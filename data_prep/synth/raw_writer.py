"""Write faces in the raw CelebAMask-HQ layout (data_prep.layout): images, half-size part masks, mapping."""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

from configs.errors import ConfigError
from data_prep.atomic import write_image, write_text
from data_prep.importer import run_tasks
from data_prep.layout import RAW_IMAGE_DIR, RAW_MAPPING_FILE, RAW_MAPPING_HEADER, raw_mask_path
from data_prep.synth.render import PARTS, render_face


def write_face(index: int, out: Path, size: int, seed: int) -> int:
    """Render face `index` and write its image and part masks; returns the number of parts."""
    rng = np.random.default_rng([seed, index])
    img, masks = render_face(rng, size)
    quality = int(rng.integers(60, 96))
    half = size // 2
    written = 0
    for part in PARTS:
        path = raw_mask_path(out, index, part)
        small = None
        if part in masks:
            small = cv2.resize(masks[part].astype(np.uint8) * 255, (half, half), interpolation=cv2.INTER_AREA)
            small = np.where(small > 127, 255, 0).astype(np.uint8)
        if small is not None and small.any():
            write_image(path, small)
            written += 1
        else:  # a rerun into the same folder must not keep a stale part
            path.unlink(missing_ok=True)
    write_image(out / RAW_IMAGE_DIR / f"{index}.jpg", img, jpeg_quality=quality)
    return written


def _check_args(num: int, size: int, workers: int) -> None:
    if num < 1:
        raise ConfigError(f"--num must be >= 1, got {num}")
    if size < 32 or size % 2:
        raise ConfigError(f"--size must be an even number >= 32 (masks are written at size // 2), got {size}")
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")


def _remove_stale(out: Path, num: int) -> None:
    """Drop faces beyond num left by an earlier, larger run into the same folder."""
    mapping = out / RAW_MAPPING_FILE
    if not mapping.is_file():
        return
    lines = mapping.read_text().splitlines()
    if not lines or lines[0].split() != RAW_MAPPING_HEADER.split():
        return
    for line in lines[1:]:
        fields = line.split()
        ours = len(fields) == 3 and fields[0].isdigit() and fields[2].startswith("synth_")
        if ours and int(fields[0]) >= num:
            i = int(fields[0])
            (out / RAW_IMAGE_DIR / f"{i}.jpg").unlink(missing_ok=True)
            for part in PARTS:
                raw_mask_path(out, i, part).unlink(missing_ok=True)


def generate(
    out: str | Path, num: int, size: int = 256, seed: int = 0, workers: int = 1, progress: bool = True
) -> Path:
    """Write num synthetic faces to out in the raw CelebAMask-HQ layout; returns out.

    Face i depends only on (seed, i), so the output is the same for any number of workers.
    """
    _check_args(num, size, workers)
    out = Path(out)
    (out / RAW_IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    _remove_stale(out, num)
    job = functools.partial(write_face, out=out, size=size, seed=seed)
    for _ in run_tasks(job, range(num), workers, progress, f"synth faces {size}px"):
        pass
    write_text(
        out / RAW_MAPPING_FILE,
        RAW_MAPPING_HEADER + "\n" + "".join(f"{i} {i} synth_{i:06d}.jpg\n" for i in range(num)),
    )
    return out
