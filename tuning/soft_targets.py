"""A training set whose targets are (labels, teacher probabilities): how distillation plugs into train().

Each sample is an image, its label map (or none: an unlabelled image, all 255 = ignored) and a
teacher: a callable giving the teacher's probabilities for sample i as (C, r, r), computed on the
un-augmented image. The augmentation moves the probabilities with the pixels: they are resized to
the training size and go through the same flip and affine as image and mask, so the student is
taught, pixel for pixel, what the teacher said about that spot of the face.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from configs import FLIP_PERMUTATION, IGNORE_INDEX, NUM_CLASSES
from configs.schema import DataConfig
from data_prep.layout import DatasetError, read_label_map, read_rgb
from data_prep.transforms import build_train_transform, swap_left_right_labels

# Teacher probabilities for sample i: (C, r, r), any float dtype, on the CPU.
TeacherTargets = Callable[[int], torch.Tensor]


class SoftTargetDataset(Dataset):
    """(image 3xSxS float, (labels SxS int64, teacher probabilities C x r x r float16)) per sample.

    samples: (image path, mask path or None). The flip is drawn here rather than in the
    albumentations pipeline: a probability map flips by mirroring and swapping the left/right
    channels, which the label-swapping flip of data_prep.transforms cannot do to it. Pixels
    shifted in from outside by the affine get all-zero teacher probabilities (no KD term there).
    """

    def __init__(
        self,
        samples: Sequence[tuple[Path, Path | None]],
        teacher: TeacherTargets,
        data_cfg: DataConfig,
        seed: int = 0,
    ):
        self.samples = [(Path(i), None if m is None else Path(m)) for i, m in samples]
        self.teacher = teacher
        self.size = data_cfg.image_size
        self.hflip = data_cfg.augment.hflip
        no_flip = data_cfg.model_copy(update={"augment": data_cfg.augment.model_copy(update={"hflip": 0.0})})
        self.transform = build_train_transform(no_flip)
        self.transform.add_targets({"teacher": "mask"})
        self.set_random_seed(seed)

    def __len__(self) -> int:
        return len(self.samples)

    def set_random_seed(self, seed: int) -> None:
        """Reseed the flip and the albumentations pipeline (tuning.loaders calls this per epoch/worker)."""
        self.rng = np.random.default_rng(seed)
        self.transform.set_random_seed(seed)

    def __getitem__(self, i: int):
        image_path, mask_path = self.samples[i]
        image = read_rgb(image_path)
        h, w = image.shape[:2]
        mask = np.full((h, w), IGNORE_INDEX, np.uint8) if mask_path is None else read_label_map(mask_path)
        if mask.shape != (h, w):
            raise DatasetError(f"{mask_path}: mask is {mask.shape}, image is {(h, w)}")
        probs = self.teacher(i)
        if probs.shape[0] != NUM_CLASSES:
            raise ValueError(
                f"teacher gave {probs.shape[0]} channels for {image_path}, expected {NUM_CLASSES}"
            )
        r = tuple(probs.shape[-2:])
        s = self.size
        # The pipeline's first step resizes to s x s; doing it here lets the teacher map be resized
        # once to s instead of to the (possibly much larger) stored image size.
        image = cv2.resize(image, (s, s), interpolation=cv2.INTER_LINEAR)
        mask = cv2.resize(mask, (s, s), interpolation=cv2.INTER_NEAREST)
        teacher = cv2.resize(probs.float().numpy().transpose(1, 2, 0), (s, s), interpolation=cv2.INTER_LINEAR)
        if self.rng.random() < self.hflip:
            image = image[:, ::-1]
            mask = swap_left_right_labels(mask[:, ::-1])
            # The mirrored subject's left eye sits where a right eye would: swap partner channels.
            teacher = teacher[:, ::-1][:, :, FLIP_PERMUTATION]
        out = self.transform(
            image=np.ascontiguousarray(image),
            mask=np.ascontiguousarray(mask),
            teacher=np.ascontiguousarray(teacher),
        )
        soft = torch.as_tensor(out["teacher"]).permute(2, 0, 1)
        # Back to the teacher's resolution: the batch carries r x r maps, the loss resizes them.
        soft = F.interpolate(soft[None], size=r, mode="area")[0] if r != (s, s) else soft
        return out["image"], (torch.as_tensor(out["mask"]).long(), soft.half())
