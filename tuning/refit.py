"""The refit's Ray layer: the chosen configs x K folds (or x S seeds) as one Ray Tune experiment.

No scheduler and no searcher (these are final trainings, full epochs): a grid of jobs, each the
same tuning.train.train as a search trial, one trial's resources each, spread over the cluster's
nodes. It starts, joins, resumes and reads back experiments with tuning.search's code, so an
interrupted refit continues with --resume exactly as a search does.

A fold model trains on the other folds and is scored each epoch on its held-out fold (its learning
curve); after the last epoch it predicts that fold (tuning.oof) into the checkpoint it reports, so
the out-of-fold file travels with the weights through Tune's storage. A seed model trains on the
train split, is scored on val and stores its val probabilities the same way (for the bag's score).
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.fs
import ray
from ray import tune

from configs.schema import RunConfig, parse_config
from data_prep.dataset import FaceParsingDataset
from data_prep.layout import PreparedDataset
from data_prep.transforms import build_train_transform, build_val_transform
from tuning.checkpoint import MODEL_FILE, load_model_weights
from tuning.folds import FoldPlan
from tuning.library_export import TrialSummary
from tuning.models import build_model, resolve_device
from tuning.oof import OOF_FILE, predict_probs, write_oof
from tuning.search import (
    TRAIN_TIME,
    all_trials_ended,
    check_paths_visible,
    experiment_path,
    is_uri,
    restore_tuner,
    trial_summary,
)
from tuning.train import train

JOB = "job"  # the one grid dimension: {"bag": i, "fold": f or None, "seed": s}


def jobs(num_bags: int, plan: FoldPlan | None, seeds: int) -> list[dict[str, Any]]:
    """Every (bag, fold) or (bag, seed) training, bag by bag."""
    if plan is not None:
        return [{"bag": b, "fold": f, "seed": 0} for b in range(num_bags) for f in range(plan.k)]
    return [{"bag": b, "fold": None, "seed": s} for b in range(num_bags) for s in range(seeds)]


def job_config(base: dict[str, Any], job: dict[str, Any]) -> RunConfig:
    """A bag's config for one job: its seed moved by the job's seed index."""
    cfg = parse_config(base, source="refit config")
    return cfg.with_overrides({"seed": cfg.seed + int(job["seed"])}) if job["seed"] else cfg


def held_out_ids(cfg: RunConfig, job: dict[str, Any], plan: dict | None) -> list[str]:
    """The images the job's model does not train on: its fold (K folds) or the val split (seeds)."""
    if job["fold"] is None:
        return PreparedDataset(cfg.data.datasets[0].path).split_ids("val")
    return FoldPlan.from_json(plan).held_out(int(job["fold"]))


def refit_trainable(
    config: dict[str, Any], bags: list[dict[str, Any]], plan: dict | None, oof_resolution: int
) -> None:
    """One refit trial: train one config on one fold's complement (or the train split with a seed)."""
    job = config[JOB]
    cfg = job_config(bags[int(job["bag"])], job)
    check_paths_visible(cfg)
    root = cfg.data.datasets[0].path
    held_out = held_out_ids(cfg, job, plan)
    train_set = val_set = None
    if job["fold"] is not None:
        fold_plan = FoldPlan.from_json(plan)
        name = f"fold {job['fold']}"
        train_set = FaceParsingDataset(
            root, f"{name} complement", build_train_transform(cfg.data), ids=fold_plan.train_ids(job["fold"])
        )
        val_set = FaceParsingDataset(root, name, build_val_transform(cfg.data), ids=held_out)
    node = f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:8]}"
    device = resolve_device(cfg.train.device)
    since = time.perf_counter()

    def on_epoch(metrics: dict, checkpoint_dir: Path) -> None:
        nonlocal since
        if metrics["epoch"] == cfg.train.epochs:  # the final model: its held-out probabilities
            model = build_model(cfg.model.arch, cfg.model.encoder, None).to(device)
            load_model_weights(model, checkpoint_dir / MODEL_FILE)
            probs = predict_probs(model, cfg, held_out, oof_resolution, device, cfg.train.batch_size)
            write_oof(checkpoint_dir / OOF_FILE, held_out, probs)
        flat = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
        flat.update(node=node, device=device.type, **{TRAIN_TIME: time.perf_counter() - since})
        tune.report(flat, checkpoint=tune.Checkpoint.from_directory(str(checkpoint_dir)))
        since = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="faceparse-refit-") as work:
        checkpoint = tune.get_checkpoint()
        resume_from = None
        if checkpoint is not None:
            resume_from = Path(checkpoint.to_directory(os.path.join(work, "restored")))
        train(
            cfg,
            Path(work),
            resume_from=resume_from,
            on_epoch=on_epoch,
            cpus=max(1, int(cfg.resources.cpu)),
            train_set=train_set,
            val_set=val_set,
        )


def resourced_refit(cfg: RunConfig, bags: list[dict], plan: dict | None, oof_resolution: int):
    res = {"cpu": cfg.resources.cpu, "gpu": cfg.resources.gpu}
    fn = tune.with_parameters(refit_trainable, bags=bags, plan=plan, oof_resolution=oof_resolution)
    return tune.with_resources(fn, res)


def build_refit_tuner(cfg: RunConfig, name: str, trainable, grid: list[dict[str, Any]]):
    """A Tuner over the job grid: no scheduler, no searcher, the newest checkpoint kept per trial."""
    storage = cfg.resources.storage
    return tune.Tuner(
        trainable,
        param_space={JOB: tune.grid_search(grid)},
        tune_config=tune.TuneConfig(max_concurrent_trials=cfg.search.max_concurrent),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage if is_uri(storage) else str(Path(storage).resolve()),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            failure_config=tune.FailureConfig(max_failures=cfg.search.max_failures),
        ),
    )


@dataclass
class RefitModel:
    """One finished refit training: its job, its trial record and its final checkpoint (a local dir)."""

    job: dict[str, Any]
    trial: TrialSummary
    checkpoint: Path | None


def summarize_refit(results: tune.ResultGrid, cfg: RunConfig, staging: Path) -> list[RefitModel]:
    """RefitModels in grid order; remote final checkpoints (s3://...) are downloaded to staging."""
    out = []
    for result in results:
        job = (result.config or {})[JOB]
        trial = trial_summary(result, cfg, staging)
        checkpoint = None
        if result.checkpoint is not None:  # the newest: final trainings keep their last epoch
            ckpt = result.checkpoint
            if isinstance(ckpt.filesystem, pyarrow.fs.LocalFileSystem):
                checkpoint = Path(ckpt.path)
            else:
                checkpoint = Path(ckpt.to_directory(str(staging / f"{trial.trial_id}-final")))
        out.append(RefitModel(job, trial, checkpoint))
    return sorted(out, key=lambda m: (m.job["bag"], m.job["fold"] or 0, m.job["seed"]))


def run_refit(
    cfg: RunConfig, name: str, trainable, grid: list[dict[str, Any]], *, resume: bool, staging: Path
) -> list[RefitModel] | None:
    """Run (or resume) the refit inside search.ray_session; None when interrupted (Ctrl-C, lost
    driver: Tune saved its state for --resume)."""
    path = experiment_path(cfg, name)
    tuner = restore_tuner(cfg, path, trainable) if resume else build_refit_tuner(cfg, name, trainable, grid)
    results = tuner.fit()
    if len(results) < len(grid) or not all_trials_ended(path):
        return None
    return summarize_refit(results, cfg, staging)
