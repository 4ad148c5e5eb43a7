"""CUDA out-of-memory in training: retry the step on half-size micro-batches with gradient accumulation.

A batch of train.batch_size is split into micro-batches whose losses are weighted by their share
of the batch and back-propagated one at a time before the single optimizer step, so the
effective batch, the number of optimizer steps and the LR schedule stay what the config says.
For a loss that is a mean of per-sample terms (cross-entropy without ignored pixels) the
accumulated gradient equals the full batch's; Dice is computed over the batch as a whole and
BatchNorm normalises each micro-batch with its own statistics, so with those the step is close
to, not equal to, the full-batch step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from configs.errors import FaceParseError


class OutOfMemoryAtBatchOne(FaceParseError, RuntimeError):
    """Out of memory with one sample per forward pass: nothing left to split."""


@dataclass
class Batching:
    """How a train batch is split: micro_batch samples per forward/backward, accum_steps per optimizer step."""

    batch_size: int
    micro_batch: int = 0  # 0: the whole batch
    oom_retries: int = 0

    def __post_init__(self) -> None:
        self.micro_batch = min(self.micro_batch or self.batch_size, self.batch_size)

    @classmethod
    def resumed(cls, batch_size: int, metrics: dict) -> Batching:
        """The split a checkpoint's metrics recorded (a resumed trial does not run out of memory again)."""
        return cls(batch_size, int(metrics.get("micro_batch") or 0), int(metrics.get("oom_retries") or 0))

    @property
    def accum_steps(self) -> int:
        return math.ceil(self.batch_size / self.micro_batch)

    def halve(self, reason: str) -> None:
        """Half the micro-batch after an out-of-memory error; raises OutOfMemoryAtBatchOne at 1."""
        if self.micro_batch == 1:
            raise OutOfMemoryAtBatchOne(
                f"out of memory with 1 sample per forward pass (train.batch_size {self.batch_size} as "
                f"{self.batch_size} accumulated steps): lower data.image_size or choose a smaller "
                f"model; {reason}"
            )
        self.micro_batch = math.ceil(self.micro_batch / 2)
        self.oom_retries += 1
        print(
            f"out of memory ({reason}): retrying with micro-batch {self.micro_batch} x "
            f"{self.accum_steps} accumulated steps (train.batch_size {self.batch_size})",
            flush=True,
        )

    def metrics(self) -> dict[str, int]:
        """The columns trials.csv shows: what the trial ended with and how often it had to shrink."""
        return {
            "micro_batch": self.micro_batch,
            "accum_steps": self.accum_steps,
            "oom_retries": self.oom_retries,
        }


def accumulated_step(
    model: torch.nn.Module,
    images: torch.Tensor,
    masks: torch.Tensor | tuple,
    loss_fn: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    *,
    batching: Batching | None = None,
    amp_dtype: torch.dtype | None = None,
    grad_clip: float = 0.0,
) -> tuple[torch.Tensor, float]:
    """One optimizer step over the batch in micro-batches of batching.micro_batch (default: whole).

    On out-of-memory in a forward or backward pass the micro-batch is halved (batching records
    it) and the same batch is tried again. Returns (loss, the lr the step used).
    """
    batching = batching or Batching(images.shape[0])
    while True:
        optimizer.zero_grad(set_to_none=True)
        try:
            loss = _backward_in_pieces(model, images, masks, loss_fn, scaler, batching.micro_batch, amp_dtype)
            break
        except torch.OutOfMemoryError as err:
            reason = (str(err).splitlines() or ["CUDA out of memory"])[0][:200]
        # Outside the except block the traceback, and the activations its frames hold, are gone;
        # the next zero_grad drops the partial gradients.
        if images.is_cuda:
            torch.cuda.empty_cache()
        batching.halve(reason)
    # Out of memory in here is not retried: the optimizer may have updated part of the model.
    if grad_clip:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()
    lr = optimizer.param_groups[0]["lr"]
    scheduler.step()  # per optimizer step: accumulation leaves the schedule's length unchanged
    return loss, lr


def _backward_in_pieces(
    model: torch.nn.Module,
    images: torch.Tensor,
    masks: torch.Tensor | tuple,
    loss_fn: torch.nn.Module,
    scaler: torch.amp.GradScaler,
    micro_batch: int,
    amp_dtype: torch.dtype | None,
) -> torch.Tensor:
    # Each piece's loss is weighted by its share of the batch, so a mean loss over the batch and
    # its gradient come out as one full forward pass would give them.
    total = images.shape[0]
    loss_sum = torch.zeros((), device=images.device)
    for start in range(0, total, micro_batch):
        part = slice(start, start + micro_batch)
        target = tuple(t[part] for t in masks) if isinstance(masks, tuple) else masks[part]
        with torch.autocast(images.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(images[part])
        loss = loss_fn(logits, target) * (logits.shape[0] / total)
        scaler.scale(loss).backward()
        loss_sum += loss.detach()
    return loss_sum
