"""Fully connected CRF on the probabilities (probability step; optional extra: pip install '.[crf]')."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from configs.optional import installed, require
from ensemble.postprocess.steps_base import SCHEMA, Context, PostprocessError, ProbabilityStep

if TYPE_CHECKING:
    import torch


class DenseCRF(ProbabilityStep):
    """Fully connected CRF (Kraehenbuehl & Koltun) on the probabilities; optional extra (CPU only)."""

    key, order = "crf", 20
    switch = "crf"
    fields = {"crf": SCHEMA}

    def __init__(self, iterations: int = 5):
        purpose, otherwise = "dense CRF", "or turn crf off"
        dcrf = require("pydensecrf.densecrf", "crf", purpose, PostprocessError, "pydensecrf2", otherwise)
        utils = require("pydensecrf.utils", "crf", purpose, PostprocessError, "pydensecrf2", otherwise)
        self.dcrf, self.unary_from_softmax, self.iterations = dcrf, utils.unary_from_softmax, iterations

    @classmethod
    def available(cls) -> bool:
        return installed("pydensecrf")  # `ensemble fit` tries it only when installed

    def apply(self, probs: torch.Tensor, image_path: Path | None = None) -> torch.Tensor:
        import torch

        c, h, w = probs.shape
        image = Context(labels=np.zeros((h, w), np.uint8), image_path=image_path).image()
        p = probs.float().cpu().numpy()
        crf = self.dcrf.DenseCRF2D(w, h, c)
        crf.setUnaryEnergy(np.ascontiguousarray(self.unary_from_softmax(p)))
        crf.addPairwiseGaussian(sxy=3, compat=3)
        crf.addPairwiseBilateral(sxy=50, srgb=13, rgbim=np.ascontiguousarray(image), compat=5)
        out = np.asarray(crf.inference(self.iterations), dtype=np.float32).reshape(c, h, w)
        return torch.from_numpy(out).to(probs.device)
