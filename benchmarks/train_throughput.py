"""Training throughput: model steps per precision/memory format, and the data loader per worker count.

Model: images/s of full training steps (tuning.train.train_step: forward, CE+Dice, backward,
grad clipping, AdamW, LR schedule) on random batches already on the device, for amp
none/bf16/fp16 x channels_last off/on (CUDA; CPU: fp32 only).
Loader: images/s of the train DataLoader (JPEG decode + augmentations at --size) over a
prepared dataset (--data), for each --workers count. Training is input-bound when the loader
rate is below the model rate. Prints markdown tables; --out writes the numbers as JSON.

    python benchmarks/train_throughput.py [--arch Unet] [--encoder resnet34] [--size 512]
        [--batch-size 8] [--steps 20] [--data PREP] [--workers 0,2,4,8] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import itertools
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from configs import NUM_CLASSES  # noqa: E402
from configs.schema import parse_config  # noqa: E402
from data_prep.atomic import write_json  # noqa: E402
from data_prep.dataset import FaceParsingDataset  # noqa: E402
from data_prep.transforms import build_train_transform  # noqa: E402
from tuning.loaders import seed_worker  # noqa: E402
from tuning.losses import build_loss  # noqa: E402
from tuning.models import build_model  # noqa: E402
from tuning.schedule import build_scheduler  # noqa: E402
from tuning.train import AMP_DTYPES, train_step  # noqa: E402


def model_rate(args, device: torch.device, amp: str, channels_last: bool) -> float:
    """Images/s of full training steps at one precision and memory format."""
    cfg = parse_config({"train": {"amp": amp}})
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = build_model(args.arch, args.encoder).to(device).to(memory_format=fmt).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    scheduler = build_scheduler(optimizer, args.steps + 3, cfg.train)
    loss_fn = build_loss(cfg.train).to(device)
    dtype = AMP_DTYPES.get(amp)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    images = torch.randn(args.batch_size, 3, args.size, args.size, device=device).to(memory_format=fmt)
    masks = torch.randint(0, NUM_CLASSES, (args.batch_size, args.size, args.size), device=device)

    def step():
        train_step(
            model,
            images,
            masks,
            loss_fn,
            optimizer,
            scheduler,
            scaler,
            amp_dtype=dtype,
            grad_clip=cfg.train.grad_clip,
        )

    for _ in range(3):  # warm-up: cudnn autotuning, allocator
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    _sync(device)
    return args.steps * args.batch_size / (time.perf_counter() - start)


def loader_rate(args, workers: int) -> float:
    """Images/s the train DataLoader delivers (decode + augment + collate), after its first batch."""
    cfg = parse_config({"data": {"image_size": args.size}})
    dataset = FaceParsingDataset(args.data, "train", build_train_transform(cfg.data))
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=args.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        worker_init_fn=seed_worker,
    )
    batches = min(len(loader), max(2, args.loader_batches))
    it = iter(loader)
    next(it)  # worker start-up is paid once per run (persistent workers), not per batch
    start = time.perf_counter()
    for _ in itertools.islice(it, batches - 1):
        pass
    return (batches - 1) * args.batch_size / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="Unet")
    p.add_argument("--encoder", default="resnet34")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--data", type=Path, help="prepared dataset for the loader benchmark")
    p.add_argument("--workers", default="0,2,4,8")
    p.add_argument("--loader-batches", type=int, default=30)
    p.add_argument("--out", type=Path)
    args = p.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu"
    print(f"# {args.arch}/{args.encoder}, {args.size}px, batch {args.batch_size}, on {name}\n")
    variants = (
        [(a, cl) for a in ("none", "bf16", "fp16") for cl in (False, True)]
        if device.type == "cuda"
        else [("none", False)]
    )
    results = {"device": name, "model": [], "loader": []}
    print("| amp | channels_last | images/s |\n|---|---|---|")
    for amp, cl in variants:
        rate = model_rate(args, device, amp, cl)
        results["model"].append({"amp": amp, "channels_last": cl, "images_per_s": rate})
        print(f"| {amp} | {cl} | {rate:.1f} |", flush=True)
    if args.data:
        print("\n| loader workers | images/s |\n|---|---|")
        for workers in (int(w) for w in args.workers.split(",")):
            rate = loader_rate(args, workers)
            results["loader"].append({"workers": workers, "images_per_s": rate})
            print(f"| {workers} | {rate:.1f} |", flush=True)
    if args.out:
        write_json(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
