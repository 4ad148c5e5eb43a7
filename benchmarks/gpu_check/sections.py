"""gpu_check sections measured in child processes: each variant pays its own warm-up (cuDNN
autotuning, torch.compile) and one that stalls is stopped at its timeout and reported as such."""

from __future__ import annotations

import json
import multiprocessing
import os
import runpy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent  # benchmarks/gpu_check
BENCH = PACKAGE.parent  # benchmarks/: train_throughput.py, ensemble_overhead.py
REPO = BENCH.parent


def child_env() -> dict[str, str]:
    """The environment of a child: this checkout (and any carried wheels) importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def run_json(argv: list[str], out_json: Path, timeout_s: float, fork: bool = False) -> dict:
    """Run a benchmark script (argv[0], a path) that writes out_json; its JSON, or status timeout/error.

    fork: run the script's __main__ in a forked copy of this process instead of a new interpreter.
    Same script, same arguments, without importing torch again (40 s on a loaded 2-core box); only
    for CPU runs, since a forked child cannot use CUDA once the parent has initialised it.
    """
    t0 = time.perf_counter()
    if fork:
        code, tail = _run_forked(argv, timeout_s)
    else:
        try:
            proc = subprocess.run(
                [sys.executable, *argv], env=child_env(), capture_output=True, text=True, timeout=timeout_s
            )
            code, tail = proc.returncode, (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        except subprocess.TimeoutExpired:
            code, tail = None, []
    wall = time.perf_counter() - t0
    if code is None:
        return {"status": "timeout", "error": f"no result after {timeout_s:.0f} s (stalled?)", "wall_s": wall}
    if code or not out_json.is_file():
        return {"status": "error", "error": " | ".join(tail)[-500:], "wall_s": wall}
    return {"status": "ok", "wall_s": wall, **json.loads(out_json.read_text())}


def _run_forked(argv: list[str], timeout_s: float) -> tuple[int | None, list[str]]:
    # -> (exit code, None on timeout; the error's last line)
    errors = multiprocessing.get_context("fork").Queue()
    child = multiprocessing.get_context("fork").Process(target=_script_main, args=(argv, errors))
    child.start()
    child.join(timeout_s)
    if child.is_alive():
        child.kill()
        child.join()
        return None, []
    return child.exitcode, [errors.get()] if not errors.empty() else []


def _script_main(argv: list[str], errors) -> None:
    sys.argv = list(argv)
    try:
        runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as done:
        if done.code:
            errors.put(str(done.code))
        raise
    except BaseException as err:
        errors.put(f"{type(err).__name__}: {err}")
        raise


def throughput(plan: dict, cuda: bool, deadline: float) -> list[dict]:
    """The table: arch x amp x memory format x compile, each variant in its own process, in plan order,
    until the section's deadline (later variants: status 'skipped')."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, v in enumerate(plan["variants"]):
            row = {k: v[k] for k in ("arch", "encoder", "amp", "memory_format", "compile")}
            left = deadline - time.monotonic()
            if left < 5:
                rows.append({**row, "status": "skipped", "error": "section time budget used up"})
                continue
            out = Path(tmp) / f"v{i}.json"
            argv = _step_argv({**plan, **v}) + [
                "--steps",
                str(plan["steps"]),
                "--warm-steps",
                str(plan["warm_steps"]),
            ]
            argv += ["--memory-format", v["memory_format"], "--out", str(out)] + (
                ["--compile"] if v["compile"] else []
            )
            result = run_json(argv, out, min(plan["timeout_s"], left), fork=not cuda)
            rows.append({**row, **result})
            print(_variant_line(rows[-1]), flush=True)
    return rows


def profiles(plan: dict, out: Path, cuda: bool, deadline: float) -> list[dict]:
    """torch.profiler tables (text + JSON under out/) for each plan variant ('before'/'after')."""
    rows = []
    for v in plan["variants"]:
        left = deadline - time.monotonic()
        if left < 5:
            rows.append({**v, "status": "skipped", "error": "section time budget used up"})
            continue
        argv = [str(PACKAGE / "op_profile.py"), "--arch", plan["arch"], "--encoder", plan["encoder"]]
        argv += ["--size", str(plan["size"]), "--batch-size", str(plan["batch_size"]), "--amp", v["amp"]]
        argv += ["--memory-format", v["memory_format"], "--steps", str(plan["steps"])]
        argv += ["--warm-steps", str(plan["warm_steps"]), "--name", f"profile_{v['name']}", "--out", str(out)]
        result = run_json(
            argv, out / f"profile_{v['name']}.json", min(plan["timeout_s"], left), fork=not cuda
        )
        rows.append({**v, **result})
        print(f"profile {v['name']}: {result['status']}", flush=True)
    return rows


def loader(prep: Path, plan: dict, size: int) -> list[dict]:
    """Training-loader images/s per worker count (tuning.loaders, default augmentations, prepared size)."""
    sys.path.insert(0, str(BENCH))
    from train_throughput import loader_rate

    rows = []
    for workers in plan["workers"]:
        workers = min(workers, os.cpu_count() or 1)
        rate = loader_rate(prep, size, plan["batch_size"], workers, plan["batches"])
        rows.append({"workers": workers, "images_per_s": rate, "per_worker": rate / max(1, workers)})
        print(f"loader {workers} workers: {rate:.1f} images/s", flush=True)
    return rows


def share(plan: dict, cuda: bool) -> dict:
    """Two trainings on one GPU at once vs one alone: total images/s (resources.gpu 0.5 vs 1)."""
    import torch

    if not cuda:
        return {"status": "skipped", "error": "no CUDA device: two trainings sharing one GPU not measured"}
    torch.cuda.empty_cache()  # the train and ensemble sections ran in this process
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for parties in (1, 2):
            barrier = Path(tmp) / f"barrier{parties}"
            barrier.mkdir()
            argv = _step_argv(plan)
            argv += ["--memory-format", plan["memory_format"], "--duration", str(plan["duration_s"])]
            argv += ["--barrier", str(barrier), "--parties", str(parties)]
            outs = [Path(tmp) / f"p{parties}_{i}.json" for i in range(parties)]
            procs = [
                subprocess.Popen(
                    [sys.executable, *argv, "--out", str(o)], env=child_env(), stdout=subprocess.DEVNULL
                )
                for o in outs
            ]
            try:
                for p in procs:
                    p.wait(timeout=plan["timeout_s"])
            finally:
                for p in procs:
                    if p.poll() is None:
                        p.kill()
            rates = [json.loads(o.read_text())["images_per_s"] for o in outs]
            results[f"{parties}_process"] = {"images_per_s": rates, "total_images_per_s": sum(rates)}
    one, two = results["1_process"]["total_images_per_s"], results["2_process"]["total_images_per_s"]
    return {
        "status": "ok",
        **results,
        "speedup_two_vs_one": two / one,
        **{k: plan[k] for k in ("arch", "encoder")},
    }


def _step_argv(v: dict) -> list[str]:
    # benchmarks/train_throughput.py, one variant (arch, encoder, size, batch, amp; more flags follow)
    argv = [str(BENCH / "train_throughput.py"), "--arch", v["arch"], "--encoder", v["encoder"]]
    return argv + ["--size", str(v["size"]), "--batch-size", str(v["batch_size"]), "--amp", v["amp"]]


def _variant_line(row: dict) -> str:
    name = f"{row['arch']}/{row['encoder']} {row['amp']} {row['memory_format']} compile={row['compile']}"
    if row.get("status") != "ok":
        return f"{name}: {row.get('status')} ({row.get('error', '')})"
    return f"{name}: first step {row['first_step_s']:.1f} s, {row['images_per_s']:.1f} images/s"
