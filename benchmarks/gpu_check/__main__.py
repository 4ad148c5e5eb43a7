"""One-shot GPU check: the production recipe's speed on this machine's card, end to end, no network.

Generates and prepares faces (data_prep synth + celebamask), then measures, each section in turn:
  throughput  training steps: arch x amp x memory format x compile, warm-up + steady images/s
  profile     torch.profiler top ops of UNet++/EfficientNet steps, old default vs new (text + JSON)
  loader      training-loader images/s per worker count (default augmentations, prepared size)
  train       2-3 members with tuning.train.train() (no Ray), exported to a manifest + trials.csv
  ensemble    `python -m ensemble run` on the test split
  overhead    benchmarks/ensemble_overhead.py: the pipeline against the compute floor
  share       two trainings on one GPU at once vs one (skipped without CUDA)
and writes OUT/results.json + OUT/summary.md (after every section, so a cut-off run keeps what it
measured). Run it through benchmarks/gpu_check.sh (which installs carried wheels first), or from the
repository root as `python -m benchmarks.gpu_check`:

    bash benchmarks/gpu_check.sh [--out DIR] [--smoke]

--smoke: 64 px, a few steps, small encoders: the same code paths in a few minutes on a CPU.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

from data_prep.__main__ import main as data_prep_main
from data_prep.atomic import write_json, write_text
from tuning.speed import COMPILE_BACKEND_ENV, compile_backend

from . import results_report, sections, train_members
from .step_plans import plan_for, scale_budgets


def prepare_faces(out: Path, plan: dict) -> dict:
    """Generated faces in the raw layout, prepared at plan['size'] with train/val/test splits (data_prep)."""
    raw, prep = out / "data" / "raw", out / "data" / "prepared"
    workers = str(max(1, min(plan["workers"], os.cpu_count() or 1)))
    t0 = time.perf_counter()
    # synth_size 1024: CelebAMask-HQ's geometry (1024 px photos, 512 px part masks) for the import
    synth = ["synth", "--out", str(raw), "--num", str(plan["faces"]), "--size", str(plan["synth_size"])]
    if data_prep_main([*synth, "--seed", "0", "--workers", workers]):
        raise RuntimeError("data_prep synth failed")
    generated = time.perf_counter() - t0
    prepare = ["celebamask", "--root", str(raw), "--out", str(prep), "--size", str(plan["size"])]
    prepare += ["--workers", workers, "--val-fraction", str(plan["val_fraction"])]
    if data_prep_main([*prepare, "--test-fraction", str(plan["test_fraction"]), "--seed", "0"]):
        raise RuntimeError("data_prep celebamask failed")
    counts = {s: len((prep / "splits" / f"{s}.txt").read_text().split()) for s in ("train", "val", "test")}
    return {
        "prepared": str(prep),
        "splits": counts,
        "synth_s": generated,
        "prepare_s": time.perf_counter() - t0 - generated,
    }


def machine() -> dict:
    """What ran the check: card, CPU count, versions."""
    cuda = torch.cuda.is_available()
    return {
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "cuda": torch.version.cuda if cuda else None,
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "host": platform.node(),
        "compile_backend": compile_backend(),
    }


def run_sections(out: Path, plan: dict, results: dict, only: set[str] | None) -> None:
    """Every section in order, each timed and caught: one failing section does not stop the others."""
    cuda = torch.cuda.is_available()
    prep: Path | None = None
    steps = [
        ("data", lambda: prepare_faces(out, plan["data"])),
        ("throughput", lambda: sections.throughput(plan["throughput"], cuda, _deadline(plan["throughput"]))),
        ("profile", lambda: sections.profiles(plan["profile"], out, cuda, _deadline(plan["profile"]))),
        ("loader", lambda: sections.loader(prep, plan["loader"], plan["data"]["size"])),
        (
            "train",
            lambda: train_members.train_members(prep, out, {**plan["train"], **_train_size(results, plan)}),
        ),
        ("ensemble", lambda: train_members.run_ensemble(prep, _manifest(results), out, plan["ensemble"])),
        (
            "overhead",
            lambda: train_members.ensemble_overhead_numbers(prep, _manifest(results), out, plan["ensemble"]),
        ),
        ("share", lambda: sections.share(plan["share"], cuda)),
    ]
    for name, fn in steps:
        if only and name not in only and name != "data":
            continue
        print(f"\n== {name}", flush=True)
        t0 = time.perf_counter()
        try:
            value = fn()
            results[name] = value if isinstance(value, dict) else {"rows": value}
            results[name].setdefault("status", "ok")
        except Exception as err:  # noqa: BLE001 (a report of every section beats a traceback)
            results[name] = {"status": "error", "error": f"{type(err).__name__}: {err}"[:500]}
            print(f"{name} failed: {results[name]['error']}", flush=True)
        results[name]["section_s"] = time.perf_counter() - t0
        if name == "data" and results["data"]["status"] == "ok":
            prep = Path(results["data"]["prepared"])
        _write(out, results)


def _deadline(section_plan: dict) -> float:
    return time.monotonic() + section_plan["budget_s"]


def _train_size(results: dict, plan: dict) -> dict:
    return {"size": plan["data"]["size"], "train_images": results["data"]["splits"]["train"]}


def _manifest(results: dict) -> Path:
    if results.get("train", {}).get("status") != "ok":
        raise RuntimeError("no manifest: the train section did not finish")
    return Path(results["train"]["manifest"])


def _write(out: Path, results: dict) -> None:
    results["ray_imported"] = any(m == "ray" or m.startswith("ray.") for m in sys.modules)
    write_json(out / "results.json", results)
    write_text(out / "summary.md", results_report.markdown(results))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, help="output folder (default runs/gpu_check/<UTC time>)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes: the same code paths in minutes on a CPU")
    p.add_argument("--only", help="comma-separated sections to run after data (default: all)")
    p.add_argument(
        "--budget-scale",
        type=float,
        default=1.0,
        help="multiply every section's time budget and per-variant timeout (4: the whole step table, ~15 min)",
    )
    args = p.parse_args(argv)
    out = args.out or Path("runs/gpu_check") / time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    out.mkdir(parents=True, exist_ok=True)
    if not torch.cuda.is_available():
        # inductor compiles C++ for minutes on a CPU (tuning.speed); dynamo still captures the
        # same graphs with the eager backend, which only skips code generation.
        os.environ.setdefault(COMPILE_BACKEND_ENV, "eager")
    torch.backends.cudnn.benchmark = True
    plan = scale_budgets(plan_for(args.smoke, torch.cuda.is_available()), args.budget_scale)
    t0 = time.perf_counter()
    results = {"mode": "smoke" if args.smoke else "full", "machine": machine(), "plan": plan}
    print(f"gpu_check ({results['mode']}) on {results['machine']['device']} -> {out}", flush=True)
    run_sections(out, plan, results, set(args.only.split(",")) if args.only else None)
    results["total_s"] = time.perf_counter() - t0
    _write(out, results)
    failed = [k for k, v in results.items() if isinstance(v, dict) and v.get("status") == "error"]
    print(
        f"\nwrote {out / 'results.json'} and {out / 'summary.md'} in {results['total_s']:.0f} s", flush=True
    )
    if failed:
        print(f"sections that failed: {', '.join(failed)}", flush=True)
    return 1 if failed or results["ray_imported"] else 0


if __name__ == "__main__":
    sys.exit(main())
