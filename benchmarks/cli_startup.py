"""Wall time of every command's `--help`: a fresh interpreter per run, the median of --runs.

    python benchmarks/cli_startup.py                          # this checkout
    python benchmarks/cli_startup.py --before /path/to/older/checkout --runs 3

With --before, each command runs alternately in the older checkout and in this one (so both see
the same load) and the table gets a before, an after and a speed-up column. Each checkout runs
with itself as working directory and on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = [
    "-m data_prep",
    "-m data_prep synth",
    "-m data_prep celebamask",
    "-m data_prep facesynthetics",
    "-m data_prep lapa",
    "-m tuning",
    "-m tuning search",
    "-m tuning prefetch-weights",
    "-m tuning export",
    "-m ensemble",
    "-m ensemble run",
    "-m ensemble fit",
    "-m ensemble distill",
    "-m ensemble predict",
    "-m ensemble export",
    "run_ensemble.py",
]
REFERENCES = {"python -c pass": ["-c", "pass"], "python -c 'import torch'": ["-c", "import torch"]}


def wall_time(args: list[str], root: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(root)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=root, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(args)} in {root} exited {done.returncode}: {done.stderr.decode()[-500:]}"
        )
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="an older checkout to compare with")
    parser.add_argument("--runs", type=int, default=3, help="runs per command and checkout (default 3)")
    args = parser.parse_args()
    roots = ([args.before.resolve()] if args.before else []) + [ROOT]
    rows = []
    for label, argv in [(f"python {c} --help", [*c.split(), "--help"]) for c in COMMANDS] + [
        (k, v) for k, v in REFERENCES.items()
    ]:
        times: dict[Path, list[float]] = {r: [] for r in roots}
        for _ in range(args.runs):
            for root in roots:  # alternate, so that both checkouts see the same load
                times[root].append(wall_time(argv, root))
        medians = [statistics.median(times[r]) for r in roots]
        rows.append((label, medians))
        print(f"{label}: " + ", ".join(f"{m:.2f} s" for m in medians), file=sys.stderr, flush=True)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\n{platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, median of "
        f"{args.runs} runs, load average {load:.1f} at the end\n"
    )
    if args.before:
        print("| command | before (s) | after (s) | speed-up |\n|---|---:|---:|---:|")
        for label, (before, after) in rows:
            print(f"| `{label}` | {before:.2f} | {after:.2f} | {before / after:.1f}x |")
    else:
        print("| command | wall time (s) |\n|---|---:|")
        for label, (after,) in rows:
            print(f"| `{label}` | {after:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
