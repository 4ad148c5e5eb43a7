"""Per-op time of a few training steps (torch.profiler): where a step's time goes, as text + JSON.

    python benchmarks/gpu_check_profile.py --arch UnetPlusPlus --encoder efficientnet-b3 --size 512 \
        --batch-size 16 --amp bf16 --memory-format contiguous --out DIR [--name after]

Writes DIR/profile_NAME.txt (torch's key_averages table) and DIR/profile_NAME.json (top ops).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, schedule

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from configs import NUM_CLASSES  # noqa: E402
from configs.schema import parse_config  # noqa: E402
from data_prep.atomic import write_json, write_text  # noqa: E402
from tuning.losses import build_loss  # noqa: E402
from tuning.models import build_model  # noqa: E402
from tuning.schedule import build_scheduler  # noqa: E402
from tuning.speed import sync  # noqa: E402
from tuning.train import AMP_DTYPES, train_step  # noqa: E402

FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


def profile_steps(args, device: torch.device) -> tuple[str, list[dict], float]:
    """(key_averages table, top ops as dicts, seconds of the profiled steps) for args' variant."""
    cfg = parse_config({"train": {"amp": args.amp}})
    fmt = FORMATS[args.memory_format]
    model = build_model(args.arch, args.encoder).to(device).to(memory_format=fmt).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr)
    scheduler = build_scheduler(optimizer, 10**6, cfg.train)
    loss_fn = build_loss(cfg.train).to(device)
    dtype = AMP_DTYPES.get(args.amp) if device.type == "cuda" else None
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    images = torch.randn(args.batch_size, 3, args.size, args.size, device=device).to(memory_format=fmt)
    masks = torch.randint(0, NUM_CLASSES, (args.batch_size, args.size, args.size), device=device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    plan = schedule(wait=0, warmup=args.warm_steps, active=args.steps, repeat=1)
    with profile(activities=activities, schedule=plan) as prof:
        for i in range(args.warm_steps + args.steps):
            if i == args.warm_steps:
                sync(device)
                t0 = time.perf_counter()
            train_step(model, images, masks, loss_fn, optimizer, scheduler, scaler, amp_dtype=dtype)
            prof.step()
        sync(device)
        seconds = time.perf_counter() - t0
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    averages = prof.key_averages()
    table = averages.table(sort_by=key, row_limit=args.top)
    rows = sorted(averages, key=lambda e: getattr(e, key.replace("cuda", "device"), 0) or 0, reverse=True)
    top = [
        {
            "op": e.key,
            "calls": e.count,
            "self_device_ms": getattr(e, "self_device_time_total", 0) / 1000 / args.steps,
            "self_cpu_ms": e.self_cpu_time_total / 1000 / args.steps,
        }
        for e in rows[: args.top]
    ]
    return table, top, seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="UnetPlusPlus", help="smp architecture")
    p.add_argument("--encoder", default="efficientnet-b3", help="smp encoder")
    p.add_argument("--size", type=int, default=512, help="image side in pixels")
    p.add_argument("--batch-size", type=int, default=16, help="images per step")
    p.add_argument(
        "--amp", choices=["none", "bf16", "fp16"], default="bf16", help="autocast precision (CUDA)"
    )
    p.add_argument("--memory-format", choices=list(FORMATS), default="contiguous", help="model/input layout")
    p.add_argument("--warm-steps", type=int, default=2, help="steps before profiling (autotuning)")
    p.add_argument("--steps", type=int, default=3, help="profiled steps")
    p.add_argument("--top", type=int, default=25, help="ops listed")
    p.add_argument("--name", default="profile", help="file name stem under --out")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    args = p.parse_args(argv)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = True
    table, top, seconds = profile_steps(args, device)
    per_step = {
        "step_ms": 1000 * seconds / args.steps,
        "images_per_s": args.steps * args.batch_size / seconds,
    }
    variant = {k: getattr(args, k) for k in ("arch", "encoder", "size", "batch_size", "amp", "memory_format")}
    write_text(args.out / f"{args.name}.txt", table)
    write_json(args.out / f"{args.name}.json", {**variant, **per_step, "device": device.type, "top_ops": top})
    print(f"{args.name}: {per_step['step_ms']:.1f} ms/step; top ops in {args.out / (args.name + '.txt')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
