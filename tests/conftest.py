"""Shared pytest fixtures. Keep each one small, deterministic and documented."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from browser import find_browser

from configs import NUM_CLASSES
from data_prep.atomic import write_image
from data_prep.layout import PreparedDataset, write_meta, write_splits

from faces import draw_face

REQUIRE_BROWSER = "FACEPARSE_REQUIRE_BROWSER"


def write_prepared(
    root: Path, *, n_train: int = 24, n_val: int = 8, n_test: int = 4, size: int = 64, seed: int = 0
) -> Path:
    """Write a PreparedDataset of drawn faces at root (ids t0000.., v0000.., e0000..)."""
    prep = PreparedDataset(root)
    rng = np.random.default_rng(seed)
    splits = {
        "train": [f"t{i:04d}" for i in range(n_train)],
        "val": [f"v{i:04d}" for i in range(n_val)],
        "test": [f"e{i:04d}" for i in range(n_test)],
    }
    counts = np.zeros(NUM_CLASSES, np.int64)
    for ids in splits.values():
        for sample_id in ids:
            image, mask = draw_face(rng, size)
            write_image(prep.image_path(sample_id), image)
            write_image(prep.mask_path(sample_id), mask)
            counts += np.bincount(mask.ravel(), minlength=NUM_CLASSES)[:NUM_CLASSES]
    write_splits(prep, splits)
    write_meta(
        prep, source="tests/faces.py drawn faces", size=size, splits=splits, pixel_counts=counts, skipped=[]
    )
    return root


@pytest.fixture(scope="session")
def make_prepared(tmp_path_factory) -> Callable[..., Path]:
    """Factory: make_prepared(name, **write_prepared kwargs) -> a fresh prepared dataset root."""

    def make(name: str, **kwargs) -> Path:
        return write_prepared(tmp_path_factory.mktemp(name), **kwargs)

    return make


@pytest.fixture(scope="session")
def tiny_prepared(make_prepared) -> Path:
    """A prepared dataset: 24 train / 8 val / 4 test drawn faces at 64 px (read-only: share it)."""
    return make_prepared("tiny_prepared")


@pytest.fixture(scope="session")
def chromium() -> str:
    """The headless Chromium executable (tests/browser.py); skips without one unless
    FACEPARSE_REQUIRE_BROWSER=1 (CI: .ci/run installs it), where a missing browser fails."""
    found = find_browser()
    if found is None:
        message = "no Chromium on PATH (apt-get install chromium, or set FACEPARSE_BROWSER)"
        if os.environ.get(REQUIRE_BROWSER) == "1":
            pytest.fail(f"{message}; {REQUIRE_BROWSER}=1 requires it")
        pytest.skip(message)
    return found
