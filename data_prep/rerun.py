"""What makes re-running an importer safe: finished samples are reused, a killed run's leftovers
removed, and a folder prepared with other settings refused."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from configs import IGNORE_INDEX, NUM_CLASSES
from data_prep.layout import DatasetError, PreparedDataset, read_label_map


def finished_label(
    image_out: Path, mask_out: Path, size: int, *, allow_ignore: bool = False
) -> np.ndarray | None:
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
        raise DatasetError(
            f"{prep.meta_path}: this folder was prepared with {was}; its finished "
            f"samples would be reused as they are, so use a new --out"
        )


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
