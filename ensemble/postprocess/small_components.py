"""Stray-component removal: extra blobs of parts a face has one of (label step)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from configs import CLASS_ID
from configs.schema import PostprocessConfig
from ensemble.postprocess.steps_base import SCHEMA, Context, LabelStep, Step

MIN_COMPONENT_FRACTIONS = (0.05, 0.1, 0.2, 0.4)  # what `ensemble fit` tries

# Parts a face has exactly one of: anything beyond the largest blob (and blobs of similar size,
# e.g. a lip cut in two) is a stray prediction.
SINGLE_INSTANCE = tuple(
    CLASS_ID[n]
    for n in ("nose", "mouth", "u_lip", "l_lip", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear")
)


class RemoveSmall(LabelStep):
    """Keep the largest blob of each single-instance part; relabel blobs under a fraction of it."""

    key, order = "remove_small", 40
    switch = "remove_small"
    fields = {"remove_small": SCHEMA, "min_component_fraction": SCHEMA}
    needs = ("top2",)

    def __init__(self, min_fraction: float = 0.2):
        self.min_fraction = float(min_fraction)

    @classmethod
    def from_config(cls, cfg: PostprocessConfig) -> Step | None:
        v = cls.values(cfg)
        return cls(v.min_component_fraction) if v.remove_small else None

    @classmethod
    def grid(cls) -> list[tuple[str, dict[str, Any]]]:
        return [
            (f"remove_small(min_fraction={f:g})", {"min_component_fraction": f, "remove_small": True})
            for f in MIN_COMPONENT_FRACTIONS
        ]

    def __call__(self, ctx: Context) -> None:
        labels = ctx.labels
        for c in SINGLE_INSTANCE:
            mask = (labels == c).view(np.uint8)
            if not mask.any():
                continue
            n, cc, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
            if n <= 2:
                continue
            areas = stats[1:, cv2.CC_STAT_AREA]
            drop_ids = 1 + np.flatnonzero(areas < self.min_fraction * areas.max())
            if not drop_ids.size:
                continue
            drop = np.isin(cc, drop_ids)
            best, second = ctx.top2[0][drop], ctx.top2[1][drop]
            labels[drop] = np.where(best == c, second, best)  # the best other class there
