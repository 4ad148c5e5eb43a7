"""Confusion-matrix metrics: per-class F1, mean F1 (face classes / with background), mIoU."""

from __future__ import annotations

import numpy as np
import torch

from configs import CLASSES, FACE_CLASS_IDS, IGNORE_INDEX, NUM_CLASSES

PER_CLASS_F1_PREFIX = "val_f1_"
# One flat metric per class (val_f1_skin, ...): Ray reports flat scalars, so TensorBoard plots each.
PER_CLASS_F1_KEYS = tuple(f"{PER_CLASS_F1_PREFIX}{name}" for name in CLASSES)


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int = NUM_CLASSES, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """int64 (C, C) counts, rows = ground truth, columns = prediction; stays on the input's device."""
    pred = pred.reshape(-1).long()
    target = target.reshape(-1).long()
    keep = target != ignore_index
    idx = target[keep] * num_classes + pred[keep]
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


class ConfusionMatrix:
    """Accumulates a confusion matrix on the device; one host sync when scores are read."""

    def __init__(
        self,
        num_classes: int = NUM_CLASSES,
        device: torch.device | str = "cpu",
        ignore_index: int = IGNORE_INDEX,
    ):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        self.matrix += confusion_matrix(pred, target, self.num_classes, self.ignore_index)

    def scores(self) -> dict:
        return scores_from_confusion(self.matrix.cpu().numpy())


def image_confusion(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(C, C) int64 confusion matrix of one label map (uint8 arrays) against ground truth."""
    return confusion_matrix(torch.from_numpy(pred), torch.from_numpy(gt)).numpy()


def scores_from_confusion(cm: np.ndarray) -> dict:
    """Scores from a (C, C) confusion matrix.

    A class with no pixels in ground truth or prediction has an undefined score (NaN) and is
    left out of the means, so a class missing from a split neither helps nor hurts.
    """
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
        iou = np.where(tp + fp + fn > 0, tp / (tp + fp + fn), np.nan)
    face = list(FACE_CLASS_IDS)
    total = cm.sum()
    return {
        "f1": _nanmean(f1[face]),  # mean F1 over the 18 face classes (background excluded)
        "f1_with_bg": _nanmean(f1),
        "miou": _nanmean(iou),
        "pixel_acc": float(tp.sum() / total) if total else float("nan"),
        "per_class_f1": {CLASSES[c]: _num(f1[c]) for c in range(len(f1))},
        "per_class_iou": {CLASSES[c]: _num(iou[c]) for c in range(len(iou))},
    }


def flat_per_class_f1(per_class_f1: dict[str, float | None]) -> dict[str, float | None]:
    """{"skin": 0.9, ...} -> {"val_f1_skin": 0.9, ...} in class-ID order (None: class absent)."""
    return {key: per_class_f1.get(name) for key, name in zip(PER_CLASS_F1_KEYS, CLASSES)}


def _nanmean(x: np.ndarray) -> float:
    return float(np.nanmean(x)) if np.isfinite(x).any() else float("nan")


def _num(x: float) -> float | None:
    return None if np.isnan(x) else float(x)
