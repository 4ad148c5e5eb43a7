"""Faults found by scripts/fault_scenarios.py: resume exactness with dropout, Ctrl-C with every trial running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_search import tiny_config
from test_train import make_config

from tuning.train import train

REPO = Path(__file__).resolve().parents[1]


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


@pytest.mark.slow  # starts Ray
def test_ctrl_c_after_every_trial_started_exports_nothing_and_resume_finishes(tmp_path, tiny_prepared):
    # every trial already running when Ctrl-C comes: Tune's ResultGrid calls them all terminated
    config = tiny_config(tmp_path, tiny_prepared, num_samples=2, max_concurrent=2, asha={"grace_period": 2})
    cmd = [sys.executable, "-m", "tuning", "--config", str(config), "--out", str(tmp_path / "m")]
    cmd += ["--name", "int", "--max-epochs", "2"]
    proc = subprocess.Popen(
        cmd, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    results = tmp_path / "ray" / "int"
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            rows = [len(p.read_text().splitlines()) for p in results.glob("*/result.json")]
            if len(rows) == 2 and min(rows) >= 1:
                break
            time.sleep(0.3)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=120) == 130
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert not (tmp_path / "m" / "manifest.json").exists()
    assert subprocess.run(cmd + ["--resume"], cwd=REPO, timeout=400, capture_output=True).returncode == 0
    assert (tmp_path / "m" / "manifest.json").exists()
