"""What the fault scenarios rely on: a resumed trial repeats the uninterrupted one exactly."""

from __future__ import annotations

import pytest
from test_train import make_config

from tuning.train import train


class Killed(RuntimeError):
    pass


def test_resumed_run_with_dropout_is_bit_identical_to_the_uninterrupted_one(tiny_prepared, tmp_path):
    # FPN's segmentation head has dropout: its masks come from torch's global generator
    cfg = make_config(tiny_prepared, epochs=3, max_train_batches=2).with_overrides({"model.arch": "FPN"})
    full = []
    train(cfg, tmp_path / "full", on_epoch=lambda m, d: full.append(m), cpus=1)

    def kill_after_epoch_1(metrics, ckpt_dir):
        if metrics["epoch"] == 1:
            raise Killed

    with pytest.raises(Killed):
        train(cfg, tmp_path / "killed", on_epoch=kill_after_epoch_1, cpus=1)
    resumed = []
    train(
        cfg,
        tmp_path / "resumed",
        resume_from=tmp_path / "killed" / "checkpoints" / "epoch_001",
        on_epoch=lambda m, d: resumed.append(m),
        cpus=1,
    )
    keys = ("epoch", "train_loss", "val_loss", "val_f1", "lr")
    assert [[m[k] for k in keys] for m in resumed] == [[m[k] for k in keys] for m in full[1:]]
