"""Training data loaders: worker count, worker seeding, and the per-epoch reseed that makes resume exact."""

from __future__ import annotations

import os
import random

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

from configs.errors import ConfigError
from configs.schema import RunConfig
from data_prep.dataset import build_datasets, seed_transforms


def build_loaders(
    cfg: RunConfig,
    generator: torch.Generator,
    *,
    cpus: int | None = None,
    pin_memory: bool = False,
    train_set: Dataset | None = None,
    val_set: Dataset | None = None,
) -> tuple[DataLoader, DataLoader]:
    """(train loader, val loader) over cfg.data; shuffling and dataset mixing draw from generator.

    cpus (the CPUs this run may use) sizes the worker pool and torch's own thread count.
    train_set replaces the config's train splits (shuffled plainly, no mixing sampler); val_set
    the val splits (a refit fold model is scored on the fold it does not train on).
    """
    config_train_set, config_val_set, sampler = build_datasets(cfg, generator=generator)
    val_set = config_val_set if val_set is None else val_set
    if train_set is None:
        train_set = config_train_set
    else:
        sampler = None
    if len(train_set) < cfg.train.batch_size:
        raise ConfigError(
            f"train.batch_size {cfg.train.batch_size} is larger than the train set ({len(train_set)} samples)"
        )
    workers = loader_workers(cfg.data.num_workers, cpus)
    if workers:
        # The loader processes are the parallelism. Set this in the parent, before the fork:
        # cv2.setNumThreads inside a forked worker can hang on the pool state it inherited.
        cv2.setNumThreads(1)
    if cpus is not None:
        torch.set_num_threads(max(1, cpus - workers))
    loader_args = dict(
        batch_size=cfg.train.batch_size,
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
        worker_init_fn=seed_worker,
    )
    train_loader = DataLoader(
        train_set,
        sampler=sampler,
        shuffle=sampler is None,
        drop_last=True,
        generator=generator,
        **loader_args,
    )
    val_loader = DataLoader(val_set, shuffle=False, **loader_args)
    return train_loader, val_loader


def reseed_epoch(train_loader: DataLoader, generator: torch.Generator, seed: int, epoch: int) -> None:
    """Reseed batch order, the global RNGs (dropout) and, with 0 workers, augmentations from (seed, epoch).

    So a resumed run draws the same batches and dropout masks as an uninterrupted one; loader
    workers are seeded once, when they start.
    """
    epoch_seed = seed * 100_003 + epoch
    generator.manual_seed(epoch_seed)
    seed_transforms(train_loader.dataset, epoch_seed)
    # Dropout (FPN's head, many encoders) draws from torch's global generator: without this a
    # resumed run starts epoch N+1 from the state seed_everything left, not the one N epochs left.
    seed_everything(epoch_seed)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def loader_workers(num_workers: int | None, cpus: int | None) -> int:
    """data.num_workers if set, else one less than the CPUs this run may use (at most 8)."""
    if num_workers is not None:
        return num_workers
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(8, max(0, int(cpus) - 1))


def seed_worker(worker_id: int) -> None:
    """DataLoader worker_init_fn: seed python, numpy and the augmentations from torch's worker seed."""
    # torch gives each worker base_seed + worker_id (base_seed drawn from the loader's generator);
    # hand it to numpy, random and albumentations (which keeps its own generator per transform).
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
    seed_transforms(get_worker_info().dataset, seed)
