"""The flags of the photo path (ensemble.faces), shared by `predict` and `run` (run_ensemble.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from configs.command_line import positive_int
from ensemble.core.choices import detector_arg


def add_photo_arguments(p: argparse.ArgumentParser, default: str) -> None:
    """--detector (its default described by `default`), --detector-threshold, --context, --framing,
    --no-second-pass, --max-faces, in one group."""
    g = p.add_argument_group("photos (faces found, aligned, parsed and pasted back)")
    g.add_argument(
        "--detector",
        type=detector_arg,
        help="mtcnn (CNN with 5 landmarks; weights from `make weights`), dlib (pip install '.[detect]'), "
        "parser (the ensemble finds the faces itself), none (the whole photo as one padded square); auto: "
        "mtcnn, dlib, parser in that order, the next when one finds no face; A+B (e.g. mtcnn+parser): both, "
        "B adding the faces A missed. Whatever the detector, a "
        "photo where it finds no face is parsed whole (" + default + ")",
    )
    g.add_argument(
        "--detector-threshold",
        type=float,
        help="the detector's score threshold (MTCNN's last stage 0..1, dlib's SVM margin; default: the "
        "recipe's wild.detector_threshold, else the detector's own)",
    )
    g.add_argument(
        "--context",
        type=float,
        help="side of the context view that labels hair, neck and clothes past the face crop, in crop "
        "sides (<= 1: none; default: the recipe's wild.context, else 2)",
    )
    g.add_argument(
        "--framing",
        type=Path,
        help="prepared dataset whose face framing the crops copy (default: the members' training "
        "dataset when it is here, else a built-in default)",
    )
    g.add_argument(
        "--no-second-pass", action="store_true", help="crop on the detected box only (no re-alignment)"
    )
    g.add_argument(
        "--max-faces",
        type=positive_int,
        default=8,
        help="parse at most this many faces per photo, nearest the centre first (1: the seed's rule)",
    )
