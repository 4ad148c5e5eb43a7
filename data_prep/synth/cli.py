"""python -m data_prep synth: the subcommand's flags and entry point."""

from __future__ import annotations

import argparse
from pathlib import Path

from data_prep.synth.raw_writer import generate
from data_prep.synth.scenes import generate_wild


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
    parser.add_argument(
        "--wild",
        action="store_true",
        help="wild scenes: 0..--max-faces faces at random scale and position on a textured canvas, "
        "written as a PREPARED dataset with boxes.json (face boxes) instead of the raw layout",
    )
    parser.add_argument(
        "--max-faces", type=int, default=3, help="with --wild: most faces per scene (default 3)"
    )
    parser.add_argument(
        "--face-scale",
        type=float,
        nargs=2,
        default=(0.25, 0.7),
        metavar=("MIN", "MAX"),
        help="with --wild: side of each face's crop as a fraction of the canvas (default 0.25 0.7)",
    )


def main(args: argparse.Namespace) -> int:
    """Generate the dataset the flags describe."""
    if args.wild:
        out = generate_wild(
            args.out,
            args.num,
            args.size,
            args.seed,
            args.workers,
            max_faces=args.max_faces,
            face_scale=tuple(args.face_scale),
        )
        print(
            f"wrote {args.num} wild scenes ({args.size}px, seed {args.seed}) to {out} (face boxes: boxes.json)"
        )
        return 0
    out = generate(args.out, args.num, args.size, args.seed, args.workers)
    print(f"wrote {args.num} synthetic faces ({args.size}px, seed {args.seed}) to {out}")
    return 0
