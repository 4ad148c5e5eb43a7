"""Every candidate's validation probabilities under every TTA view, computed once and cached.

Selection scores thousands of candidate combinations; each must cost a weighted sum and an
argmax, never a forward pass. The cache holds, in half precision at a reduced resolution r,

    probs: (M, V, N, C, r, r)    bytes = M * V * N * C * r * r * 2
    labels: (N, r, r) uint8      bytes = N * r * r

for M candidates, V views, N images and C = 19 classes. Example: 12 candidates x 6 views x 200
images at r = 64 is 12*6*200*19*64*64*2 = 2.24 GB. `images_within` picks the largest N that
fits a memory budget; the images are a seeded subset of the split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from configs import NUM_CLASSES
from data_prep.layout import read_label_map
from ensemble.core.inference import Ensemble
from ensemble.core.inputs import ImageItem
from ensemble.core.members import Member
from ensemble.core.tta import View


def cache_bytes(members: int, views: int, images: int, resolution: int) -> int:
    """Bytes of the probability cache (half precision) plus its labels."""
    return members * views * images * NUM_CLASSES * resolution * resolution * 2 + images * resolution**2


def images_within(budget_bytes: float, members: int, views: int, resolution: int) -> int:
    """The most images whose cache fits the budget."""
    return int(budget_bytes // cache_bytes(members, views, 1, resolution))


def subset(n: int, keep: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded random subset of keep of n items (all when keep >= n)."""
    if keep >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, keep, replace=False))


@dataclass
class ProbabilityCache:
    probs: torch.Tensor  # (M, V, N, C, r, r) float16
    labels: torch.Tensor  # (N, r, r) uint8, nearest-resized ground truth (255 = ignore)
    member_names: list[str]
    view_names: list[str]
    resolution: int

    @property
    def nbytes(self) -> int:
        return self.probs.numel() * self.probs.element_size() + self.labels.numel()


def build_cache(
    members: Sequence[Member],
    items: Sequence[ImageItem],
    gt_paths: Sequence,
    views: Sequence[View],
    resolution: int,
    device: torch.device,
    batch_size: int = 4,
    num_workers: int = 0,
    progress: bool = True,
) -> ProbabilityCache:
    """One pass of every member over the images, every view kept apart, at resolution r."""
    candidates = Ensemble(members, views=views, device=device)
    probs = candidates.view_probs(
        items, resolution=resolution, batch_size=batch_size, num_workers=num_workers, progress=progress
    )
    r = resolution
    labels = torch.from_numpy(
        np.stack(
            [cv2.resize(read_label_map(p), (r, r), interpolation=cv2.INTER_NEAREST_EXACT) for p in gt_paths]
        )
    )
    return ProbabilityCache(probs, labels, [m.name for m in members], [v.name for v in views], r)
