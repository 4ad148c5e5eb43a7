"""Torch datasets over prepared datasets, mixing several by weight, and CE class weights."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset, WeightedRandomSampler

from configs import CLASSES, NUM_CLASSES
from configs.schema import RunConfig
from data_prep.layout import DatasetError, PreparedDataset, read_label_map, read_rgb
from data_prep.transforms import build_train_transform, build_val_transform


class FaceParsingDataset(Dataset):
    """One split of one prepared dataset: (image 3xHxW float, mask HxW int64) after transform.

    Without a transform an item is the raw (RGB uint8 HxWx3, label map uint8 HxW) pair. ids
    replaces the split's list (a refit fold: tuning.folds); split then only names it in messages.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        transform: Callable | None = None,
        ids: Sequence[str] | None = None,
    ):
        self.root = Path(root)
        self.split = split
        self.transform = transform
        if not self.root.is_dir():
            raise DatasetError(
                f"{self.root}: prepared dataset not found (expected a folder with "
                "images/, masks/, splits/ and dataset.json)"
            )
        self.prep = PreparedDataset(self.root)
        for folder in (self.prep.images, self.prep.masks):
            if not folder.is_dir():
                raise DatasetError(f"{folder}: folder not found (is {self.root} a prepared dataset?)")
        self.ids: list[str] = self.prep.split_ids(split) if ids is None else list(ids)
        # Check one sample up front so a wrong root fails here, not in a DataLoader worker.
        if self.ids:
            for path in (self.prep.image_path(self.ids[0]), self.prep.mask_path(self.ids[0])):
                if not path.is_file():
                    raise DatasetError(f"{path}: listed in {self.prep.splits / split}.txt but not found")

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int):
        sample_id = self.ids[index]
        image_path, mask_path = self.prep.image_path(sample_id), self.prep.mask_path(sample_id)
        if not image_path.is_file():
            raise DatasetError(f"{image_path}: image not found")
        if not mask_path.is_file():
            raise DatasetError(f"{mask_path}: mask not found")
        image, mask = read_rgb(image_path), read_label_map(mask_path)
        if image.shape[:2] != mask.shape:
            raise DatasetError(f"{mask_path}: mask is {mask.shape}, image is {image.shape[:2]}")
        if self.transform is None:
            return image, mask
        out = self.transform(image=image, mask=mask)
        return out["image"], torch.as_tensor(out["mask"]).long()

    def set_random_seed(self, seed: int) -> None:
        """Reseed the augmentation (albumentations keeps its own generator, not numpy's global)."""
        if hasattr(self.transform, "set_random_seed"):
            self.transform.set_random_seed(seed)


def seed_transforms(dataset: Dataset, seed: int) -> None:
    """Reseed the augmentations of a dataset or of every part of a ConcatDataset."""
    parts = dataset.datasets if isinstance(dataset, ConcatDataset) else [dataset]
    for i, part in enumerate(parts):
        # Any dataset with its own augmentation generator (FaceParsingDataset, soft-target sets).
        if hasattr(part, "set_random_seed"):
            part.set_random_seed(seed + 7919 * i)


def build_datasets(
    cfg: RunConfig, generator: torch.Generator | None = None
) -> tuple[Dataset, Dataset, WeightedRandomSampler | None]:
    """Train set (all datasets' train splits), val set (all val splits), and a mixing sampler.

    With several datasets the sampler draws each dataset in proportion to its weight
    (independent of its size); with one dataset the sampler is None (plain shuffling).
    """
    refs = cfg.data.datasets
    if not refs:
        raise DatasetError(
            "data.datasets is empty: list a prepared dataset in the config "
            "(data.datasets: [{path: PREP}]) or pass --data PREP"
        )
    train_tf, val_tf = build_train_transform(cfg.data), build_val_transform(cfg.data)
    for ref in refs:
        PreparedDataset(ref.path).require_training_classes()
    train_parts = [FaceParsingDataset(ref.path, "train", train_tf) for ref in refs]
    val_parts = [FaceParsingDataset(ref.path, "val", val_tf) for ref in refs]
    for part in train_parts:
        if len(part) == 0:
            raise DatasetError(f"{part.prep.splits / 'train.txt'}: train split is empty")
    if sum(len(p) for p in val_parts) == 0:
        paths = ", ".join(str(p.prep.splits / "val.txt") for p in val_parts)
        raise DatasetError(f"no validation data: {paths} list no samples")
    val_parts = [p for p in val_parts if len(p)]
    train = train_parts[0] if len(train_parts) == 1 else ConcatDataset(train_parts)
    val = val_parts[0] if len(val_parts) == 1 else ConcatDataset(val_parts)
    if len(train_parts) == 1:
        return train, val, None
    # Per-sample weight w_d / n_d: dataset d gets a share w_d / sum(w) of the draws.
    weights = torch.cat(
        [torch.full((len(p),), ref.weight / len(p), dtype=torch.float64) for p, ref in zip(train_parts, refs)]
    )
    sampler = WeightedRandomSampler(weights, num_samples=len(train), replacement=True, generator=generator)
    return train, val, sampler


def class_weights_from(cfg: RunConfig, max_weight: float = 10.0) -> torch.Tensor:
    """CE class weights (19,) by median-frequency balancing over the mixed datasets.

    freq = pixel frequency from each dataset.json, mixed by dataset weight (the share each
    dataset gets in training). weight_c = median(freq of present classes) / freq_c, clipped
    to [1/max_weight, max_weight] so tiny classes (earrings) cannot dominate the loss.
    Classes with no pixels get weight 0: they never occur as a target, so it changes nothing
    but keeps the tensor finite.
    """
    if not cfg.data.datasets:
        raise DatasetError("data.datasets is empty: no dataset.json to read class frequencies from")
    mixed = np.zeros(NUM_CLASSES, dtype=np.float64)
    total_weight = sum(ref.weight for ref in cfg.data.datasets)
    for ref in cfg.data.datasets:
        prep = PreparedDataset(Path(ref.path))
        freq = prep.meta().get("class_frequency")
        missing = [n for n in CLASSES if not isinstance(freq, dict) or n not in freq]
        if missing:
            raise DatasetError(
                f"{prep.meta_path}: class_frequency lacks {missing} "
                "(expected a frequency for each of the 19 classes)"
            )
        mixed += ref.weight / total_weight * np.array([freq[n] for n in CLASSES], dtype=np.float64)
    present = mixed > 0
    weights = np.zeros(NUM_CLASSES, dtype=np.float64)
    if present.any():
        median = float(np.median(mixed[present]))
        weights[present] = np.clip(median / mixed[present], 1.0 / max_weight, max_weight)
    return torch.tensor(weights, dtype=torch.float32)
