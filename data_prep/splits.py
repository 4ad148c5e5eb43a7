"""Train/val/test splits: from a list of training ids or seeded random fractions (pure functions)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from configs.errors import ConfigError, MissingPathError
from data_prep.layout import DatasetError


def id_sort_key(sample_id: int | str) -> tuple[int, int | str]:
    """Numeric order for numeric ids ("2" before "10"), then the rest in string order."""
    text = str(sample_id)
    return (0, int(text)) if text.isdigit() else (1, text)


def sorted_ids(ids: Iterable[int | str]) -> list[str]:
    """Ids as strings, deduplicated, in numeric order."""
    return sorted({str(i) for i in ids}, key=id_sort_key)


def read_split_file(path: str | Path) -> list[int]:
    """Read a list of training ids: one int per line; blank lines and '#' comments are ignored."""
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"{path}: split file not found")
    ids = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            ids.append(int(text))
        except ValueError:
            raise DatasetError(f"{path}:{number}: expected one integer id per line, got {text!r}") from None
    return ids


def check_fraction(name: str, value: float) -> float:
    if not (0.0 <= value < 1.0) or math.isnan(value):
        raise ConfigError(f"{name} must be in [0, 1), got {value}")
    return value


def _take(fraction: float, n: int, reserve: int) -> int:
    """How many of n ids a fraction takes: rounded, at least 1 when fraction > 0, leaving `reserve`."""
    if fraction <= 0.0 or n <= reserve:
        return 0
    # floor(x + 0.5) instead of round(): Python's banker's rounding would make 2.5 -> 2 but 3.5 -> 4.
    # At least one so a small dataset still gets a val/test sample to score on.
    return min(max(1, math.floor(fraction * n + 0.5)), n - reserve)


def make_splits(
    ids: Iterable[int | str],
    train_ids: Iterable[int | str] | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
) -> dict[str, list[str]]:
    """Split sample ids into train/val/test (disjoint, complete, deterministic, numerically sorted).

    train_ids given: listed ids -> train, the rest -> test (test_fraction is ignored), then
    val_fraction of train -> val. Otherwise seeded random fractions of all ids.
    """
    check_fraction("val_fraction", val_fraction)
    check_fraction("test_fraction", test_fraction)
    all_ids = sorted_ids(ids)
    # Shuffling the sorted list with a fresh seeded generator makes the split a function of
    # (ids, seed) alone, whatever order the ids came in.
    rng = np.random.default_rng(seed)
    if train_ids is not None:
        listed = {str(i) for i in train_ids}
        train = [i for i in all_ids if i in listed]
        train = [train[k] for k in rng.permutation(len(train))]
        test = [i for i in all_ids if i not in listed]
        n_val = _take(val_fraction, len(train), reserve=1)  # a fraction of the listed training ids
        val, train = train[:n_val], train[n_val:]
    else:
        if val_fraction + test_fraction >= 1.0:
            raise ConfigError(
                f"val_fraction + test_fraction must be < 1, got {val_fraction} + {test_fraction}"
            )
        order = [all_ids[k] for k in rng.permutation(len(all_ids))]
        n_test = _take(test_fraction, len(order), reserve=1)
        # Both fractions are of all ids; the reserve keeps at least one training id.
        n_val = _take(val_fraction, len(order), reserve=n_test + 1)
        test, val, train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
    return {"train": sorted_ids(train), "val": sorted_ids(val), "test": sorted_ids(test)}


def filter_splits(splits: dict[str, list[str]], keep: Iterable[int | str]) -> dict[str, list[str]]:
    """Drop ids not in keep (e.g. skipped samples) without moving any other id between splits."""
    keep_set = {str(i) for i in keep}
    return {name: [i for i in ids if i in keep_set] for name, ids in splits.items()}
