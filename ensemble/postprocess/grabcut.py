"""GrabCut refinement of the face-vs-background boundary (label step)."""

from __future__ import annotations

import cv2
import numpy as np

from ensemble.postprocess.steps_base import SCHEMA, Context, LabelStep


class GrabCut(LabelStep):
    """OpenCV GrabCut on the face-vs-background boundary, seeded from the probabilities."""

    key, order = "grabcut", 30
    switch = "grabcut"
    fields = {"grabcut": SCHEMA}
    needs = ("foreground", "face_best")

    def __init__(self, iterations: int = 3, sure: float = 0.95):
        self.iterations, self.sure = iterations, sure

    def __call__(self, ctx: Context) -> None:
        fg = ctx.foreground
        mask = np.where(fg >= 0.5, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
        mask[fg > self.sure] = cv2.GC_FGD
        mask[fg < 1.0 - self.sure] = cv2.GC_BGD
        is_fg = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
        if is_fg.all() or not is_fg.any():
            return  # GrabCut needs samples of both sides
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        bgr = cv2.cvtColor(ctx.image(), cv2.COLOR_RGB2BGR)
        try:
            cv2.grabCut(bgr, mask, None, bgd, fgd, self.iterations, cv2.GC_INIT_WITH_MASK)
        except cv2.error:
            return  # too few samples for its colour models: keep the labels as they are
        is_fg = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
        labels = ctx.labels
        labels[~is_fg] = 0
        grown = is_fg & (labels == 0)
        if grown.any():
            labels[grown] = ctx.face_best[grown]  # the most likely face class there
