"""What every raw-dataset importer shares: reading raw files, resizing, the worker pool, re-run checks."""
from __future__ import annotations

import argparse
import json
import multiprocessing
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
from tqdm import tqdm

from configs import IGNORE_INDEX, NUM_CLASSES
from data_prep.layout import DatasetError, PreparedDataset, decode, read_label_map

Task = TypeVar("Task")
Result = TypeVar("Result")

# A JPEG's start/end-of-image markers. OpenCV 4.x decodes a truncated JPEG "successfully" (grey bottom
# rows) and 5.x still decodes one cut just before the marker, so a missing marker is the cheap sign
# of a download cut short. 0xFFD9 cannot occur inside entropy-coded data (0xFF is always stuffed).
JPEG_SOI, JPEG_EOI = b"\xff\xd8", b"\xff\xd9"
JPEG_TAIL = 4096


# ---------------------------------------------------------------------------------------------
# Reading and resizing


def read_image(path: Path) -> np.ndarray:
    """Read a raw face image as uint8 BGR (grey, alpha and 16-bit are converted)."""
    image, data = decode(path, cv2.IMREAD_COLOR, "image")
    if data[:2].tobytes() == JPEG_SOI and JPEG_EOI not in data[-JPEG_TAIL:].tobytes():
        raise DatasetError(f"{path}: truncated JPEG (no end-of-image marker)")
    return image


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """Resize to size x size: area averaging when shrinking (no aliasing), bilinear when growing."""
    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return image
    shrink = size < h or size < w
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def resize_label_map(label: np.ndarray, size: int) -> np.ndarray:
    """Resize a label map to size x size with nearest neighbour (never invents IDs).

    INTER_NEAREST_EXACT rather than INTER_NEAREST: it samples pixel centres (as PIL's NEAREST does);
    INTER_NEAREST floors x * scale and drifts by up to half a source pixel at non-integer ratios.
    """
    if label.shape == (size, size):
        return label
    return cv2.resize(label, (size, size), interpolation=cv2.INTER_NEAREST_EXACT)


# ---------------------------------------------------------------------------------------------
# One sample's outputs


def finished_label(image_out: Path, mask_out: Path, size: int, *,
                   allow_ignore: bool = False) -> np.ndarray | None:
    """The label map of a sample an earlier run finished, or None if it must be prepared (again).

    allow_ignore: IGNORE_INDEX is a valid value (an importer that writes it); otherwise it means redo.
    """
    # Every file is written atomically and the mask last, so both existing = finished.
    if not (image_out.exists() and mask_out.exists()):
        return None
    try:
        label = read_label_map(mask_out)
    except DatasetError:
        return None  # not a label map of ours: prepare it again
    if label.shape != (size, size):
        return None  # written for another --size: prepare it again
    counts = np.bincount(label.ravel(), minlength=256)
    if allow_ignore:
        counts[IGNORE_INDEX] = 0
    if counts[NUM_CLASSES:].any():
        return None
    return label


def discard_outputs(*paths: Path) -> None:
    """Remove a skipped sample's outputs: an image left by a killed run must not outlive its sample."""
    for path in paths:
        path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# The whole dataset


def check_reuse(prep: PreparedDataset, source: str, settings: Mapping[str, Any]) -> None:
    """Refuse a re-run into a folder that source prepared with other settings (e.g. {"size": 512}).

    A re-run reuses finished samples as they are, so a folder written with another --size (or any
    setting that changes a sample's files) would end up holding both. A setting dataset.json does
    not record counts as different.
    """
    if not prep.meta_path.is_file():
        return
    try:
        meta = json.loads(prep.meta_path.read_text())
    except (OSError, ValueError):
        return  # unreadable: it is rewritten at the end
    if meta.get("source") != source:
        return
    # Through JSON, so a tuple compares equal to the list dataset.json holds.
    wanted = json.loads(json.dumps(dict(settings)))
    changed = [key for key, value in wanted.items() if meta.get(key) != value]
    if changed:
        was = ", ".join(f"{_flag(key)} {_show(meta.get(key))} (now {_show(wanted[key])})" for key in changed)
        raise ValueError(f"{prep.meta_path}: this folder was prepared with {was}; its finished "
                         f"samples would be reused as they are, so use a new --out")


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _show(value: Any) -> str:
    if value is None:
        return "unrecorded"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def remove_stale_temp_files(prep: PreparedDataset) -> None:
    """Temp files of a killed run's atomic writes (data_prep.atomic names them .NAME.*.tmp)."""
    for folder in (prep.images, prep.masks):
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)


def print_summary(source: str, root: Path, out: Path, meta: dict, done: Sequence[str],
                  skipped: Sequence[dict], reused: int) -> None:
    """Print a prepared dataset's one-line summary; raise if no sample could be prepared."""
    counts = ", ".join(f"{name} {n}" for name, n in meta["counts"].items())
    print(f"{source}: {len(done)} samples ({counts}), {len(skipped)} skipped"
          f"{' (reasons in dataset.json)' if skipped else ''}, {reused} reused from an earlier run "
          f"-> {out}")
    if not done:
        raise ValueError(f"{root}: no sample could be prepared; first reason: {skipped[0]['reason']}")


def _init_worker() -> None:
    # The processes are the parallelism; OpenCV's own thread pool in each would oversubscribe cores.
    cv2.setNumThreads(1)


def run_tasks(fn: Callable[[Task], Result], tasks: Sequence[Task], workers: int, progress: bool,
              desc: str) -> Iterable[Result]:
    """Yield fn(task) per task, in completion order, from worker processes (in-process for one), with a bar.

    fn and the tasks must pickle (a module-level function or a functools.partial of one): spawned
    workers import fn by name.
    """
    bar = tqdm(total=len(tasks), desc=desc, unit="img", disable=not progress, smoothing=0.05)
    with bar:
        if workers <= 1:
            for task in tasks:
                yield fn(task)
                bar.update()
            return
        # Chunks amortise inter-process overhead; several per worker keep the load balanced.
        chunksize = max(1, min(64, len(tasks) // (workers * 8)))
        # spawn, not fork: a forked child inherits OpenCV's thread-pool state without its threads
        # and hangs in its first parallel OpenCV call once the parent has used that pool.
        context = multiprocessing.get_context("spawn")
        with context.Pool(workers, initializer=_init_worker) as pool:
            for result in pool.imap_unordered(fn, tasks, chunksize=chunksize):
                yield result
                bar.update()


# ---------------------------------------------------------------------------------------------
# CLI


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value
