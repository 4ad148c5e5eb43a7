"""Seeded K folds over a prepared dataset's train + val images (the test split is never touched).

Fold f holds out folds[f] and trains on the other K - 1 folds: every train + val image is held
out exactly once, so each refit config gets exactly one out-of-fold prediction per image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from configs.errors import ConfigError
from data_prep.layout import PreparedDataset

POOL_SPLITS = ("train", "val")


@dataclass(frozen=True)
class FoldPlan:
    """K folds of image ids (each sorted); the pool is their union."""

    folds: tuple[tuple[str, ...], ...]
    seed: int

    @property
    def k(self) -> int:
        return len(self.folds)

    def held_out(self, fold: int) -> list[str]:
        return list(self.folds[fold])

    def train_ids(self, fold: int) -> list[str]:
        return sorted(i for f, ids in enumerate(self.folds) if f != fold for i in ids)

    def fold_of(self) -> dict[str, int]:
        """Image id -> the fold that holds it out."""
        return {i: f for f, ids in enumerate(self.folds) for i in ids}

    def to_json(self) -> dict:
        return {"k": self.k, "seed": self.seed, "folds": [list(ids) for ids in self.folds]}

    @classmethod
    def from_json(cls, raw: dict) -> FoldPlan:
        return cls(tuple(tuple(ids) for ids in raw["folds"]), int(raw["seed"]))


def split_folds(ids: list[str], k: int, seed: int) -> FoldPlan:
    """ids in k seeded folds of near-equal size (sizes differ by at most one)."""
    ids = sorted(set(ids))
    if k < 2:
        raise ConfigError(f"--folds {k}: K folds need K >= 2 (--folds 1 trains seeds on the train split)")
    if len(ids) < 2 * k:
        raise ConfigError(f"{len(ids)} train + val images are too few for {k} folds (need {2 * k} or more)")
    order = np.random.default_rng(seed).permutation(len(ids))
    return FoldPlan(tuple(tuple(sorted(ids[i] for i in part)) for part in np.array_split(order, k)), seed)


def pool_ids(prepared: Path) -> list[str]:
    """The train + val image ids of a prepared dataset (what K-fold refit splits)."""
    prep = PreparedDataset(prepared)
    return sorted({i for split in POOL_SPLITS for i in prep.split_ids(split)})


def plan_folds(prepared: Path, k: int, seed: int) -> FoldPlan:
    return split_folds(pool_ids(prepared), k, seed)
