"""Smoothing of the averaged probabilities: a Gaussian blur of every class's map (probability step)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from configs.schema import PostprocessConfig
from ensemble.postprocess.steps_base import SCHEMA, ProbabilityStep, Step

if TYPE_CHECKING:
    import torch

SIGMAS = (0.5, 1.0, 1.5, 2.0, 3.0)  # what `ensemble fit` tries (output pixels)


class GaussianSmooth(ProbabilityStep):
    """Gaussian blur of every class's probability map (sigma in output pixels).

    A separable depthwise convolution in torch, on whatever device holds the probabilities:
    on a GPU the (C, H, W) maps never leave it. Borders reflect (without repeating the edge).
    On when PostprocessConfig.smooth is "gaussian" and sigma > 0.
    """

    key, order, name = "smooth", 10, "gaussian"
    switch = "smooth"
    fields = {"smooth": SCHEMA, "sigma": SCHEMA}

    def __init__(self, sigma: float = 1.0):
        self.sigma = float(sigma)

    @property
    def label(self) -> str:
        return f"gaussian(sigma={self.sigma:g})"

    @classmethod
    def from_config(cls, cfg: PostprocessConfig) -> Step | None:
        v = cls.values(cfg)
        return cls(v.sigma) if v.smooth == "gaussian" and v.sigma > 0 else None

    @classmethod
    def grid(cls) -> list[tuple[str, dict[str, Any]]]:
        return [(f"gaussian(sigma={s:g})", {"sigma": s, "smooth": "gaussian"}) for s in SIGMAS]

    @classmethod
    def on(cls) -> dict[str, Any]:
        return {"smooth": "gaussian"}  # at the config's sigma

    @classmethod
    def off(cls) -> dict[str, Any]:
        return {"smooth": "none"}

    @classmethod
    def plain(cls) -> dict[str, Any]:
        return {"smooth": "none", "sigma": 0.0}  # as recipes have always recorded no smoothing

    def apply(self, probs: torch.Tensor, image_path: Path | None = None) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        if self.sigma <= 0:
            return probs
        c, h, w = probs.shape
        radius = max(1, math.ceil(4 * self.sigma))
        x = torch.arange(-radius, radius + 1, dtype=probs.dtype, device=probs.device)
        kernel = torch.exp(-0.5 * (x / self.sigma) ** 2)
        kernel = kernel / kernel.sum()
        out = probs.unsqueeze(0)
        # Reflect needs the pad to be smaller than the side; tiny maps fall back to replicate.
        mode = "reflect" if radius < min(h, w) else "replicate"
        out = F.pad(out, (radius, radius, 0, 0), mode=mode)
        out = F.conv2d(out, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
        out = F.pad(out, (0, 0, radius, radius), mode=mode)
        out = F.conv2d(out, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
        return out[0]
