"""Part masks -> label map, and label map -> boolean regions."""

from __future__ import annotations

import numpy as np

from configs import CLASS_ID, DEFAULT_PAINT_ORDER

# Stacking "later wins" = the highest paint rank wins: a running maximum of rank-valued masks
# (one cheap pass per part) and a lookup table from rank back to class ID.
_RANK = {name: i + 1 for i, name in enumerate(DEFAULT_PAINT_ORDER)}
_RANK_TO_ID = np.zeros(256, np.uint8)
for _name, _rank in _RANK.items():
    _RANK_TO_ID[_rank] = CLASS_ID[_name]


def stack_parts(masks: dict[str, np.ndarray], size: int, skip: tuple[str, ...] = ()) -> np.ndarray:
    """Label map (uint8 class IDs) of 0/1 part masks stacked in DEFAULT_PAINT_ORDER."""
    rank = np.zeros((size, size), np.uint8)
    for name, mask in masks.items():
        if name not in skip:
            np.maximum(rank, mask * np.uint8(_RANK[name]), out=rank)
    return _RANK_TO_ID[rank]


def region(label: np.ndarray, *names: str) -> np.ndarray:
    """Boolean map of pixels whose label is one of names."""
    table = np.zeros(256, bool)
    table[[CLASS_ID[n] for n in names]] = True
    return table[label]
