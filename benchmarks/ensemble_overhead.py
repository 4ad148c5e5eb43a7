"""Ensemble overhead: time per image of the full ensemble (TTA, smoothing, clean-up, CSV codes)
against the summed time of the members' bare forward passes on the same images.

    python benchmarks/ensemble_overhead.py --manifest models/demo/manifest.json --images data/demo/prepared
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from configs.schema import PostprocessConfig  # noqa: E402
from data_prep.layout import read_rgb  # noqa: E402
from ensemble.inputs import discover  # noqa: E402
from ensemble.members import load_manifest, resolve_device  # noqa: E402
from ensemble.postprocess import build_steps, postprocess  # noqa: E402
from ensemble.predict import Timings, distinct_specs, predict, prepare_input  # noqa: E402
from ensemble.submission import csv_rows  # noqa: E402
from ensemble.tta import build_views  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bare_forward_s(members, items, device, batch_size: int, repeat: int) -> dict[str, float]:
    """Seconds per member for one plain forward pass over every image (inputs ready in memory)."""
    specs, spec_of = distinct_specs(members)
    images = [read_rgb(item.path) for item in items]
    inputs = [torch.stack([prepare_input(im, spec) for im in images]) for spec in specs]
    times = {}
    with torch.inference_mode():
        for m, member in enumerate(members):
            x_all = inputs[spec_of[m]]
            batches = [x_all[i:i + batch_size].to(device) for i in range(0, len(images), batch_size)]
            if device.type == "cuda":
                batches = [b.contiguous(memory_format=torch.channels_last) for b in batches]
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
                member.model(batches[0])  # warm-up (kernel selection, lazy init)
                best = float("inf")
                for _ in range(repeat):  # best of a few: the machine may be shared
                    _sync(device)
                    t0 = time.perf_counter()
                    for b in batches:
                        member.model(b)
                    _sync(device)
                    best = min(best, time.perf_counter() - t0)
            times[member.name] = best
    return times


def ensemble_s(members, items, views, device, batch_size, workers, steps,
               repeat: int) -> tuple[float, float, Timings]:
    """(seconds to predict probabilities, seconds with post-processing and CSV codes too), best run."""
    weights = [1.0] * len(members)
    list(predict(members, weights, items[:batch_size], views, device, batch_size, 0, progress=False))  # warm-up
    best = (float("inf"), float("inf"), Timings())
    for _ in range(repeat):
        timings = Timings()
        t0 = time.perf_counter()
        post = 0.0
        for pred in predict(members, weights, items, views, device, batch_size, workers,
                            timings=timings, progress=False):
            t1 = time.perf_counter()
            labels = postprocess(pred.probs, steps, pred.path)
            csv_rows(pred.index, labels)
            post += time.perf_counter() - t1
        total = time.perf_counter() - t0
        if total < best[1]:
            best = (total - post, total, timings)
    return best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", type=Path, required=True)
    p.add_argument("--images", type=Path, required=True, help="image folder or prepared dataset")
    p.add_argument("--split", default="test")
    p.add_argument("--num", type=int, default=32, help="images to time")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--tta", default="flip", choices=["none", "flip", "flip+scale"])
    p.add_argument("--sigma", type=float, default=1.0)
    p.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best is kept")
    args = p.parse_args(argv)

    device = resolve_device(args.device)
    members = load_manifest(args.manifest, device).members
    items = discover(args.images, args.split).items[: args.num]
    views = build_views(args.tta)
    steps = build_steps(PostprocessConfig(smooth="gaussian", sigma=args.sigma))
    n = len(items)

    bare = bare_forward_s(members, items, device, args.batch_size, args.repeat)
    predict_s, total_s, timings = ensemble_s(members, items, views, device, args.batch_size,
                                             args.workers, steps, args.repeat)
    bare_sum = sum(bare.values())
    rows = [(f"bare forward {name} ({m.arch}/{m.encoder} @{m.image_size})", s)
            for (name, s), m in zip(bare.items(), members)]
    rows += [("sum of bare member forwards", bare_sum),
             (f"  x {len(views)} TTA views (compute floor)", bare_sum * len(views)),
             (f"ensemble forwards inside predict ({args.tta})", timings.forward_total_s),
             ("ensemble predict (load, TTA, average, resize)", predict_s),
             ("ensemble + smoothing + clean-up + CSV codes", total_s)]
    print(f"{n} images, device {device}, batch {args.batch_size}, workers {args.workers}, "
          f"{len(members)} members, TTA {args.tta} ({len(views)} views), sigma {args.sigma}")
    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  {'ms/image':>9}  {'x bare sum':>10}")
    for name, s in rows:
        print(f"{name:<{width}}  {1000 * s / n:9.2f}  {s / bare_sum:10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
