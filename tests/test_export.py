"""Top-k export from plain trial records: ranking, weights + manifest, trials.csv, plot; no Ray."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

from tuning.library_export import (
    TrialSummary,
    export_members,
    plot_trials,
    rank,
    ranked_table,
    write_per_class_csv,
    write_trials_csv,
)
from tuning.manifest import read_manifest

REPO = Path(__file__).resolve().parents[1]


def checkpoint(folder: Path, arch: str, encoder: str, val_f1: float, epoch: int, seed: int) -> Path:
    """A checkpoint directory as tuning.train writes it: model.safetensors + meta.json."""
    folder.mkdir(parents=True)
    save_file({"w": torch.full((2, 2), float(seed))}, str(folder / "model.safetensors"))
    meta = {
        "arch": arch,
        "encoder": encoder,
        "image_size": 64,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.25, 0.25, 0.25],
        "epoch": epoch,
        "val_f1": val_f1,
        "config": {"seed": seed},
    }
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


def trial(
    i: int,
    arch: str,
    scores: list[float],
    ckpt: Path | None = None,
    status: str = "completed",
    error: str = "",
) -> TrialSummary:
    return TrialSummary(
        trial_id=f"trial_{i:05d}",
        config={"model.arch": arch, "model.encoder": "resnet18", "train.lr": 1e-3 * i},
        status=status,
        metric="val_f1",
        epochs=[{"epoch": e + 1, "val_f1": s, "train_loss": 1.0 / (e + 1)} for e, s in enumerate(scores)],
        best_score=max(scores) if scores else math.nan,
        best_checkpoint=ckpt,
        error=error,
        node="node-a",
        device="cpu",
        train_s=10.0 * (i + 1),
        wall_s=10.0 * (i + 1) + 2.0,
    )


def test_top_k_is_ranked_by_score_and_capped_per_architecture(tmp_path):
    def t(i, arch, f1, ckpt=True):
        return TrialSummary(
            trial_id=str(i),
            config={"model.arch": arch, "model.encoder": "e"},
            status="completed",
            metric="val_f1",
            best_score=f1,
            best_checkpoint=tmp_path if ckpt else None,
        )

    trials = [
        t(0, "Unet", 0.9),
        t(1, "Unet", 0.8),
        t(2, "Unet", 0.7),
        t(3, "FPN", 0.6),
        t(4, "FPN", float("nan")),
        t(5, "FPN", 0.95, ckpt=False),
    ]
    assert [m.trial_id for m in rank(trials, top_k=3, max_per_arch=None)] == ["0", "1", "2"]
    # at most two Unets: the FPN moves up; trials without a score or checkpoint never count
    assert [m.trial_id for m in rank(trials, top_k=3, max_per_arch=2)] == ["0", "1", "3"]
    assert [m.trial_id for m in rank(trials, top_k=5, max_per_arch=1)] == ["0", "3"]


def test_export_copies_best_weights_and_writes_a_checked_manifest(tmp_path):
    trials = [
        trial(0, "Unet", [0.4, 0.6], checkpoint(tmp_path / "c0", "Unet", "resnet18", 0.6, 2, seed=0)),
        trial(1, "FPN", [0.5, 0.7], checkpoint(tmp_path / "c1", "FPN", "resnet18", 0.7, 2, seed=1)),
        trial(
            2,
            "Unet",
            [0.3],
            checkpoint(tmp_path / "c2", "Unet", "resnet18", 0.3, 1, seed=2),
            status="stopped early",
        ),
        trial(3, "FPN", [], status="error", error="CUDA out of memory"),
    ]
    members = rank(trials, top_k=2, max_per_arch=None)
    out = tmp_path / "models"
    manifest = export_members(members, out)

    read = read_manifest(out / "manifest.json")
    assert [(m.name, m.trial_id, m.val_f1, m.epoch) for m in read.members] == [
        ("m0-FPN-resnet18", "trial_00001", 0.7, 2),
        ("m1-Unet-resnet18", "trial_00000", 0.6, 2),
    ]
    assert read.members == manifest.members
    for member, source in zip(read.members, ("c1", "c0")):
        assert (out / member.weights).read_bytes() == (tmp_path / source / "model.safetensors").read_bytes()
    assert read.members[0].config == {"seed": 1}

    df = write_trials_csv(trials, out / "trials.csv")
    csv = pd.read_csv(out / "trials.csv")
    assert list(csv["trial_id"]) == ["trial_00001", "trial_00000", "trial_00002", "trial_00003"]
    assert list(csv["epochs"]) == [2, 2, 1, 0]
    assert csv["best_val_f1"].iloc[:3].tolist() == [0.7, 0.6, 0.3] and math.isnan(csv["best_val_f1"].iloc[3])
    assert csv["train.lr"].iloc[0] == 1e-3 and set(csv["status"]) == {"completed", "stopped early", "error"}
    assert df["overhead_s"].tolist() == [2.0] * 4
    assert csv["error"].iloc[3] == "CUDA out of memory"

    table = ranked_table(trials, members).splitlines()
    assert "val_f1" in table[0]
    assert table[1].split()[:3] == ["1", "m0", "trial_00001"] and table[3].split()[:2] == ["3", "trial_00002"]

    plot_trials(trials, out / "trials.png")
    assert (out / "trials.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_export_layer_imports_no_ray():
    code = (
        "import sys, tuning.library_export, tuning.manifest, tuning.study, ensemble.core.members; "
        "sys.exit(any(m == 'ray' or m.startswith('ray.') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False, cwd=REPO).returncode == 0


def test_export_records_sha256_so_a_swapped_member_is_refused(tmp_path):
    import hashlib

    from tuning.manifest import ManifestError, check_sha256

    trials = [
        trial(0, "Unet", [0.6], checkpoint(tmp_path / "c0", "Unet", "resnet18", 0.6, 1, seed=0)),
        trial(1, "Unet", [0.5], checkpoint(tmp_path / "c1", "Unet", "resnet18", 0.5, 1, seed=1)),
    ]
    out = tmp_path / "models"
    manifest = export_members(rank(trials, top_k=2, max_per_arch=None), out)
    m0, m1 = manifest.members
    for m in (m0, m1):
        assert m.sha256 == hashlib.sha256((out / m.weights).read_bytes()).hexdigest()
    check_sha256(out / m0.weights, m0, manifest.path)  # intact
    with pytest.raises(ManifestError, match=r"member 'm0-Unet-resnet18'.*sha256 .* does not match"):
        check_sha256(out / m1.weights, m0, manifest.path)  # another trial's weights in m0's place


def test_per_class_f1_csv_and_the_batch_split_columns_come_from_the_reported_epochs(tmp_path):
    def epoch(e, f1, skin, micro, retries):
        split = {"micro_batch": micro, "accum_steps": 8 // micro, "oom_retries": retries}
        return {"epoch": e, "val_f1": f1, "val_f1_skin": skin, "val_f1_hat": None, **split}

    shrunk = trial(0, "Unet", [])
    shrunk.epochs = [epoch(1, 0.5, 0.8, 4, 1), epoch(2, 0.4, 0.7, 2, 2)]  # best epoch: 1
    shrunk.best_score = 0.5
    plain = trial(1, "FPN", [])
    plain.epochs = [epoch(1, 0.3, 0.6, 8, 0), epoch(2, 0.6, 0.9, 8, 0)]
    plain.best_score = 0.6
    failed = trial(2, "FPN", [], status="error", error="boom")

    per_class = write_per_class_csv([shrunk, plain, failed], tmp_path / "per_class_f1.csv")
    csv = pd.read_csv(tmp_path / "per_class_f1.csv")
    assert list(csv.columns[:4]) == ["trial_id", "arch", "encoder", "epoch"] and len(csv.columns) == 4 + 19
    assert csv["trial_id"].tolist() == ["trial_00001", "trial_00000", "trial_00002"]
    assert csv["epoch"].tolist()[:2] == [2, 1] and csv["skin"].tolist()[:2] == [0.9, 0.8]
    assert csv["hat"].isna().all() and per_class["skin"].isna().tolist() == [False, False, True]

    write_trials_csv([shrunk, plain, failed], tmp_path / "trials.csv")
    trials = pd.read_csv(tmp_path / "trials.csv").set_index("trial_id")
    assert trials.loc["trial_00000", ["micro_batch", "accum_steps", "oom_retries"]].tolist() == [2, 4, 2]
    assert trials.loc["trial_00001", ["micro_batch", "accum_steps", "oom_retries"]].tolist() == [8, 1, 0]
    assert trials.loc["trial_00002", ["micro_batch", "accum_steps", "oom_retries"]].isna().all()


def test_trials_csv_shows_each_trials_warmup(tmp_path):
    warm = trial(0, "Unet", [0.4, 0.6])
    for e, (step, first, steady) in zip(warm.epochs, [(7.5, 30.0, math.nan), (7.5, 30.0, 6.0)]):
        e.update(first_step_s=step, first_epoch_s=first, epoch_s=steady)
    df = write_trials_csv([warm, trial(1, "FPN", [])], tmp_path / "trials.csv")
    csv = pd.read_csv(tmp_path / "trials.csv")
    assert csv[["first_step_s", "first_epoch_s", "epoch_s"]].iloc[0].tolist() == [7.5, 30.0, 6.0]
    assert csv[["first_step_s", "first_epoch_s", "epoch_s"]].iloc[1].isna().all()  # no epoch reported
    assert list(df.columns) == list(csv.columns)
