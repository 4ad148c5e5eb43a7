"""Hole filling: regions enclosed by one class become that class (label step)."""

from __future__ import annotations

import cv2
import numpy as np

from configs import CLASS_ID, NUM_CLASSES
from ensemble.postprocess.steps_base import SCHEMA, Context, LabelStep

# Parts that contain nothing else: any region they enclose is theirs. Ears are left out (an
# earring sits inside an ear), and so are skin and hair (eyes sit inside skin, ears in hair).
SOLID_PARTS = tuple(
    CLASS_ID[n] for n in ("nose", "l_eye", "r_eye", "l_brow", "r_brow", "mouth", "u_lip", "l_lip")
)
# ...except these pairs, which do sit inside one another (a mouth between lips drawn as one).
MAY_ENCLOSE = {
    CLASS_ID["u_lip"]: (CLASS_ID["mouth"], CLASS_ID["l_lip"]),
    CLASS_ID["l_lip"]: (CLASS_ID["mouth"], CLASS_ID["u_lip"]),
    CLASS_ID["mouth"]: (CLASS_ID["u_lip"], CLASS_ID["l_lip"]),
}


class FillHoles(LabelStep):
    """Fill regions enclosed by one class: background holes (small) and anything in solid parts.

    A region is enclosed by class e when it does not touch the image border and every pixel
    around it is e (4-connected). Enclosed background is a hole in e when it is at most
    max_fraction of e's area (a large enclosed background can be real, e.g. a loop of hair).
    Solid parts (nose, eyes, brows, lips, mouth) contain nothing else, so any region they
    enclose is filled, except lips/mouth inside one another.
    """

    key, order = "fill_holes", 50
    switch = "fill_holes"
    fields = {"fill_holes": SCHEMA}

    def __init__(self, max_fraction: float = 0.1):
        self.max_fraction = float(max_fraction)

    def __call__(self, ctx: Context) -> None:
        labels = ctx.labels
        for e in range(1, NUM_CLASSES):
            mask = labels == e
            rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
            if rows.size < 3 or cols.size < 3:
                continue
            crop = labels[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]  # a view: edits land in labels
            inside = crop == e
            # Pad with "not e" so every region that reaches the crop's edge joins one outer region.
            other = np.pad(~inside, 1, constant_values=True).view(np.uint8)
            n, cc, stats, _ = cv2.connectedComponentsWithStats(other, connectivity=4)
            if n <= 2:
                continue
            inner = cc[1:-1, 1:-1]
            fill = np.ones(n, dtype=bool)
            fill[0] = False  # label 0 is e itself
            fill[cc[0, 0]] = False  # the outer region
            if e in SOLID_PARTS:
                kept = np.isin(crop, MAY_ENCLOSE.get(e, ()))
                fill &= np.bincount(inner.ravel(), weights=kept.ravel(), minlength=n) == 0
            else:
                area = stats[:, cv2.CC_STAT_AREA]
                bg = np.bincount(inner.ravel(), weights=(crop == 0).ravel(), minlength=n)
                fill &= (bg == area) & (area <= self.max_fraction * inside.sum())
            if fill.any():
                crop[fill[inner]] = e
