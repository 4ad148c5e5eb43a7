"""Per-op time of a few training steps (torch.profiler): where a step's time goes, as text + JSON.

    python benchmarks/gpu_check/op_profile.py --arch UnetPlusPlus --encoder efficientnet-b3 --size 512 \
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

# Run as a script (gpu_check starts it in a child process): the checkout and benchmarks/ importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from train_throughput import FORMATS, make_step  # noqa: E402

from data_prep.atomic import write_json, write_text  # noqa: E402
from tuning.speed import sync  # noqa: E402


def profile_steps(args, device: torch.device) -> tuple[str, list[dict], float]:
    """(key_averages table, top ops as dicts, seconds of the profiled steps) for args' variant."""
    step = make_step(
        args.arch,
        args.encoder,
        size=args.size,
        batch_size=args.batch_size,
        device=device,
        amp=args.amp,
        memory_format=args.memory_format,
    )
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    plan = schedule(wait=0, warmup=args.warm_steps, active=args.steps, repeat=1)
    with profile(activities=activities, schedule=plan) as prof:
        for i in range(args.warm_steps + args.steps):
            if i == args.warm_steps:
                sync(device)
                t0 = time.perf_counter()
            step()
            prof.step()
        sync(device)
        seconds = time.perf_counter() - t0
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    averages = prof.key_averages()
    table = averages.table(sort_by=key, row_limit=args.top)
    rows = sorted(averages, key=lambda e: getattr(e, key), reverse=True)
    top = [
        {
            "op": e.key,
            "calls": e.count,
            "self_device_ms": e.self_device_time_total / 1000 / args.steps,
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
