"""Training loss: weighted cross-entropy + multiclass Dice (smp), both ignoring label 255."""
from __future__ import annotations

import segmentation_models_pytorch as smp
import torch
from torch import nn

from configs import IGNORE_INDEX
from configs.schema import TrainConfig


class SegmentationLoss(nn.Module):
    """ce_weight * CrossEntropy(class weights) + dice_weight * Dice; a term with weight 0 is skipped."""

    def __init__(self, ce_weight: float = 1.0, dice_weight: float = 1.0,
                 class_weights: torch.Tensor | None = None):
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
