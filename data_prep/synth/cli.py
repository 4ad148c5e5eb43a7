"""python -m data_prep synth: the subcommand's flags and entry point."""

from __future__ import annotations

import argparse
from pathlib import Path

from data_prep.synth.dataset import generate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `python -m data_prep synth`."""
    parser.add_argument("--out", required=True, type=Path, help="output folder (raw CelebAMask-HQ layout)")
    parser.add_argument("--num", type=int, default=200, help="number of faces (default 200)")
    parser.add_argument(
        "--size", type=int, default=256, help="image side in pixels, even, >= 32 (default 256)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--workers", type=int, default=1, help="processes (default 1); output does not depend on it"
    )


def main(args: argparse.Namespace) -> int:
    """Generate the dataset the flags describe."""
    out = generate(args.out, args.num, args.size, args.seed, args.workers)
    print(f"wrote {args.num} synthetic faces ({args.size}px, seed {args.seed}) to {out}")
    return 0
