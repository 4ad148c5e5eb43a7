"""The leaderboard CSV (run-length codes of 256x256 masks), its ID sidecar, and mask PNGs."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from configs import BACKGROUND, CLASSES, NUM_CLASSES, colorize
from configs.schema import CsvConfig
from data_prep.atomic import AtomicFile, write_image, write_text

CSV_SIZE = 256
CSV_HEADER = "ID,Usage,label,segmentation"
IDS_HEADER = "position,image"
USAGE = "Public"
EMPTY = "0"
# The seed's submission code resizes with plain INTER_NEAREST (it floors, shifting the mask by up
# to half a source pixel); INTER_NEAREST_EXACT samples pixel centres like PIL and data_prep. They
# disagree enough on 512 px maps (perfect maps score ~0.92 F1 against each other) that the CSV
# must use the leaderboard's own convention: the seed's is the default (configs.schema.CsvConfig).
SEED_CSV = CsvConfig()  # the seed's conventions: INTER_NEAREST, background encoded
CSV_INTERPOLATION = {"nearest": cv2.INTER_NEAREST, "nearest_exact": cv2.INTER_NEAREST_EXACT}


def rle_encode(mask: np.ndarray) -> str:
    """Binary mask -> 'start_length_start_length...' (row-major, 1-based starts); empty -> '0'."""
    flat = np.asarray(mask, dtype=bool).ravel()
    edges = np.diff(np.concatenate(([False], flat, [False])).view(np.int8))
    starts = np.flatnonzero(edges == 1)
    if not starts.size:
        return EMPTY
    ends = np.flatnonzero(edges == -1)
    pairs = np.stack([starts + 1, ends - starts], axis=1).ravel()
    return "_".join(pairs.astype(str).tolist())


def rle_decode(code: str, shape: tuple[int, int] = (CSV_SIZE, CSV_SIZE)) -> np.ndarray:
    """Inverse of rle_encode: code -> bool mask of shape."""
    flat = np.zeros(shape[0] * shape[1], dtype=bool)
    code = code.strip()
    if code in ("", EMPTY):
        return flat.reshape(shape)
    nums = np.array(code.split("_"), dtype=np.int64)
    if nums.size % 2:
        raise ValueError(f"run-length code has an odd number of values ({nums.size})")
    for start, length in nums.reshape(-1, 2):
        flat[start - 1 : start - 1 + length] = True
    return flat.reshape(shape)


def csv_label_map(labels: np.ndarray, csv: CsvConfig = SEED_CSV) -> np.ndarray:
    """A label map at any size -> the 256x256 map the CSV encodes (nearest neighbour)."""
    if labels.shape == (CSV_SIZE, CSV_SIZE):
        return labels
    return cv2.resize(labels, (CSV_SIZE, CSV_SIZE), interpolation=CSV_INTERPOLATION[csv.resize])


def csv_rows(position: int, labels: np.ndarray | None, csv: CsvConfig = SEED_CSV) -> list[str]:
    """The 19 CSV lines of the image at a position; labels None (a skipped image) -> all empty."""
    small = None if labels is None else csv_label_map(labels, csv)
    rows = []
    for c in range(NUM_CLASSES):
        if small is None or (c == BACKGROUND and csv.background == "zero"):
            code = EMPTY
        else:
            code = rle_encode(small == c)
        rows.append(f"{position * NUM_CLASSES + c},{USAGE},{CLASSES[c]},{code}")
    return rows


class SubmissionWriter:
    """Writes submission.csv row by row, in position order; the file appears only when complete."""

    def __init__(self, path: str | Path, csv: CsvConfig = SEED_CSV):
        self.csv = csv
        self.writer = AtomicFile(path, "w", encoding="utf-8", newline="\n")
        self.writer.write(CSV_HEADER + "\n")
        self.next_position = 0

    def add(self, position: int, labels: np.ndarray | None) -> None:
        self.add_rows(position, csv_rows(position, labels, self.csv))

    def add_rows(self, position: int, rows: list[str]) -> None:
        """Rows made by csv_rows (e.g. in a worker thread) for the next position."""
        if position != self.next_position:
            raise ValueError(
                f"submission rows out of order: got position {position}, expected {self.next_position}"
            )
        self.writer.write("".join(row + "\n" for row in rows))
        self.next_position += 1

    def __enter__(self) -> SubmissionWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.writer.__exit__(exc_type, exc, tb)


def write_submission(
    path: str | Path, label_maps: Sequence[np.ndarray | None], csv: CsvConfig = SEED_CSV
) -> None:
    """Whole CSV at once: label_maps[p] is the image at position p (None: skipped, empty rows)."""
    with SubmissionWriter(path, csv) as sub:
        for p, labels in enumerate(label_maps):
            sub.add(p, labels)


def write_ids(path: str | Path, names: Sequence[str]) -> None:
    """submission_ids.csv: position -> image file name (quoted where a name holds a comma or quote)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(IDS_HEADER.split(","))
    writer.writerows(enumerate(names))
    write_text(path, buf.getvalue())


def read_ids(path: str | Path) -> list[str]:
    """submission_ids.csv -> image names by position."""
    with Path(path).open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows or ",".join(rows[0]) != IDS_HEADER:
        raise ValueError(f"{path}: expected header {IDS_HEADER!r}")
    return [name for _, name in rows[1:]]


def write_masks(out: str | Path, stem: str, labels: np.ndarray) -> None:
    """masks/{stem}.png (label IDs) and color/{stem}.png (palette) at the image's own size."""
    out = Path(out)
    write_image(out / "masks" / f"{stem}.png", labels)
    write_image(out / "color" / f"{stem}.png", colorize(labels))


def read_submission(path: str | Path) -> list[tuple[int, str, str, str]]:
    """Parse a submission CSV into (ID, Usage, label, segmentation) tuples (for checks and tests)."""
    lines = Path(path).read_text().splitlines()
    if not lines or lines[0] != CSV_HEADER:
        raise ValueError(f"{path}: expected header {CSV_HEADER!r}")
    rows = []
    for line in lines[1:]:
        i, usage, label, code = line.split(",")
        rows.append((int(i), usage, label, code))
    return rows
