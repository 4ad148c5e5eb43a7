"""Throughput of `python -m data_prep celebamask` against a straightforward one-process PIL script.

Generates synthetic faces in the raw CelebAMask-HQ geometry (images --image-size, masks half of
it: 1024/512 as in the real data), then times, at --size 512 output:
  - the straightforward way: one process, PIL open + resize, each part mask pasted into the
    label map in a Python loop over parts, saved with PIL;
  - data_prep.celebamask.prepare with 1 and 2 worker processes, and a re-run over its output.
Prints a markdown table (images/s and the ratio to the PIL baseline).

    python benchmarks/prepare_throughput.py [--num 300] [--image-size 1024] [--size 512] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from configs import CLASS_ID, DEFAULT_PAINT_ORDER  # noqa: E402
from data_prep import celebamask  # noqa: E402
from data_prep.layout import RAW_ANNO_DIR, RAW_IMAGE_DIR, read_label_map  # noqa: E402


def pil_prepare(raw: Path, out: Path, size: int) -> int:
    """The straightforward script: PIL everywhere, one process, a Python loop over parts."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    image_dir = raw / RAW_IMAGE_DIR
    anno = raw / RAW_ANNO_DIR
    count = 0
    for image_path in sorted(image_dir.glob("*.jpg"), key=lambda p: int(p.stem)):
        i = int(image_path.stem)
        # BOX is PIL's area average, the same filter as cv2.INTER_AREA (and PIL's fastest
        # antialiased one, so the baseline is not slowed by a costlier filter).
        image = Image.open(image_path).convert("RGB").resize((size, size), Image.Resampling.BOX)
        label = None
        for part in DEFAULT_PAINT_ORDER:
            path = anno / str(i // 2000) / f"{i:05d}_{part}.png"
            if not path.exists():
                continue
            mask = Image.open(path).convert("L").point(lambda v: 255 if v > 127 else 0)
            if label is None:
                label = Image.new("L", mask.size, 0)
            label.paste(CLASS_ID[part], (0, 0), mask)
        if label is None:
            continue
        label = label.resize((size, size), Image.Resampling.NEAREST)
        image.save(out / "images" / f"{i}.jpg", quality=95)
        label.save(out / "masks" / f"{i}.png")
        count += 1
    return count


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the worker processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(fn, repeat: int = 1, clear: Path | None = None) -> tuple[float, float, object]:
    """(best wall time, its CPU time, result) of `repeat` calls; the best is the least disturbed.

    clear: an output folder removed (untimed) before each call, so every call starts fresh.
    """
    best, best_cpu, result = float("inf"), 0.0, None
    for _ in range(repeat):
        if clear is not None:
            shutil.rmtree(clear, ignore_errors=True)
        start, start_cpu = time.perf_counter(), cpu_seconds()
        result = fn()
        wall, cpu = time.perf_counter() - start, cpu_seconds() - start_cpu
        if wall < best:
            best, best_cpu = wall, cpu
    return best, best_cpu, result


def quiet_prepare(raw: Path, out: Path, size: int, workers: int) -> dict:
    with contextlib.redirect_stdout(io.StringIO()):  # its one-line summary would split the table
        return celebamask.prepare(raw, out, size=size, workers=workers, progress=False)


def warm_cache(raw: Path) -> None:
    """Read every raw file once so no method pays for the first cold read."""
    for path in raw.rglob("*"):
        if path.is_file():
            path.read_bytes()


def label_agreement(a: Path, b: Path) -> float:
    """Fraction of label pixels on which two prepared mask folders agree."""
    same = total = 0
    for path in sorted(a.glob("*.png")):
        la, lb = read_label_map(path), read_label_map(b / path.name)
        same += int((la == lb).sum())
        total += la.size
    return same / max(total, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--num", type=int, default=300, help="synthetic faces (default 300)")
    parser.add_argument(
        "--image-size", type=int, default=1024, help="raw image side; masks are half (default 1024)"
    )
    parser.add_argument("--size", type=int, default=512, help="prepared side (default 512)")
    parser.add_argument("--workers", default="1,2", help="worker counts to time (default 1,2)")
    parser.add_argument(
        "--repeat", type=int, default=2, help="timed runs per method; the best counts (default 2)"
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="work folder, kept, its raw faces reused (default: a temp folder, removed)",
    )
    args = parser.parse_args(argv)
    from data_prep.synth import generate  # written alongside; imported late so --help works without it

    work = args.dir or Path(tempfile.mkdtemp(prefix="prepare_bench_"))
    try:
        raw = work / "raw"
        if not (raw / RAW_IMAGE_DIR).is_dir():
            seconds, _, _ = timed(
                lambda: generate(raw, args.num, size=args.image_size, seed=0, workers=2, progress=True)
            )
            print(
                f"generated {args.num} faces ({args.image_size} px images) in {seconds:.1f} s",
                file=sys.stderr,
            )
        warm_cache(raw)
        num = len(list((raw / RAW_IMAGE_DIR).glob("*.jpg")))

        load_before = os.getloadavg()[0]
        rows = []
        seconds, cpu, count = timed(
            lambda: pil_prepare(raw, work / "pil", args.size), args.repeat, clear=work / "pil"
        )
        rows.append(("PIL, Python loop over parts (baseline)", 1, count, seconds, cpu))
        for workers in [int(w) for w in args.workers.split(",")]:
            out = work / f"ours_w{workers}"
            seconds, cpu, meta = timed(
                lambda: quiet_prepare(raw, out, args.size, workers), args.repeat, clear=out
            )
            rows.append(
                (
                    f"data_prep celebamask --workers {workers}",
                    workers,
                    sum(meta["counts"].values()),
                    seconds,
                    cpu,
                )
            )
        out = work / f"ours_w{workers}"
        agreement = label_agreement(work / "pil" / "masks", out / "masks")
        seconds, cpu, meta = timed(lambda: quiet_prepare(raw, out, args.size, 1), args.repeat)
        rows.append(
            ("re-run over finished output --workers 1", 1, sum(meta["counts"].values()), seconds, cpu)
        )

        base_rate = rows[0][2] / rows[0][3]
        print(
            f"\nPreparing {num} synthetic faces ({args.image_size} px JPEG images, "
            f"{args.image_size // 2} px part masks) -> --size {args.size}; "
            f"{os.cpu_count()} CPU cores, Python {platform.python_version()}, best of {args.repeat} runs; "
            f"1-min load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after\n"
        )
        print("| method | processes | images | seconds | images/s | vs PIL baseline | CPU ms/image |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name, workers, count, seconds, cpu in rows:
            rate = count / seconds
            print(
                f"| {name} | {workers} | {count} | {seconds:.2f} | {rate:.1f} | {rate / base_rate:.2f}x "
                f"| {1000 * cpu / count:.1f} |"
            )
        print(f"\nLabel maps of the baseline and data_prep agree on {agreement:.4%} of pixels.")
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
