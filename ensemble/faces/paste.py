"""Paste back: each face's crop probabilities warped onto the photo, the context view where the tight
crop has no pixels, and one face per pixel where faces overlap.

A face is parsed in its tight crop (the training framing) and, optionally, in a context view: the same
centre at `context` times the side (hair, hat, neck, clothes and jewellery reach past the tight crop).
On the photo the tight parse is used inside its footprint, fading into the context parse over the last
`SEAM` of the crop's side, and the context parse beyond it.

Where several faces cover a pixel, the pixel takes the whole class distribution of one face: the one
that owns it most, by that face's own parse (its probability of "not background") times a fall-off with
the distance to its centre in units of its size (the nearer or larger face). A per-class maximum, or the
last crop pasted, would hand a face's eye to a neighbour's confident hair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from configs import NUM_CLASSES
from ensemble.faces.align import apply, invert, warp_back

SEAM = 0.1  # share of the tight crop's side over which it fades into the context view


@dataclass
class FaceParse:
    """One face's parses: tight crop (probs, M) and, when taken, the context view's."""

    probs: np.ndarray  # (C, S, S)
    m: np.ndarray  # 2x3 photo -> crop
    context_probs: np.ndarray | None = None
    context_m: np.ndarray | None = None


def zoom_out(m: np.ndarray, size: int, factor: float) -> np.ndarray:
    """M of a view with the same centre as crop M and `factor` times its side, at the same size."""
    c = size / 2 * (1 - 1 / factor)
    return np.vstack([m[0] / factor + [0, 0, c], m[1] / factor + [0, 0, c]])


def edge_ramp(size: int, seam: float = SEAM) -> np.ndarray:
    """(S, S) weight: 0 at the crop's border rising to 1 at `seam` of its side inside."""
    i = np.arange(size, dtype=np.float32) + 0.5
    d = np.minimum(i, size - i) / max(seam * size, 1e-6)
    ramp = np.clip(d, 0, 1)
    return np.minimum(ramp[:, None], ramp[None, :])


def face_probs(parse: FaceParse, h: int, w: int) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """(rect, (C, rh, rw) probabilities) of one face on the photo rectangle its views cover; rows of
    pixels no view covers sum to 0."""
    size = parse.probs.shape[-1]
    with_ramp = np.concatenate([parse.probs, edge_ramp(size)[None]], 0)
    tight = warp_back(with_ramp, parse.m, h, w)
    wide = warp_back(parse.context_probs, parse.context_m, h, w) if parse.context_probs is not None else None
    if tight is None and wide is None:
        return None
    rects = [r for r in (tight, wide) if r is not None]
    x0, y0 = min(r[0][0] for r in rects), min(r[0][1] for r in rects)
    x1, y1 = max(r[0][2] for r in rects), max(r[0][3] for r in rects)
    out = np.zeros((NUM_CLASSES, y1 - y0, x1 - x0), np.float32)
    if wide is not None:
        (a0, b0, a1, b1), q, inside = wide
        out[:, b0 - y0 : b1 - y0, a0 - x0 : a1 - x0] = np.where(inside, q, 0)
    if tight is not None:
        (a0, b0, a1, b1), q, inside = tight
        ramp = np.where(inside, q[-1], 0) if wide is not None else inside.astype(np.float32)
        region = out[:, b0 - y0 : b1 - y0, a0 - x0 : a1 - x0]
        region *= 1 - ramp
        region += ramp * np.where(inside, q[:-1], 0)
    return (x0, y0, x1, y1), out


def ownership(probs: np.ndarray, rect: tuple[int, int, int, int], m: np.ndarray, size: int) -> np.ndarray:
    """(rh, rw) how much a face owns each pixel: its parse's non-background probability times
    1 / (1 + d^2), d = distance to the face's crop centre in units of the crop's side."""
    x0, y0, x1, y1 = rect
    back = invert(m)
    side = float(np.sqrt(abs(np.linalg.det(back[:, :2])))) * size
    cx, cy = apply(back, np.array([[size / 2, size / 2]]))[0]
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.5
    d2 = ((xs - cx) ** 2 + (ys - cy) ** 2) / max(side, 1e-6) ** 2
    return (1 - probs[0]) / (1 + d2)


def composite(parses: Sequence[FaceParse], h: int, w: int) -> np.ndarray:
    """(C, h, w) photo probabilities: each pixel from the face that owns it; background where none reaches."""
    full = np.zeros((NUM_CLASSES, h, w), np.float32)
    best = np.full((h, w), -1.0, np.float32)
    for parse in parses:
        got = face_probs(parse, h, w)
        if got is None:
            continue
        rect, probs = got
        x0, y0, x1, y1 = rect
        covered = probs.sum(0) > 0.5
        own = np.where(covered, ownership(probs, rect, parse.m, parse.probs.shape[-1]), -1)
        take = own > best[y0:y1, x0:x1]
        full[:, y0:y1, x0:x1][:, take] = probs[:, take]
        best[y0:y1, x0:x1][take] = own[take]
    full[0][best < 0] = 1.0
    return full
