"""The left/right check of importers whose left/right convention is not certain: where do the eyes lie?

Each sample votes (lr_vote, an importer's sample_stat); dataset.json's "left_right_check" counts the
votes, and warn_if_mirrored says so when most samples have the subject's right eye on the image's
right, i.e. the labels look mirrored against CelebAMask-HQ's convention.
"""

from __future__ import annotations

import sys
from collections import Counter

import numpy as np

from configs import CLASS_ID

# Fewer eye pixels than this on either side: the left/right check does not vote for the sample.
LR_CHECK_MIN_PIXELS = 4
# Share of the deciding samples with r_eye on the image's right above which the labels look mirrored.
LR_WARN_SHARE = 0.75


def lr_vote(label: np.ndarray) -> int:
    """+1: r_eye's centre left of l_eye's in the image (CelebAMask-HQ's way); -1: right; 0: an eye missing."""
    xs = []
    for name in ("r_eye", "l_eye"):
        cols = np.nonzero(label == CLASS_ID[name])[1]
        if cols.size < LR_CHECK_MIN_PIXELS:
            return 0
        xs.append(cols.mean())
    return 1 if xs[0] < xs[1] else -1 if xs[0] > xs[1] else 0


def left_right_check(votes: Counter) -> dict[str, int]:
    """dataset.json's "left_right_check" from the tallied votes."""
    return {"r_eye_on_image_left": votes[1], "r_eye_on_image_right": votes[-1], "undecided": votes[0]}


def warn_if_mirrored(check: dict[str, int], swap_lr: bool) -> None:
    """Print a warning when a clear majority of deciding samples look mirrored."""
    mirrored = check["r_eye_on_image_right"]
    decided = mirrored + check["r_eye_on_image_left"]
    # Real faces vote nearly all one way; only a clear majority is worth a warning.
    if mirrored > LR_WARN_SHARE * decided:
        print(
            f"warning: in {mirrored} of {decided} samples r_eye lies on the image's "
            f"right, i.e. the labels look mirrored against CelebAMask-HQ's convention (r_* = the "
            f"subject's right); prepare again into a new --out "
            f"{'without' if swap_lr else 'with'} --swap-lr",
            file=sys.stderr,
        )
