"""Decode-check a prepared dataset once, before training starts: every image and label map of the
listed splits is read in parallel threads, and what passed is cached by file size and mtime in
PREP/.decode_check.json so the next run re-reads only files that changed."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from configs import IGNORE_INDEX, NUM_CLASSES
from data_prep.atomic import write_json
from data_prep.layout import DatasetError, PreparedDataset, read_label_map, read_rgb

CACHE_FILE = ".decode_check.json"
CACHE_VERSION = 1


def _stamp(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _check_sample(prep: PreparedDataset, sample_id: str) -> list[str]:
    """Problems of one sample, one 'FILE: reason' line each (empty when it trains fine)."""
    image_path, mask_path = prep.image_path(sample_id), prep.mask_path(sample_id)
    problems, image, mask = [], None, None
    for path, read in ((image_path, read_rgb), (mask_path, read_label_map)):
        if not path.is_file():
            problems.append(f"{path}: not found")
            continue
        try:
            if read is read_rgb:
                image = read(path)
            else:
                mask = read(path)
        except DatasetError as err:
            problems.append(str(err))
    if mask is not None:
        bad = np.unique(mask[(mask >= NUM_CLASSES) & (mask != IGNORE_INDEX)])
        if bad.size:
            problems.append(
                f"{mask_path}: label values {bad[:5].tolist()} outside 0..{NUM_CLASSES - 1} "
                f"and {IGNORE_INDEX}"
            )
        if image is not None and image.shape[:2] != mask.shape:
            problems.append(
                f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]}, its image "
                f"{image.shape[1]}x{image.shape[0]}"
            )
    return problems


def _read_cache(path: Path) -> dict[str, list]:
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    ok = isinstance(raw, dict) and raw.get("version") == CACHE_VERSION and isinstance(raw.get("good"), dict)
    return raw["good"] if ok else {}


def check_prepared(
    root: str | Path,
    splits: Sequence[str] = ("train", "val"),
    workers: int | None = None,
    progress: bool = True,
) -> list[str]:
    """Decode every sample of the splits (cached by size + mtime); returns one line per bad file."""
    prep = PreparedDataset(Path(root))
    ids = list(dict.fromkeys(i for split in splits for i in prep.split_ids(split)))
    cache_path = prep.root / CACHE_FILE
    cached = _read_cache(cache_path)
    stamps = {i: (_stamp(prep.image_path(i)), _stamp(prep.mask_path(i))) for i in ids}
    todo = [i for i in ids if None in stamps[i] or cached.get(i) != [*stamps[i][0], *stamps[i][1]]]
    workers = workers or min(8, os.cpu_count() or 1)
    # Threads suffice: OpenCV releases the GIL while decoding.
    with ThreadPoolExecutor(max(1, workers)) as pool:
        results = list(
            tqdm(
                pool.map(lambda i: _check_sample(prep, i), todo),
                total=len(todo),
                desc=f"checking {prep.root.name}",
                unit="sample",
                disable=not progress or not todo,
            )
        )
    problems = [line for lines in results for line in lines]
    failed = {i for i, lines in zip(todo, results) if lines}
    good = {i: [*stamps[i][0], *stamps[i][1]] for i in ids if None not in stamps[i] and i not in failed}
    if todo and good != cached:
        try:
            write_json(cache_path, {"version": CACHE_VERSION, "good": good})
        except OSError:
            pass  # a read-only dataset is checked every time; that is all the cache saves
    return problems


def check_datasets(
    roots: Sequence[str | Path],
    splits: Sequence[str] = ("train", "val"),
    workers: int | None = None,
    progress: bool = True,
) -> None:
    """check_prepared over several datasets; raises DatasetError listing every bad file."""
    for root in roots:
        PreparedDataset(root).require_training_classes()
    problems = [line for root in roots for line in check_prepared(root, splits, workers, progress)]
    if problems:
        raise DatasetError(
            "\n".join(
                problems
                + [
                    f"{len(problems)} bad file(s) in the prepared data; "
                    f"re-run data_prep or remove them from the split files"
                ]
            )
        )
