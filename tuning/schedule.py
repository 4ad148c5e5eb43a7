"""Per-iteration learning-rate schedules: linear warm-up + cosine decay, or a one-cycle curve."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR

from configs.schema import TrainConfig

ONECYCLE_DIV = 25.0  # one-cycle starts at lr / 25, as torch's OneCycleLR does
ONECYCLE_DEFAULT_PEAK = 0.3  # fraction of the run spent rising when warmup_fraction is 0


def steps_per_epoch(num_batches: int, max_train_batches: int | None = None) -> int:
    """Optimizer steps in one epoch: the loader's batches, capped by train.max_train_batches."""
    return min(num_batches, max_train_batches) if max_train_batches else num_batches


def lr_at(step: int, total_steps: int, cfg: TrainConfig) -> float:
    """The learning rate used for optimizer step `step` (0-based) of a run of total_steps.

    cosine:   linear warm-up from lr/warmup_steps to lr over warmup_fraction of the steps,
              then cosine decay to min_lr_ratio * lr at the last step.
    onecycle: cosine rise from lr/25 to lr over warmup_fraction of the steps (0.3 if 0),
              then cosine decay to min_lr_ratio * lr (the LR curve of torch's OneCycleLR,
              without its momentum cycling, ending at min_lr_ratio * lr).
    """
    total_steps = max(1, total_steps)
    step = min(max(step, 0), total_steps - 1)
    peak, low = cfg.lr, cfg.lr * cfg.min_lr_ratio
    if cfg.schedule == "cosine":
        warmup = round(cfg.warmup_fraction * total_steps)
        if step < warmup:
            return peak * (step + 1) / warmup
        return _cosine(peak, low, (step - warmup) / max(1, total_steps - 1 - warmup))
    rise = max(1, round((cfg.warmup_fraction or ONECYCLE_DEFAULT_PEAK) * total_steps))
    if step < rise:
        return _cosine(peak / ONECYCLE_DIV, peak, step / rise)
    return _cosine(peak, low, (step - rise) / max(1, total_steps - 1 - rise))


def _cosine(start: float, end: float, t: float) -> float:
    t = min(max(t, 0.0), 1.0)
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * t))


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, cfg: TrainConfig) -> LambdaLR:
    """A LambdaLR following lr_at; call .step() after EVERY optimizer step.

    The optimizer's lr must be cfg.lr (the factor is lr_at / cfg.lr). The lambda is a closure,
    so the scheduler's state_dict holds only numbers (loads with torch.load(weights_only=True)).
    """
    return LambdaLR(optimizer, lambda step: lr_at(step, total_steps, cfg) / cfg.lr)
