"""Member weights: uniform, proportional to validation F1, or fitted on a labelled split."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import torch

from data_prep.atomic import write_json
from data_prep.layout import read_label_map
from ensemble.inputs import ImageItem
from ensemble.members import Member
from ensemble.predict import member_probs
from ensemble.tta import View
from tuning.metrics import confusion_matrix, scores_from_confusion


class WeightsError(ValueError):
    """Member weights that cannot be computed or loaded."""


def uniform_weights(members: Sequence[Member]) -> dict[str, float]:
    return {m.name: 1.0 / len(members) for m in members}


def score_weights(members: Sequence[Member]) -> dict[str, float]:
    """Weights proportional to each member's val_f1, normalised to sum to 1."""
    missing = [m.name for m in members if m.val_f1 is None or not m.val_f1 > 0]
    if missing:
        raise WeightsError(f"member(s) {missing} have no positive val_f1 in the manifest; "
                           f"use --weights uniform or optimize")
    total = sum(m.val_f1 for m in members)  # type: ignore[misc]
    return {m.name: float(m.val_f1) / total for m in members}  # type: ignore[arg-type]


# Modes that need no data. "optimize" needs a labelled split (fit_weights).
WEIGHT_MODES: dict[str, Callable[[Sequence[Member]], dict[str, float]]] = {
    "uniform": uniform_weights,
    "score": score_weights,
}


@dataclass
class WeightFit:
    """The result of fitting member weights on a labelled split."""

    weights: dict[str, float]
    f1_uniform: float
    f1_fitted: float
    images: int
    resolution: int
    evaluations: int
    info: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"format": 1, "mode": "optimize", "weights": self.weights,
                "f1_uniform": self.f1_uniform, "f1_fitted": self.f1_fitted,
                "images": self.images, "resolution": self.resolution,
                "evaluations": self.evaluations, **self.info}


def fit_weights(members: Sequence[Member], items: Sequence[ImageItem], gt_paths: Sequence[Path],
                views: Sequence[View], device: torch.device | str = "cpu", batch_size: int = 4,
                num_workers: int = 0, resolution: int = 64, max_images: int = 256,
                num_random: int = 32, seed: int = 0, progress: bool = True) -> WeightFit:
    """Search member weights that maximise mean face F1 on a labelled split.

    Every member runs once over the split (with the TTA views); its probabilities are cached
    at low resolution, so each weight candidate costs one weighted sum and argmax. The search
    starts at uniform weights (kept unless a candidate is strictly better), tries each member
    alone and random Dirichlet draws, then refines by coordinate steps of shrinking size.
    """
    if len(items) != len(gt_paths):
        raise WeightsError(f"{len(items)} images but {len(gt_paths)} masks")
    if not items:
        raise WeightsError("no labelled images to fit member weights on")
    if len(items) > max_images:
        pick = np.random.default_rng(seed).choice(len(items), max_images, replace=False)
        pick.sort()
        items = [items[i] for i in pick]
        gt_paths = [gt_paths[i] for i in pick]
    probs = member_probs(members, items, views, resolution, device, batch_size, num_workers,
                         progress=progress)
    gt = torch.from_numpy(np.stack([
        cv2.resize(read_label_map(p), (resolution, resolution), interpolation=cv2.INTER_NEAREST_EXACT)
        for p in gt_paths]))
    evals = 0

    def score(w: np.ndarray) -> float:
        nonlocal evals
        evals += 1
        avg = torch.einsum("m,mnchw->nchw", torch.as_tensor(w, dtype=torch.float32), probs)
        return scores_from_confusion(confusion_matrix(avg.argmax(1), gt).numpy())["f1"]

    m = len(members)
    best_w = np.full(m, 1.0 / m)
    best = f1_uniform = score(best_w)
    if m > 1:
        rng = np.random.default_rng(seed)
        candidates = list(np.eye(m)) + [rng.dirichlet(np.ones(m)) for _ in range(num_random)]
        for w in candidates:
            s = score(w)
            if s > best + 1e-9:
                best, best_w = s, w
        step = 0.25
        while step >= 1 / 64:
            improved = False
            for k in range(m):
                for sign in (1.0, -1.0):
                    w = best_w.copy()
                    w[k] = max(0.0, w[k] + sign * step)
                    if w.sum() <= 0:
                        continue
                    w = w / w.sum()
                    s = score(w)
                    if s > best + 1e-9:
                        best, best_w, improved = s, w, True
            if not improved:
                step /= 2
    weights = {mem.name: float(x) for mem, x in zip(members, best_w)}
    return WeightFit(weights=weights, f1_uniform=float(f1_uniform), f1_fitted=float(best),
                     images=len(items), resolution=resolution, evaluations=evals)


def save_weights(path: str | Path, fit: WeightFit) -> None:
    write_json(path, fit.to_json())


def load_weights(path: str | Path, members: Sequence[Member]) -> dict[str, float]:
    """Read a member_weights.json (from a previous optimize run) and check it fits the members."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: member weights file not found (expected uniform, score, "
                           f"optimize or a member_weights.json path)")
    try:
        raw = json.loads(path.read_text())
        weights = {str(k): float(v) for k, v in raw["weights"].items()}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        raise WeightsError(f"{path}: expected JSON with a 'weights' object of member name -> number") from None
    names = [m.name for m in members]
    if sorted(weights) != sorted(names):
        raise WeightsError(f"{path}: weights are for members {sorted(weights)}, "
                           f"the manifest has {sorted(names)}")
    if any(v < 0 for v in weights.values()) or sum(weights.values()) <= 0:
        raise WeightsError(f"{path}: weights must be >= 0 with a positive sum")
    total = sum(weights.values())
    return {n: weights[n] / total for n in names}
