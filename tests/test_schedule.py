"""Per-iteration LR schedule: follows lr_at step by step, survives a resume, scales with batches."""

from __future__ import annotations

import io

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from configs.schema import TrainConfig
from tuning.schedule import build_scheduler, lr_at, steps_per_epoch

COSINE = TrainConfig(lr=1e-3, schedule="cosine", warmup_fraction=0.1, min_lr_ratio=0.01)
ONECYCLE = TrainConfig(lr=1e-3, schedule="onecycle", warmup_fraction=0.25, min_lr_ratio=0.001)


def fresh(cfg: TrainConfig, total: int):
    param = torch.nn.Parameter(torch.zeros(3))
    optimizer = torch.optim.AdamW([param], lr=cfg.lr)
    return param, optimizer, build_scheduler(optimizer, total, cfg)


def run_steps(param, optimizer, scheduler, n: int) -> list[float]:
    used = []
    for _ in range(n):
        used.append(optimizer.param_groups[0]["lr"])
        param.grad = torch.ones_like(param)
        optimizer.step()
        scheduler.step()
    return used


@pytest.mark.parametrize("cfg", [COSINE, ONECYCLE], ids=["cosine", "onecycle"])
def test_optimizer_lr_follows_lr_at_every_step(cfg):
    total = 50
    used = run_steps(*fresh(cfg, total), total)
    expected = [lr_at(s, total, cfg) for s in range(total)]
    assert used == pytest.approx(expected, rel=1e-9)


def test_cosine_warms_up_from_near_zero_then_decays_to_min_lr():
    total = 100
    lrs = [lr_at(s, total, COSINE) for s in range(total)]
    assert lrs[0] == pytest.approx(COSINE.lr / 10)  # 10 warm-up steps
    assert lrs[9] == pytest.approx(COSINE.lr)
    assert all(a < b for a, b in zip(lrs[:9], lrs[1:10]))  # rising during warm-up
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))  # falling afterwards
    assert lrs[-1] == pytest.approx(COSINE.lr * COSINE.min_lr_ratio)
    assert lrs[9 + 45] == pytest.approx((COSINE.lr + COSINE.lr * COSINE.min_lr_ratio) / 2, rel=0.05)


def test_onecycle_rises_from_lr_over_25_to_peak_then_falls_to_min():
    total = 40
    lrs = [lr_at(s, total, ONECYCLE) for s in range(total)]
    assert lrs[0] == pytest.approx(ONECYCLE.lr / 25)
    assert max(lrs) == pytest.approx(ONECYCLE.lr)
    assert lrs.index(max(lrs)) == 10
    assert lrs[-1] == pytest.approx(ONECYCLE.lr * ONECYCLE.min_lr_ratio)


@pytest.mark.parametrize("cfg", [COSINE, ONECYCLE], ids=["cosine", "onecycle"])
def test_resumed_schedule_continues_on_the_same_curve(cfg):
    total, stop = 40, 17
    uninterrupted = run_steps(*fresh(cfg, total), total)

    param, optimizer, scheduler = fresh(cfg, total)
    first = run_steps(param, optimizer, scheduler, stop)
    buffer = io.BytesIO()
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)  # numbers only: no pickled lambdas
    param2, optimizer2, scheduler2 = fresh(cfg, total)
    optimizer2.load_state_dict(state["optimizer"])
    scheduler2.load_state_dict(state["scheduler"])
    rest = run_steps(param2, optimizer2, scheduler2, total - stop)

    assert first + rest == pytest.approx(uninterrupted, rel=1e-9)


def test_smaller_batches_mean_more_steps_on_the_same_curve():
    data = TensorDataset(torch.zeros(24, 1))
    epochs = 3
    totals = {
        bs: epochs * steps_per_epoch(len(DataLoader(data, batch_size=bs, drop_last=True))) for bs in (8, 4, 5)
    }
    assert totals == {8: 9, 4: 18, 5: 12}
    assert epochs * steps_per_epoch(6, max_train_batches=2) == 6
    # Each run still ends at the minimum LR on its own last step.
    for total in totals.values():
        assert lr_at(total - 1, total, COSINE) == pytest.approx(COSINE.lr * COSINE.min_lr_ratio)
        assert lr_at(total // 2, total, COSINE) > 10 * COSINE.lr * COSINE.min_lr_ratio
