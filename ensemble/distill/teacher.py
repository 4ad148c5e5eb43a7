"""The distillation teacher's probabilities per sample. The teacher is a fitted recipe's Ensemble
(ensemble.core.inference.Ensemble.from_recipe: the members it keeps, its weights and views).

The probabilities of sample i are the recipe's weighted average over members and views (exactly
what run_ensemble.py averages, before post-processing), resized to r x r. Two ways to get them,
which give the same targets (tests/test_ensemble_distill.py checks it):

- cached: one pass over every sample before training, held in half precision:
      bytes = N * C * r * r * 2        (N samples, C = 19 classes)
  e.g. 30,000 CelebAMask-HQ faces at r = 128: 30000*19*128*128*2 = 18.7 GB; at r = 64: 4.7 GB;
  the 96 demo training faces at r = 128: 60 MB.
- on the fly: computed when the training loader asks for sample i (no memory; members x views
  forward passes per sample and epoch, on the CPU of the loader's worker).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from tqdm import tqdm

from configs import NUM_CLASSES
from ensemble.core.inference import Ensemble
from ensemble.core.inputs import ImageItem
from ensemble.core.tta import resize_bilinear


def cache_bytes(samples: int, resolution: int) -> int:
    """Bytes of the cached teacher probabilities: N * C * r * r * 2 (half precision)."""
    return samples * NUM_CLASSES * resolution * resolution * 2


def teacher_probs(
    teacher: Ensemble,
    items: Sequence[ImageItem],
    resolution: int,
    batch_size: int = 4,
    progress: bool = False,
) -> Iterator[torch.Tensor]:
    """The teacher's probabilities per item, in order: (C, r, r) float16 on the CPU."""
    r = (resolution, resolution)
    for pred in teacher.stream(items, batch_size=batch_size, progress=progress):
        yield resize_bilinear(pred.probs[None], r)[0].half().cpu()


class CachedTeacher:
    """All samples' teacher probabilities, computed in one pass: (N, C, r, r) float16."""

    def __init__(
        self,
        teacher: Ensemble,
        items: Sequence[ImageItem],
        resolution: int,
        batch_size: int = 4,
        progress: bool = True,
    ):
        self.probs = torch.empty(len(items), NUM_CLASSES, resolution, resolution, dtype=torch.float16)
        probs = teacher_probs(teacher, items, resolution, batch_size)
        for i, p in enumerate(
            tqdm(probs, total=len(items), desc="teacher cache", unit="img", disable=not progress)
        ):
            self.probs[i] = p

    def __call__(self, i: int) -> torch.Tensor:
        return self.probs[i]


class OnTheFlyTeacher:
    """Each sample's teacher probabilities computed when asked for (members on the CPU)."""

    def __init__(self, teacher: Ensemble, items: Sequence[ImageItem], resolution: int):
        # The loader's workers call this: CUDA cannot be used in forked workers, so the members run
        # on the CPU there.
        self.teacher = teacher.to("cpu")
        self.items = list(items)
        self.resolution = resolution

    def __call__(self, i: int) -> torch.Tensor:
        return next(teacher_probs(self.teacher, [self.items[i]], self.resolution))
