"""Training losses: weighted CE + multiclass Dice (smp), and distillation (KL to a teacher + CE)."""

from __future__ import annotations

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from torch import nn

from configs import IGNORE_INDEX
from configs.schema import DistillConfig, TrainConfig


class SegmentationLoss(nn.Module):
    """ce_weight * CrossEntropy(class weights) + dice_weight * Dice; a term with weight 0 is skipped."""

    def __init__(
        self, ce_weight: float = 1.0, dice_weight: float = 1.0, class_weights: torch.Tensor | None = None
    ):
        super().__init__()
        self.ce_weight, self.dice_weight = ce_weight, dice_weight
        # torch's CE rather than smp's SoftCrossEntropyLoss: only torch's takes class weights.
        self.ce = nn.CrossEntropyLoss(weight=class_weights, ignore_index=IGNORE_INDEX)
        self.dice = smp.losses.DiceLoss(smp.losses.MULTICLASS_MODE, ignore_index=IGNORE_INDEX)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        # Float32 even under autocast: softmax/Dice sums lose too much in bf16/fp16.
        logits = logits.float()
        loss = logits.new_zeros(())
        if self.ce_weight:
            loss = loss + self.ce_weight * self.ce(logits, target)
        if self.dice_weight:
            loss = loss + self.dice_weight * self.dice(logits, target)
        return loss


def build_loss(cfg: TrainConfig, class_weights: torch.Tensor | None = None) -> SegmentationLoss:
    """The loss a TrainConfig asks for; class_weights (19,) apply to the CE term only."""
    return SegmentationLoss(cfg.ce_weight, cfg.dice_weight, class_weights)


class DistillationLoss(nn.Module):
    """kd_weight * T^2 * KL(teacher_T || student_T) + ce_weight * CE(labels, class weights).

    The target is (labels (N,H,W), teacher probabilities (N,C,h,w)) from a soft-target dataset
    (tuning.soft_targets), or plain labels (validation), which get the CE term alone. The teacher
    is softened as softmax(log p / T) and resized to the logits' size; pixels whose teacher
    probabilities sum to 0 (shifted in from outside by an augmentation) add no KD term, and
    label 255 (unlabelled images, ignored regions) adds no CE term.
    """

    def __init__(
        self,
        temperature: float = 2.0,
        kd_weight: float = 1.0,
        ce_weight: float = 0.5,
        class_weights: torch.Tensor | None = None,
    ):
        super().__init__()
        self.temperature, self.kd_weight, self.ce_weight = float(temperature), kd_weight, ce_weight
        self.ce = nn.CrossEntropyLoss(weight=class_weights, ignore_index=IGNORE_INDEX)

    def forward(self, logits: torch.Tensor, target: torch.Tensor | tuple | list) -> torch.Tensor:
        logits = logits.float()
        if isinstance(target, torch.Tensor):
            return self.ce(logits, target)
        labels, teacher = target
        loss = logits.new_zeros(())
        if self.kd_weight:
            loss = loss + self.kd_weight * self.kd(logits, teacher)
        # All-ignored batches (unlabelled images only) would make CE NaN: skip it there.
        if self.ce_weight and (labels != IGNORE_INDEX).any():
            loss = loss + self.ce_weight * self.ce(logits, labels)
        return loss

    def kd(self, logits: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """T^2 * mean over valid pixels of KL(teacher_T || student_T)."""
        t = self.temperature
        teacher = teacher.float()
        if teacher.shape[-2:] != logits.shape[-2:]:
            teacher = F.interpolate(teacher, size=logits.shape[-2:], mode="bilinear", align_corners=False)
        valid = teacher.sum(1) > 0.5
        log_teacher = F.log_softmax(torch.log(teacher.clamp_min(1e-8)) / t, dim=1)
        log_student = F.log_softmax(logits / t, dim=1)
        kl = (log_teacher.exp() * (log_teacher - log_student)).sum(1)
        # T^2 keeps the gradient scale independent of T (Hinton et al. 2015).
        return t * t * (kl * valid).sum() / valid.sum().clamp_min(1)


def build_distill_loss(cfg: DistillConfig, class_weights: torch.Tensor | None = None) -> DistillationLoss:
    """The distillation loss a DistillConfig asks for."""
    return DistillationLoss(cfg.temperature, cfg.kd_weight, cfg.ce_weight, class_weights)
