"""Train one model on prepared datasets (no Ray here): the loop the Ray trainable wraps."""
from __future__ import annotations

import math
import os
import random
import shutil
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, get_worker_info

from configs.schema import RunConfig
from data_prep.dataset import build_datasets, class_weights_from, seed_transforms
from tuning.checkpoint import load_checkpoint, save_checkpoint
from tuning.losses import build_loss
from tuning.metrics import ConfusionMatrix
from tuning.models import build_model, resolve_device
from tuning.schedule import build_scheduler, steps_per_epoch

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def train(cfg: RunConfig, work_dir: Path, *, resume_from: Path | None = None,
          on_epoch: Callable[[dict, Path], None] | None = None,
          cpus: int | None = None) -> dict:
    """Train one model; returns the final metrics dict (+ 'best_val_f1', 'checkpoint': path of best).

    Each epoch writes work_dir/checkpoints/epoch_NNN and calls on_epoch(metrics, that_dir);
    afterwards only the newest and the best-val_f1 checkpoints are kept. resume_from (a
    checkpoint dir) continues at its epoch + 1 on the same LR curve.
    """
    work_dir = Path(work_dir)
    ckpt_root = work_dir / "checkpoints"
    seed_everything(cfg.seed)
    device = resolve_device(cfg.train.device)
    cuda = device.type == "cuda"
    torch.backends.cudnn.benchmark = True

    # ---- data
    generator = torch.Generator().manual_seed(cfg.seed)
    train_set, val_set, sampler = build_datasets(cfg, generator=generator)
    if len(train_set) < cfg.train.batch_size:
        raise ValueError(f"train.batch_size {cfg.train.batch_size} is larger than the train set "
                         f"({len(train_set)} samples)")
    workers = loader_workers(cfg.data.num_workers, cpus)
    if workers:
        # The loader processes are the parallelism. Set this in the parent, before the fork:
        # cv2.setNumThreads inside a forked worker can hang on the pool state it inherited.
        cv2.setNumThreads(1)
    if cpus is not None:
        torch.set_num_threads(max(1, cpus - workers))
    loader_args = dict(batch_size=cfg.train.batch_size, num_workers=workers, pin_memory=cuda,
                       persistent_workers=workers > 0, worker_init_fn=_seed_worker)
    train_loader = DataLoader(train_set, sampler=sampler, shuffle=sampler is None, drop_last=True,
                              generator=generator, **loader_args)
    val_loader = DataLoader(val_set, shuffle=False, **loader_args)
    epoch_steps = steps_per_epoch(len(train_loader), cfg.train.max_train_batches)
    total_steps = cfg.train.epochs * epoch_steps

    # ---- model, optimizer, schedule, loss
    model = build_model(cfg.model.arch, cfg.model.encoder, cfg.model.encoder_weights,
                        weights_cache=cfg.model.weights_cache).to(device)
    memory_format = torch.channels_last if cuda and cfg.train.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    scheduler = build_scheduler(optimizer, total_steps, cfg.train)
    amp_dtype = AMP_DTYPES.get(cfg.train.amp) if cuda else None  # CPU runs in float32
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    class_weights = class_weights_from(cfg).to(device) if cfg.train.class_weights else None
    loss_fn = build_loss(cfg.train, class_weights).to(device)

    start_epoch, global_step, best_f1, best_epoch = 1, 0, None, None
    if resume_from is not None:
        state = load_checkpoint(resume_from, model, optimizer, scheduler, scaler)
        start_epoch, global_step = state["epoch"] + 1, state["global_step"]
        best_f1, best_epoch = state["best_val_f1"], state["best_epoch"]
        if global_step != state["epoch"] * epoch_steps:
            print(f"warning: {resume_from} was saved after {global_step} steps, but {state['epoch']} "
                  f"epochs are {state['epoch'] * epoch_steps} steps with this config", flush=True)
        metrics = {k: state["meta"].get(k) for k in METRIC_KEYS}  # returned if no epoch is left

    # ---- loop
    for epoch in range(start_epoch, cfg.train.epochs + 1):
        t0 = time.perf_counter()
        # Reseed per epoch so a resumed run draws the same batches as an uninterrupted one (and,
        # with 0 loader workers, the same augmentations; workers are seeded once at start).
        generator.manual_seed(cfg.seed * 100_003 + epoch)
        seed_transforms(train_set, cfg.seed * 100_003 + epoch)
        model.train()
        loss_sum, batches = torch.zeros((), device=device), 0
        for images, masks in train_loader:
            if batches == epoch_steps:
                break
            images = images.to(device, non_blocking=True, memory_format=memory_format)
            masks = masks.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                logits = model(images)
            loss = loss_fn(logits, masks)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.train.grad_clip:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            lr = optimizer.param_groups[0]["lr"]  # the lr this step used
            scheduler.step()
            loss_sum += loss.detach()
            batches += 1
            global_step += 1
        train_loss = float(loss_sum) / max(1, batches)
        if not math.isfinite(train_loss):
            raise FloatingPointError(f"train loss is {train_loss} in epoch {epoch} (lr {lr:.3g}): "
                                     "the model diverged; lower train.lr or raise train.grad_clip")

        scores = evaluate(model, val_loader, device, loss_fn=loss_fn, amp_dtype=amp_dtype,
                          memory_format=memory_format)
        metrics = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": scores["loss"],
            "val_f1": scores["f1"],
            "val_f1_with_bg": scores["f1_with_bg"],
            "val_miou": scores["miou"],
            "val_pixel_acc": scores["pixel_acc"],
            "lr": lr,
            "epoch_seconds": time.perf_counter() - t0,
            "val_per_class_f1": scores["per_class_f1"],
        }
        if math.isfinite(metrics["val_f1"]) and (best_f1 is None or metrics["val_f1"] > best_f1):
            best_f1, best_epoch = metrics["val_f1"], epoch
        print(f"epoch {epoch}/{cfg.train.epochs}  train_loss {train_loss:.4f}  val_loss "
              f"{metrics['val_loss']:.4f}  val_f1 {metrics['val_f1']:.4f}  val_miou "
              f"{metrics['val_miou']:.4f}  lr {lr:.2e}  {metrics['epoch_seconds']:.1f}s", flush=True)

        ckpt_dir = save_checkpoint(ckpt_root / f"epoch_{epoch:03d}", model, optimizer, scheduler, scaler,
                                   epoch, global_step, metrics, cfg, best_val_f1=best_f1,
                                   best_epoch=best_epoch)
        if on_epoch is not None:
            on_epoch(dict(metrics), ckpt_dir)
        _prune_checkpoints(ckpt_root, keep={ckpt_dir.name, _epoch_dir_name(best_epoch)})

    best_dir = _best_checkpoint(ckpt_root, best_epoch, resume_from)
    return {**metrics, "best_val_f1": best_f1, "checkpoint": str(best_dir) if best_dir else None}


METRIC_KEYS = ("epoch", "train_loss", "val_loss", "val_f1", "val_f1_with_bg", "val_miou",
               "val_pixel_acc", "lr", "epoch_seconds", "val_per_class_f1")


@torch.inference_mode()
def evaluate(model: torch.nn.Module, loader: DataLoader, device: torch.device | str, *,
             loss_fn: torch.nn.Module | None = None, amp_dtype: torch.dtype | None = None,
             memory_format: torch.memory_format = torch.contiguous_format) -> dict:
    """Scores (tuning.metrics.scores_from_confusion) over a loader; + 'loss' when loss_fn is given."""
    device = torch.device(device)
    model.eval()
    confusion = ConfusionMatrix(device=device)
    loss_sum, samples = torch.zeros((), device=device), 0
    for images, masks in loader:
        images = images.to(device, non_blocking=True, memory_format=memory_format)
        masks = masks.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(images)
        if loss_fn is not None:
            loss_sum += loss_fn(logits, masks) * images.shape[0]
            samples += images.shape[0]
        confusion.update(logits.argmax(dim=1), masks)
    scores = confusion.scores()
    if loss_fn is not None:
        scores["loss"] = float(loss_sum) / max(1, samples)
    return scores


def loader_workers(num_workers: int | None, cpus: int | None) -> int:
    """data.num_workers if set, else one less than the CPUs this run may use (at most 8)."""
    if num_workers is not None:
        return num_workers
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(8, max(0, int(cpus) - 1))


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _seed_worker(worker_id: int) -> None:
    # torch gives each worker base_seed + worker_id (base_seed drawn from the loader's generator);
    # hand it to numpy, random and albumentations (which keeps its own generator per transform).
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
    seed_transforms(get_worker_info().dataset, seed)


def _epoch_dir_name(epoch: int | None) -> str | None:
    return None if epoch is None else f"epoch_{epoch:03d}"


def _prune_checkpoints(root: Path, keep: set[str | None]) -> None:
    for path in root.glob("epoch_*"):
        if path.is_dir() and path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)


def _best_checkpoint(root: Path, best_epoch: int | None, resume_from: Path | None) -> Path | None:
    if best_epoch is not None:
        candidate = root / _epoch_dir_name(best_epoch)
        if candidate.is_dir():
            return candidate
        if resume_from is not None and Path(resume_from).name == _epoch_dir_name(best_epoch):
            return Path(resume_from)
    newest = sorted(root.glob("epoch_*"))
    return newest[-1] if newest else None
