"""gpu_check sections that train: a few members with tuning.train.train() (no Ray), their export to
a manifest, the ensemble on the test split and its overhead (benchmarks/ensemble_overhead.py)."""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import torch

from configs.schema import parse_config
from tuning.library_export import TrialSummary, export_members, rank, write_trials_csv
from tuning.train import train

# The benchmark scripts import each other by name: benchmarks/ on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ensemble_overhead  # noqa: E402


def member_config(prep: Path, arch: str, encoder: str, plan: dict) -> dict:
    """The RunConfig dict of one short training: the recipe's training settings at the plan's size."""
    return {
        "seed": 0,
        "data": {
            "datasets": [{"path": str(prep)}],
            "image_size": plan["size"],
            "num_workers": plan["workers"],
        },
        "model": {"arch": arch, "encoder": encoder, "encoder_weights": None},
        "train": {
            "epochs": plan["epochs"],
            "batch_size": plan["batch_size"],
            "amp": "bf16",
            "channels_last": "auto",
            "max_train_batches": plan.get("max_train_batches"),
        },
    }


def train_members(prep: Path, out: Path, plan: dict) -> dict:
    """Train plan['members'] one after another with train(); export them to out/models (manifest.json,
    m{i}.safetensors, trials.csv); returns per-member warm-up and score."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    summaries, rows = [], []
    for i, (arch, encoder) in enumerate(plan["members"]):
        cfg = parse_config(member_config(prep, arch, encoder, plan), source=f"gpu_check member {i}")
        epochs: list[dict] = []
        t0 = time.perf_counter()
        result = train(cfg, out / "work" / f"m{i}", on_epoch=lambda m, _d: epochs.append(m))
        wall = time.perf_counter() - t0
        summaries.append(
            TrialSummary(
                trial_id=f"gpu_check_{i}",
                config={"model.arch": arch, "model.encoder": encoder},
                status="completed",
                metric="val_f1",
                epochs=epochs,
                best_score=float(result["best_val_f1"]),
                best_checkpoint=Path(result["checkpoint"]),
                node=platform.node(),
                device=device,
                train_s=wall,
                wall_s=wall,
            )
        )
        images = plan["train_images"] * plan["epochs"]
        rows.append(
            {
                "arch": arch,
                "encoder": encoder,
                "epochs": plan["epochs"],
                "best_val_f1": result["best_val_f1"],
                "first_step_s": result["first_step_s"],
                "first_epoch_s": result["first_epoch_s"],
                "epoch_s": result["epoch_s"],
                "wall_s": wall,
                "train_images_per_s_overall": images / wall,
            }
        )
    models = out / "models"
    export_members(rank(summaries, top_k=len(summaries), max_per_arch=None), models)
    write_trials_csv(summaries, models / "trials.csv")
    return {"members": rows, "manifest": str(models / "manifest.json")}


def run_ensemble(prep: Path, manifest: Path, out: Path, plan: dict) -> dict:
    """`python -m ensemble run` on the test split (flip TTA, no recipe); its scores and timings."""
    from ensemble.__main__ import main as ensemble_main

    sub = out / "submission"
    argv = ["run", "--manifest", str(manifest), "--images", str(prep), "--split", "test", "--out", str(sub)]
    argv += ["--tta", "flip", "--viz", "0", "--quiet", "--overwrite", "--batch-size", str(plan["batch_size"])]
    t0 = time.perf_counter()
    code = ensemble_main(argv)
    wall = time.perf_counter() - t0
    if code:
        raise RuntimeError(f"python -m ensemble {' '.join(argv)} exited with {code}")
    report = json.loads((sub / "report.json").read_text()) if (sub / "report.json").is_file() else {}
    return {"exit_code": code, "wall_s": wall, "report": _summary(report)}


def ensemble_overhead_numbers(prep: Path, manifest: Path, out: Path, plan: dict) -> dict:
    """benchmarks/ensemble_overhead.py over the test split: pipeline ms/image against the compute floor."""
    path = out / "ensemble_overhead.json"
    argv = [
        "--manifest",
        str(manifest),
        "--images",
        str(prep),
        "--split",
        "test",
        "--num",
        str(plan["images"]),
    ]
    argv += ["--batch-size", str(plan["batch_size"]), "--repeat", str(plan["repeat"]), "--json", str(path)]
    ensemble_overhead.main(argv)
    return json.loads(path.read_text())


def _summary(report: dict) -> dict:
    # report.json is large (per-image rows); keep what a reader of the GPU check looks at.
    keep = ("stages", "timings", "images", "device", "members")
    return {k: report[k] for k in keep if k in report}
