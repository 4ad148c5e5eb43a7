"""The distillation teacher: a fitted recipe (members, weights, views) and its probabilities per sample.

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
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from configs import NUM_CLASSES
from ensemble.core.batching import predict
from ensemble.core.inputs import ImageItem
from ensemble.core.members import Member, load_manifest
from ensemble.core.recipe import Recipe, check_members, read_recipe
from ensemble.core.tta import View, resize_bilinear, view_from_name


@dataclass
class Teacher:
    """The members a recipe keeps, their weights (normalised) and its TTA views."""

    members: list[Member]
    weights: list[float]
    views: list[View]
    recipe: Recipe
    recipe_path: Path
    manifest_path: Path

    @property
    def forwards_per_image(self) -> int:
        return len(self.members) * len(self.views)

    def to(self, device: torch.device | str) -> Teacher:
        for m in self.members:
            m.model.to(device)
        return self


def load_teacher(
    recipe_path: str | Path, manifest: str | Path | None = None, device: torch.device | str = "cpu"
) -> Teacher:
    """The teacher of a recipe (manifest: the recipe's own, resolved beside the recipe when relative)."""
    recipe_path = Path(recipe_path)
    recipe = read_recipe(recipe_path)
    manifest_path = Path(manifest) if manifest is not None else Path(recipe.manifest)
    if manifest is None and not manifest_path.is_absolute():
        manifest_path = recipe_path.parent / manifest_path
    if not manifest_path.exists() and manifest is None:
        manifest_path = recipe_path.parent / "manifest.json"  # the recipe moved with its manifest
    loaded = load_manifest(manifest_path, device)
    check_members(recipe, [m.name for m in loaded.members], recipe_path)
    kept = [m for m in loaded.members if recipe.members.get(m.name, 0) > 0]
    total = sum(recipe.members[m.name] for m in kept)
    return Teacher(
        members=kept,
        weights=[recipe.members[m.name] / total for m in kept],
        views=[view_from_name(v) for v in recipe.views],
        recipe=recipe,
        recipe_path=recipe_path,
        manifest_path=loaded.path,
    )


def cache_bytes(samples: int, resolution: int) -> int:
    """Bytes of the cached teacher probabilities: N * C * r * r * 2 (half precision)."""
    return samples * NUM_CLASSES * resolution * resolution * 2


def teacher_probs(
    teacher: Teacher,
    items: Sequence[ImageItem],
    resolution: int,
    device: torch.device | str = "cpu",
    batch_size: int = 4,
    progress: bool = False,
) -> Iterator[torch.Tensor]:
    """The teacher's probabilities per item, in order: (C, r, r) float16 on the CPU."""
    r = (resolution, resolution)
    for pred in predict(
        teacher.members,
        teacher.weights,
        items,
        teacher.views,
        device,
        batch_size=batch_size,
        progress=progress,
    ):
        yield resize_bilinear(pred.probs[None], r)[0].half().cpu()


class CachedTeacher:
    """All samples' teacher probabilities, computed in one pass: (N, C, r, r) float16."""

    def __init__(
        self,
        teacher: Teacher,
        items: Sequence[ImageItem],
        resolution: int,
        device: torch.device | str = "cpu",
        batch_size: int = 4,
        progress: bool = True,
    ):
        self.probs = torch.empty(len(items), NUM_CLASSES, resolution, resolution, dtype=torch.float16)
        probs = teacher_probs(teacher, items, resolution, device, batch_size)
        for i, p in enumerate(
            tqdm(probs, total=len(items), desc="teacher cache", unit="img", disable=not progress)
        ):
            self.probs[i] = p

    def __call__(self, i: int) -> torch.Tensor:
        return self.probs[i]


class OnTheFlyTeacher:
    """Each sample's teacher probabilities computed when asked for (members on the CPU)."""

    def __init__(self, teacher: Teacher, items: Sequence[ImageItem], resolution: int):
        # The loader's workers call this: CUDA cannot be used in forked workers, so the members run
        # on the CPU there.
        self.teacher = teacher.to("cpu")
        self.items = list(items)
        self.resolution = resolution

    def __call__(self, i: int) -> torch.Tensor:
        return next(teacher_probs(self.teacher, [self.items[i]], self.resolution, "cpu"))
