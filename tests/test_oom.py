"""CUDA out-of-memory in training: the step is retried on half-size micro-batches with gradient
accumulation, the effective batch stays the config's, and the metrics record the split."""

from __future__ import annotations

import pytest
import torch
from test_train import make_config

from configs import CLASSES
from configs.schema import TrainConfig
from tuning import train as train_module
from tuning.losses import build_loss
from tuning.oom import Batching, OutOfMemoryAtBatchOne, accumulated_step
from tuning.schedule import build_scheduler


def small_net() -> torch.nn.Module:
    # No BatchNorm: in train mode BN normalises each micro-batch with that micro-batch's own
    # mean and variance, so two half batches would not give the full batch's gradient exactly.
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, len(CLASSES), 1)
    )


def one_step(micro_batch: int, images: torch.Tensor, masks: torch.Tensor):
    """Parameters and gradients after one SGD step on the whole batch split in micro_batch pieces."""
    model = small_net()
    cfg = TrainConfig(lr=0.1, warmup_fraction=0.0, ce_weight=1.0, dice_weight=0.0, grad_clip=0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    scheduler = build_scheduler(optimizer, 4, cfg)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    loss, _ = accumulated_step(
        model,
        images,
        masks,
        build_loss(cfg),
        optimizer,
        scheduler,
        scaler,
        batching=Batching(images.shape[0], micro_batch),
        grad_clip=cfg.grad_clip,
    )
    return float(loss), [p.grad.clone() for p in model.parameters()], [p.detach() for p in model.parameters()]


def test_two_accumulated_half_batches_give_the_full_batch_gradient():
    torch.manual_seed(1)
    # Cross-entropy, a mean of per-pixel terms with no ignored pixels, and equal halves: exact
    # up to float rounding. (Dice is computed over the batch as a whole: close, not equal.)
    images, masks = torch.randn(4, 3, 12, 12), torch.randint(0, len(CLASSES), (4, 12, 12))
    full_loss, full_grads, full_params = one_step(4, images, masks)
    half_loss, half_grads, half_params = one_step(2, images, masks)
    assert half_loss == pytest.approx(full_loss, rel=1e-6)
    for a, b in zip(half_grads, full_grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    for a, b in zip(half_params, full_params):  # clipped and stepped the same way
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    # an uneven split (2 + 1 of 3 samples) is weighted by each piece's share of the batch
    odd_loss, odd_grads, _ = one_step(2, images[:3], masks[:3])
    ref_loss, ref_grads, _ = one_step(3, images[:3], masks[:3])
    assert odd_loss == pytest.approx(ref_loss, rel=1e-6)
    for a, b in zip(odd_grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


class OutOfMemoryAbove(torch.nn.Module):
    """Wraps a model; its forward raises CUDA's out-of-memory error on batches above limit samples."""

    def __init__(self, model: torch.nn.Module, limit: int):
        super().__init__()
        self.model, self.limit, self.sizes = model, limit, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(x.shape[0])
        if self.training and x.shape[0] > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (fake)")
        return self.model(x)


def test_a_trial_that_runs_out_of_memory_continues_on_half_batches(tiny_prepared, tmp_path, monkeypatch):
    wrapped = []

    def build_small(*args, **kwargs):  # the loop is under test, not the model: a small fast one
        wrapped.append(OutOfMemoryAbove(small_net(), limit=2))
        return wrapped[-1]

    monkeypatch.setattr(train_module, "build_model", build_small)
    cfg = make_config(tiny_prepared, epochs=2, batch_size=4, max_train_batches=2)
    reported = []
    result = train_module.train(cfg, tmp_path, on_epoch=lambda m, _: reported.append(m))

    assert [(m["micro_batch"], m["accum_steps"], m["oom_retries"]) for m in reported] == [(2, 2, 1)] * 2
    assert result["accum_steps"] == 2 and result["train_loss"] > 0
    # the failed 4 once, then each of the 2 steps per epoch as two forwards of 2; val runs on 4s
    epoch_2 = [2, 2, 2, 2, 4, 4]
    assert wrapped[0].sizes == [4, *epoch_2, *epoch_2]


def test_out_of_memory_with_one_sample_stops_with_a_clear_error():
    model = OutOfMemoryAbove(small_net(), limit=0)
    cfg = TrainConfig(lr=0.1, dice_weight=0.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    batching = Batching(4)
    with pytest.raises(OutOfMemoryAtBatchOne, match="1 sample per forward pass.*train.batch_size 4"):
        accumulated_step(
            model,
            torch.randn(4, 3, 8, 8),
            torch.randint(0, len(CLASSES), (4, 8, 8)),
            build_loss(cfg),
            optimizer,
            build_scheduler(optimizer, 4, cfg),
            torch.amp.GradScaler("cpu", enabled=False),
            batching=batching,
        )
    assert model.sizes == [4, 2, 1] and batching.oom_retries == 2
    assert all(p.grad is None for p in model.parameters())  # nothing half-accumulated left behind


def test_a_resumed_trial_keeps_the_split_it_had_shrunk_to():
    assert Batching.resumed(8, {"micro_batch": 2, "oom_retries": 2}).metrics() == {
        "micro_batch": 2,
        "accum_steps": 4,
        "oom_retries": 2,
    }
    assert Batching.resumed(6, {}).metrics() == {"micro_batch": 6, "accum_steps": 1, "oom_retries": 0}
    b = Batching(6)
    b.halve("fake")
    b.halve("fake")
    assert (b.micro_batch, b.accum_steps) == (2, 3)  # 6 -> 3 -> 2 samples per forward pass
