"""Checkpoint directories: model.safetensors + train_state.pt (tensors/numbers only) + meta.json.

DIR/model.safetensors   model state_dict (safetensors: no pickle, loads anywhere)
DIR/train_state.pt      optimizer, scheduler, scaler, epoch, global_step, best_val_f1
                        (torch.save of tensors and primitives: loads with weights_only=True)
DIR/meta.json           arch, encoder, image_size, mean, std, classes, metrics, full config
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save

from configs import CLASSES, NUM_CLASSES
from configs.errors import FaceParseError
from configs.schema import RunConfig
from data_prep.atomic import write_bytes, write_json

MODEL_FILE = "model.safetensors"
STATE_FILE = "train_state.pt"
META_FILE = "meta.json"


class CheckpointError(FaceParseError):
    """A checkpoint directory that is missing files or does not fit the model."""


def model_state_bytes(model: torch.nn.Module) -> bytes:
    """The model's state_dict as safetensors bytes (contiguous CPU tensors, shared storage split)."""
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    return save(state)


def save_checkpoint(
    directory: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    epoch: int,
    global_step: int,
    metrics: dict,
    cfg: RunConfig,
    best_val_f1: float | None = None,
    best_epoch: int | None = None,
) -> Path:
    """Write a checkpoint directory (each file atomically); returns the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_bytes(directory / MODEL_FILE, model_state_bytes(model))
    state = {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else {},
        "scaler": scaler.state_dict() if scaler is not None else {},
        "epoch": int(epoch),
        "global_step": int(global_step),
        "best_val_f1": None if best_val_f1 is None else float(best_val_f1),
        "best_epoch": None if best_epoch is None else int(best_epoch),
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_bytes(directory / STATE_FILE, buffer.getvalue())
    write_json(
        directory / META_FILE,
        {
            "arch": cfg.model.arch,
            "encoder": cfg.model.encoder,
            "encoder_weights": cfg.model.encoder_weights,
            "image_size": cfg.data.image_size,
            "mean": list(cfg.data.mean),
            "std": list(cfg.data.std),
            "num_classes": NUM_CLASSES,
            "classes": list(CLASSES),
            "epoch": int(epoch),
            "global_step": int(global_step),
            **{k: _json_number(v) for k, v in metrics.items() if k != "epoch"},
            "config": cfg.model_dump(mode="json"),
        },
    )
    return directory


def _json_number(value: Any) -> Any:
    # NaN is not JSON: a score undefined for this split is written as null.
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _json_number(v) for k, v in value.items()}
    return value


def load_model_weights(model: torch.nn.Module, path: str | Path) -> torch.nn.Module:
    """Load a model.safetensors into model (strict: every key must match)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: model weights not found")
    state = load_file(str(path), device="cpu")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise CheckpointError(f"{path}: weights do not fit the model ({first})") from None
    return model


def read_meta(directory: str | Path) -> dict:
    """meta.json of a checkpoint directory."""
    path = Path(directory) / META_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint metadata not found")
    return json.loads(path.read_text())


def load_checkpoint(
    directory: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    scaler: Any = None,
) -> dict:
    """Restore model (and optimizer/scheduler/scaler if given); returns the train state + meta."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: checkpoint directory not found")
    load_model_weights(model, directory / MODEL_FILE)
    state_path = directory / STATE_FILE
    if not state_path.is_file():
        raise CheckpointError(f"{state_path}: training state not found")
    state = torch.load(state_path, map_location="cpu", weights_only=True)
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state["scheduler"]:
        scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state["scaler"]:
        scaler.load_state_dict(state["scaler"])
    state["meta"] = read_meta(directory)
    return state
