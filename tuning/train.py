"""Train one model on prepared datasets (no Ray here): the loop the Ray trainable wraps."""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from configs.schema import RunConfig
from data_prep.dataset import class_weights_from
from tuning.checkpoint import load_checkpoint, save_checkpoint
from tuning.loaders import build_loaders, reseed_epoch, seed_everything
from tuning.losses import build_loss
from tuning.metrics import PER_CLASS_F1_KEYS, ConfusionMatrix, flat_per_class_f1
from tuning.models import build_model, resolve_device
from tuning.oom import Batching, accumulated_step
from tuning.schedule import build_scheduler, steps_per_epoch
from tuning.speed import WarmupClock, compile_model, memory_format_for, pad_batch

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def train(
    cfg: RunConfig,
    work_dir: Path,
    *,
    resume_from: Path | None = None,
    on_epoch: Callable[[dict, Path], None] | None = None,
    cpus: int | None = None,
    train_set: Dataset | None = None,
    val_set: Dataset | None = None,
    loss_fn: torch.nn.Module | None = None,
) -> dict:
    """Train one model; returns the final metrics dict (+ 'best_val_f1', 'checkpoint': path of best).

    Each epoch writes work_dir/checkpoints/epoch_NNN and calls on_epoch(metrics, that_dir);
    afterwards only the newest and the best-val_f1 checkpoints are kept. resume_from (a
    checkpoint dir) continues at its epoch + 1 on the same LR curve. With data.num_workers 0 on
    the CPU the resumed epochs are bit-identical to an uninterrupted run's (same batches,
    augmentations and dropout masks: tuning.loaders.reseed_epoch); loader workers are seeded
    when they start, so with workers the augmentations after a resume differ, and on CUDA
    (cudnn.benchmark, atomics) the floats may too: there only the batch order and LR curve hold.
    train_set and loss_fn replace the config's train split and loss (distillation: targets
    (labels, teacher probabilities), tuning.soft_targets); validation stays on cfg.data's val split
    unless val_set replaces it (a refit fold: its held-out images).
    """
    ckpt_root = Path(work_dir) / "checkpoints"
    seed_everything(cfg.seed)
    device = resolve_device(cfg.train.device)
    cuda = device.type == "cuda"
    clock = WarmupClock(device)  # data, model and compile time count as warm-up
    torch.backends.cudnn.benchmark = True

    # ---- data
    generator = torch.Generator().manual_seed(cfg.seed)
    train_loader, val_loader = build_loaders(
        cfg, generator, cpus=cpus, pin_memory=cuda, train_set=train_set, val_set=val_set
    )
    epoch_steps = steps_per_epoch(len(train_loader), cfg.train.max_train_batches)

    # ---- model, optimizer, schedule, loss
    model = build_model(
        cfg.model.arch, cfg.model.encoder, cfg.model.encoder_weights, weights_cache=cfg.model.weights_cache
    ).to(device)
    memory_format = memory_format_for(cfg.train.channels_last, cfg.model.encoder, device)
    model = model.to(memory_format=memory_format)
    if cfg.train.compile:
        compile_model(model)  # in place: checkpoints keep the plain module's state_dict keys
    # Val batches padded to the batch size: a short last batch would be a new shape to autotune
    # (cudnn.benchmark) and recompile; drop_last instead would leave val images unscored.
    val_pad = cfg.train.batch_size if cuda or cfg.train.compile else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    scheduler = build_scheduler(optimizer, cfg.train.epochs * epoch_steps, cfg.train)
    amp_dtype = AMP_DTYPES.get(cfg.train.amp) if cuda else None  # CPU runs in float32
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    class_weights = class_weights_from(cfg).to(device) if cfg.train.class_weights else None
    loss_fn = (build_loss(cfg.train, class_weights) if loss_fn is None else loss_fn).to(device)

    start_epoch, global_step, best_f1, best_epoch, metrics = 1, 0, None, None, {}
    if resume_from is not None:
        start_epoch, global_step, best_f1, best_epoch, metrics = _resume(
            resume_from, model, optimizer, scheduler, scaler, epoch_steps
        )
    batching = Batching.resumed(cfg.train.batch_size, metrics)

    # ---- loop
    for epoch in range(start_epoch, cfg.train.epochs + 1):
        t0 = time.perf_counter()
        reseed_epoch(train_loader, generator, cfg.seed, epoch)
        train_loss, lr, steps = train_epoch(
            model,
            train_loader,
            epoch_steps,
            loss_fn,
            optimizer,
            scheduler,
            scaler,
            amp_dtype=amp_dtype,
            memory_format=memory_format,
            grad_clip=cfg.train.grad_clip,
            batching=batching,
            on_first_step=clock.first_step if epoch == start_epoch else None,
        )
        global_step += steps
        if not math.isfinite(train_loss):
            raise FloatingPointError(
                f"train loss is {train_loss} in epoch {epoch} (lr {lr:.3g}): "
                "the model diverged; lower train.lr or raise train.grad_clip"
            )
        scores = evaluate(
            model,
            val_loader,
            device,
            loss_fn=loss_fn,
            amp_dtype=amp_dtype,
            memory_format=memory_format,
            pad_to=val_pad,
        )
        seconds = time.perf_counter() - t0
        metrics = {**epoch_metrics(epoch, train_loss, scores, lr, seconds), **clock.epoch_done(seconds)}
        metrics.update(batching.metrics())
        if math.isfinite(metrics["val_f1"]) and (best_f1 is None or metrics["val_f1"] > best_f1):
            best_f1, best_epoch = metrics["val_f1"], epoch
        print(_epoch_line(metrics, cfg.train.epochs), flush=True)

        ckpt_dir = save_checkpoint(
            ckpt_root / _epoch_dir_name(epoch),
            model,
            optimizer,
            scheduler,
            scaler,
            epoch,
            global_step,
            metrics,
            cfg,
            best_val_f1=best_f1,
            best_epoch=best_epoch,
        )
        if on_epoch is not None:
            on_epoch(dict(metrics), ckpt_dir)
        _prune_checkpoints(ckpt_root, keep={ckpt_dir.name, _epoch_dir_name(best_epoch)})

    best_dir = _best_checkpoint(ckpt_root, best_epoch, resume_from)
    return {**metrics, "best_val_f1": best_f1, "checkpoint": str(best_dir) if best_dir else None}


# One optimizer step on a batch already on the model's device -> (detached loss, the lr it used);
# amp_dtype None runs in float32, grad_clip 0 disables clipping. It lives in tuning.oom because a
# step that runs out of memory is retried there on smaller micro-batches (gradient accumulation).
train_step = accumulated_step


def train_epoch(
    model: torch.nn.Module,
    loader: DataLoader,
    max_steps: int,
    loss_fn: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    *,
    amp_dtype: torch.dtype | None = None,
    memory_format: torch.memory_format = torch.contiguous_format,
    grad_clip: float = 0.0,
    batching: Batching | None = None,
    on_first_step: Callable[[], None] | None = None,
) -> tuple[float, float, int]:
    """Up to max_steps train_steps over loader; returns (mean train loss, last step's lr, steps done).

    On CUDA out-of-memory a step is retried on smaller micro-batches (tuning.oom); batching
    records the split, which later epochs keep. on_first_step is called after the first step
    (warm-up timing).
    """
    device = next(model.parameters()).device
    batching = batching or Batching(loader.batch_size)
    model.train()
    loss_sum, steps, lr = torch.zeros((), device=device), 0, optimizer.param_groups[0]["lr"]
    for images, masks in loader:
        if steps == max_steps:
            break
        images = images.to(device, non_blocking=True, memory_format=memory_format)
        masks = to_device(masks, device)
        loss, lr = train_step(
            model,
            images,
            masks,
            loss_fn,
            optimizer,
            scheduler,
            scaler,
            amp_dtype=amp_dtype,
            grad_clip=grad_clip,
            batching=batching,
        )
        loss_sum += loss
        steps += 1
        if steps == 1 and on_first_step is not None:
            on_first_step()
    return float(loss_sum) / max(1, steps), lr, steps


def to_device(target: torch.Tensor | tuple | list, device: torch.device) -> torch.Tensor | tuple:
    """A batch's target on device: a label tensor, or a tuple of tensors (labels, teacher probabilities)."""
    if isinstance(target, (tuple, list)):
        return tuple(t.to(device, non_blocking=True) for t in target)
    return target.to(device, non_blocking=True)


def epoch_metrics(epoch: int, train_loss: float, scores: dict, lr: float, seconds: float) -> dict:
    """The metrics dict on_epoch receives and checkpoints record (METRIC_KEYS; train() adds the batch split)."""
    return {
        "epoch": epoch,
        "train_loss": train_loss,
        "val_loss": scores["loss"],
        "val_f1": scores["f1"],
        "val_f1_with_bg": scores["f1_with_bg"],
        "val_miou": scores["miou"],
        "val_pixel_acc": scores["pixel_acc"],
        "lr": lr,
        "epoch_seconds": seconds,
        "val_per_class_f1": scores["per_class_f1"],
        **flat_per_class_f1(scores["per_class_f1"]),
    }


def _epoch_line(metrics: dict, epochs: int) -> str:
    return (
        f"epoch {metrics['epoch']}/{epochs}  train_loss {metrics['train_loss']:.4f}  val_loss "
        f"{metrics['val_loss']:.4f}  val_f1 {metrics['val_f1']:.4f}  val_miou "
        f"{metrics['val_miou']:.4f}  lr {metrics['lr']:.2e}  {metrics['epoch_seconds']:.1f}s"
    )


def _resume(
    resume_from: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    scaler,
    epoch_steps: int,
) -> tuple[int, int, float | None, int | None, dict]:
    # -> (next epoch, global step, best val_f1, best epoch, the checkpoint's metrics); the metrics
    # are what train() returns when no epoch is left to run.
    state = load_checkpoint(resume_from, model, optimizer, scheduler, scaler)
    if state["global_step"] != state["epoch"] * epoch_steps:
        print(
            f"warning: {resume_from} was saved after {state['global_step']} steps, but {state['epoch']} "
            f"epochs are {state['epoch'] * epoch_steps} steps with this config",
            flush=True,
        )
    metrics = {k: state["meta"].get(k) for k in METRIC_KEYS}
    return state["epoch"] + 1, state["global_step"], state["best_val_f1"], state["best_epoch"], metrics


METRIC_KEYS = (
    "epoch",
    "train_loss",
    "val_loss",
    "val_f1",
    "val_f1_with_bg",
    "val_miou",
    "val_pixel_acc",
    "lr",
    "epoch_seconds",
    "val_per_class_f1",
    *PER_CLASS_F1_KEYS,
    "micro_batch",
    "accum_steps",
    "oom_retries",
    "first_step_s",
    "first_epoch_s",
    "epoch_s",
)


@torch.inference_mode()
def evaluate(
    model: torch.nn.Module,
    loader: DataLoader,
    device: torch.device | str,
    *,
    loss_fn: torch.nn.Module | None = None,
    amp_dtype: torch.dtype | None = None,
    memory_format: torch.memory_format = torch.contiguous_format,
    pad_to: int | None = None,
) -> dict:
    """Scores (tuning.metrics.scores_from_confusion) over a loader; + 'loss' when loss_fn is given.

    pad_to: run short batches padded to this many images (tuning.speed.pad_batch), scoring only the real ones.
    """
    device = torch.device(device)
    model.eval()
    confusion = ConfusionMatrix(device=device)
    loss_sum, samples = torch.zeros((), device=device), 0
    for images, masks in loader:
        images = images.to(device, non_blocking=True, memory_format=memory_format)
        masks = masks.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(pad_batch(images, pad_to) if pad_to else images)[: images.shape[0]]
        if loss_fn is not None:
            loss_sum += loss_fn(logits, masks) * images.shape[0]
            samples += images.shape[0]
        confusion.update(logits.argmax(dim=1), masks)
    scores = confusion.scores()
    if loss_fn is not None:
        scores["loss"] = float(loss_sum) / max(1, samples)
    return scores


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
