"""Ensemble overhead: the full pipeline's time per image against the compute floor.

The floor is the sum of the members' bare forward passes (inputs ready in memory) times the
number of TTA views. The pipeline is ensemble.submission.run_pipeline.run as run_ensemble.py calls it (decoding,
TTA, averaging, smoothing and argmax on the device, clean-up, mask PNGs, CSV), without a recipe.

    python benchmarks/ensemble_overhead.py --manifest models/demo/manifest.json --images data/demo/prepared
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from configs.schema import EnsembleConfig, PostprocessConfig  # noqa: E402
from data_prep.layout import read_rgb  # noqa: E402
from ensemble.core.batching import Timings, distinct_specs, prepare_input  # noqa: E402
from ensemble.core.inference import Ensemble  # noqa: E402
from ensemble.core.inputs import discover  # noqa: E402
from ensemble.core.members import load_manifest  # noqa: E402
from ensemble.core.tta import build_views  # noqa: E402
from ensemble.submission.run_pipeline import RunOptions, run  # noqa: E402
from tuning.models import resolve_device  # noqa: E402


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
            batches = [x_all[i : i + batch_size].to(device) for i in range(0, len(images), batch_size)]
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


def predict_s(members, items, views, device, batch_size, workers, repeat: int) -> tuple[float, Timings]:
    """Seconds to yield every image's averaged probabilities (left on the device), best run."""
    model = Ensemble(members, views=views, device=device)
    list(model.stream(items[:batch_size], batch_size=batch_size, progress=False))  # warm-up
    best = (float("inf"), Timings())
    for _ in range(repeat):
        model.timings = timings = Timings()
        t0 = time.perf_counter()
        for pred in model.stream(items, batch_size=batch_size, num_workers=workers, progress=False):
            pred.probs.sum().item()  # wait for the device, as any consumer does
        best = min(best, (time.perf_counter() - t0, timings), key=lambda x: x[0])
    return best


def pipeline_s(
    manifest: Path, images: Path, split: str, num: int, ens: EnsembleConfig, device: str, repeat: int
) -> float:
    """Seconds of the whole run (prediction to written CSV), best run; input checks and model
    loading excluded (they happen once per submission, before the first image)."""
    best = float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "images"
        source.mkdir()
        for item in discover(images, split).items[:num]:
            (source / item.path.name).symlink_to(item.path.resolve())
        for i in range(repeat):
            opts = RunOptions(
                manifest=manifest,
                images=source,
                out=Path(tmp) / f"out{i}",
                ensemble=ens,
                use_recipe=False,
                device=device,
                progress=False,
            )
            best = min(best, run(opts)["timings"]["run_s"])
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
    p.add_argument("--json", type=Path, help="also write the numbers here")
    args = p.parse_args(argv)

    device = resolve_device(args.device)
    members = load_manifest(args.manifest, device).members
    items = discover(args.images, args.split).items[: args.num]
    views = build_views(args.tta)
    n = len(items)
    ens = EnsembleConfig(
        tta=args.tta,
        batch_size=args.batch_size,
        num_workers=args.workers,
        viz=0,
        postprocess=PostprocessConfig(smooth="gaussian", sigma=args.sigma),
    )

    bare = bare_forward_s(members, items, device, args.batch_size, args.repeat)
    pred_s, timings = predict_s(members, items, views, device, args.batch_size, args.workers, args.repeat)
    full_s = pipeline_s(args.manifest, args.images, args.split, n, ens, str(device), args.repeat)
    bare_sum = sum(bare.values())
    floor = bare_sum * len(views)
    rows = [
        (f"bare forward {name} ({m.arch}/{m.encoder} @{m.image_size})", s)
        for (name, s), m in zip(bare.items(), members)
    ]
    rows += [
        ("sum of bare member forwards", bare_sum),
        (f"compute floor: sum x {len(views)} TTA views", floor),
        (f"ensemble forwards inside predict ({args.tta})", timings.forward_total_s),
        ("predict (decode, TTA, average, resize; on device)", pred_s),
        ("full pipeline (+ smoothing, argmax, clean-up, PNGs, CSV)", full_s),
    ]
    machine = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    )
    print(
        f"{n} images on {machine}; batch {args.batch_size}, workers {args.workers}, "
        f"{len(members)} members, TTA {args.tta} ({len(views)} views), sigma {args.sigma}"
    )
    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  {'ms/image':>9}  {'x floor':>8}")
    for name, s in rows:
        print(f"{name:<{width}}  {1000 * s / n:9.2f}  {s / floor:8.2f}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": machine,
                    "images": n,
                    "views": len(views),
                    "ms_per_image": {k: 1000 * v / n for k, v in rows},
                    "ratio_full_to_floor": full_s / floor,
                    "ratio_predict_to_floor": pred_s / floor,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
