"""Training throughput: model steps per precision/memory format/compile, and the loader per worker count.

Model: images/s of full training steps (tuning.train.train_step: forward, CE+Dice, backward,
grad clipping, AdamW, LR schedule) on random batches already on the device, for amp
none/bf16/fp16 x channels_last off/on (CUDA; CPU: fp32 only), plus the warm-up: seconds from
building the model to the end of its first optimizer step (cuDNN autotuning, torch.compile).
One variant at a time with --amp/--memory-format/--compile (benchmarks/gpu_check runs each in
its own process, so each pays its own warm-up and a stalled one can be timed out).
Loader: images/s of the training DataLoader (tuning.loaders.build_loaders: JPEG decode + the
default augmentations at --size) over a prepared dataset (--data), for each --workers count.
Training is input-bound when the loader rate is below the model rate. Prints markdown tables;
--out writes the numbers as JSON.

    python benchmarks/train_throughput.py [--arch Unet] [--encoder resnet34] [--size 512]
        [--batch-size 8] [--steps 20] [--data PREP] [--workers 0,2,4,8] [--out FILE.json]
    python benchmarks/train_throughput.py --arch UnetPlusPlus --encoder efficientnet-b3 \
        --amp bf16 --memory-format contiguous --compile --out one.json
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from configs import NUM_CLASSES  # noqa: E402
from configs.schema import parse_config  # noqa: E402
from data_prep.atomic import write_json  # noqa: E402
from tuning.loaders import build_loaders  # noqa: E402
from tuning.losses import build_loss  # noqa: E402
from tuning.models import build_model  # noqa: E402
from tuning.schedule import build_scheduler  # noqa: E402
from tuning.speed import compile_backend, compile_model, sync  # noqa: E402
from tuning.train import AMP_DTYPES, train_step  # noqa: E402

FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


def make_step(
    arch: str,
    encoder: str,
    *,
    size: int,
    batch_size: int,
    device: torch.device,
    amp: str = "none",
    memory_format: str = "contiguous",
    compile: bool = False,
) -> Callable[[], None]:
    """A closure that runs one full training step (tuning.train.train_step) on a fixed random batch.

    amp is ignored on a CPU (train() runs CPUs in float32 too).
    """
    cfg = parse_config({"train": {"amp": amp}})
    fmt = FORMATS[memory_format]
    model = build_model(arch, encoder).to(device).to(memory_format=fmt).train()
    if compile:
        compile_model(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    scheduler = build_scheduler(optimizer, 10**6, cfg.train)
    loss_fn = build_loss(cfg.train).to(device)
    dtype = AMP_DTYPES.get(amp) if device.type == "cuda" else None
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    images = torch.randn(batch_size, 3, size, size, device=device).to(memory_format=fmt)
    masks = torch.randint(0, NUM_CLASSES, (batch_size, size, size), device=device)

    def step():
        train_step(
            model, images, masks, loss_fn, optimizer, scheduler, scaler, amp_dtype=dtype, grad_clip=1.0
        )

    return step


def step_rate(
    *,
    steps: int = 20,
    warm_steps: int = 3,
    duration_s: float | None = None,
    barrier: Path | None = None,
    parties: int = 1,
    **variant,
) -> dict:
    """Warm-up and steady images/s of training steps for one variant (make_step's keywords).

    first_step_s: model build to the end of the first step; warmup_s: to the end of warm_steps.
    duration_s: time steps for that long instead of a step count; barrier (a folder): wait after
    warm-up until `parties` processes sharing it are warm, so concurrent processes time the same window.
    """
    device, amp = variant["device"], variant.get("amp", "none")
    start = time.perf_counter()
    step = make_step(**variant)
    step()
    sync(device)
    first_step_s = time.perf_counter() - start
    for _ in range(warm_steps - 1):  # the allocator and autotuner settle over a few steps
        step()
    sync(device)
    warmup_s = time.perf_counter() - start
    if barrier is not None:
        _wait_for_peers(barrier, parties)
    t0, done = time.perf_counter(), 0
    while (done < steps) if duration_s is None else (time.perf_counter() - t0 < duration_s):
        step()
        done += 1
        if duration_s is not None and done % 5 == 0:
            sync(device)
    sync(device)
    seconds = time.perf_counter() - t0
    return {
        **{k: v for k, v in variant.items() if k != "device"},
        "amp": amp if device.type == "cuda" or amp == "none" else f"{amp} (ignored on CPU)",
        "memory_format": variant.get("memory_format", "contiguous"),
        "compile": variant.get("compile", False),
        "compile_backend": compile_backend() if variant.get("compile") else None,
        "first_step_s": first_step_s,
        "warmup_s": warmup_s,
        "steps": done,
        "steady_s": seconds,
        "images_per_s": done * variant["batch_size"] / seconds,
    }


def _wait_for_peers(barrier: Path, parties: int, timeout_s: float = 300.0) -> None:
    # One file per warm process; go when all parties have written theirs.
    (barrier / f"ready_{os.getpid()}").touch()
    deadline = time.monotonic() + timeout_s
    while len(list(barrier.glob("ready_*"))) < parties and time.monotonic() < deadline:
        time.sleep(0.05)


def loader_rate(data: Path, size: int, batch_size: int, workers: int, batches: int = 30) -> float:
    """Images/s the training DataLoader delivers (decode + augment + collate), after its first batch."""
    cfg = parse_config(
        {
            "data": {"datasets": [{"path": str(data)}], "image_size": size, "num_workers": workers},
            "train": {"batch_size": batch_size},
        }
    )
    loader, _ = build_loaders(cfg, torch.Generator().manual_seed(0))
    batches = min(len(loader), max(2, batches))
    it = iter(loader)
    next(it)  # worker start-up is paid once per run (persistent workers), not per batch
    start = time.perf_counter()
    for _ in itertools.islice(it, batches - 1):
        pass
    return (batches - 1) * batch_size / (time.perf_counter() - start)


def device_name(device: torch.device) -> str:
    """The card's name, or the CPU's."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="Unet", help="smp architecture")
    p.add_argument("--encoder", default="resnet34", help="smp encoder")
    p.add_argument("--size", type=int, default=512, help="image side in pixels")
    p.add_argument("--batch-size", type=int, default=8, help="images per step")
    p.add_argument("--steps", type=int, default=20, help="timed steps per variant")
    p.add_argument("--warm-steps", type=int, default=3, help="untimed steps first")
    p.add_argument("--amp", choices=["none", "bf16", "fp16"], help="one variant: this precision")
    p.add_argument("--memory-format", choices=list(FORMATS), default="contiguous", help="with --amp")
    p.add_argument("--compile", action="store_true", help="with --amp: torch.compile the model")
    p.add_argument("--duration", type=float, help="with --amp: time steps for this many seconds")
    p.add_argument(
        "--barrier", type=Path, help="with --amp: folder where --parties processes meet after warm-up"
    )
    p.add_argument("--parties", type=int, default=1, help="processes meeting at --barrier")
    p.add_argument("--data", type=Path, help="prepared dataset for the loader benchmark")
    p.add_argument("--workers", default="0,2,4,8", help="loader worker counts, comma-separated")
    p.add_argument("--loader-batches", type=int, default=30, help="batches per loader measurement")
    p.add_argument("--out", type=Path, help="write the numbers as JSON here")
    args = p.parse_args(argv)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = True
    name = device_name(device)
    shape = dict(
        arch=args.arch,
        encoder=args.encoder,
        size=args.size,
        batch_size=args.batch_size,
        device=device,
        steps=args.steps,
    )
    if args.amp:
        row = step_rate(
            **shape,
            amp=args.amp,
            memory_format=args.memory_format,
            compile=args.compile,
            warm_steps=args.warm_steps,
            duration_s=args.duration,
            barrier=args.barrier,
            parties=args.parties,
        )
        print(f"{name}: {row['images_per_s']:.1f} images/s, first step {row['first_step_s']:.1f} s")
        if args.out:
            write_json(args.out, {"device": name, **row})
        return 0
    print(f"# {args.arch}/{args.encoder}, {args.size}px, batch {args.batch_size}, on {name}\n")
    variants = (
        [(a, cl) for a in ("none", "bf16", "fp16") for cl in ("contiguous", "channels_last")]
        if device.type == "cuda"
        else [("none", "contiguous")]
    )
    results = {"device": name, "model": [], "loader": []}
    print("| amp | memory format | first step s | images/s |\n|---|---|---|---|")
    for amp, fmt in variants:
        row = step_rate(**shape, amp=amp, memory_format=fmt)
        results["model"].append(row)
        print(f"| {amp} | {fmt} | {row['first_step_s']:.1f} | {row['images_per_s']:.1f} |", flush=True)
    if args.data:
        print("\n| loader workers | images/s |\n|---|---|")
        for workers in (int(w) for w in args.workers.split(",")):
            rate = loader_rate(args.data, args.size, args.batch_size, workers, args.loader_batches)
            results["loader"].append({"workers": workers, "images_per_s": rate})
            print(f"| {workers} | {rate:.1f} |", flush=True)
    if args.out:
        write_json(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
