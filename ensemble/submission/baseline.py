"""The run report's first row: the best single search trial, on the same images as the ensemble.

What a user would submit without the ensemble (the search's best candidate by val_f1, no TTA, no
post-processing): the row every later stage is measured against (`run_ensemble.py --baseline`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from configs import NUM_CLASSES
from configs.errors import FaceParseError
from configs.schema import EnsembleConfig
from ensemble.core.inference import Ensemble
from ensemble.core.inputs import ImageItem
from ensemble.core.members import load_manifest
from ensemble.submission.relabel import RunLabels
from tuning.manifest import read_manifest
from tuning.metrics import image_confusion

BASELINE_PREFIX = "baseline:"


def best_candidate(manifest: Path) -> str:
    """The member with the highest val_f1 (a search's manifest lists them best first)."""
    members = read_manifest(manifest).members
    return max(members, key=lambda m: -1.0 if m.val_f1 is None else m.val_f1).name


def baseline_confusion(
    manifest: Path,
    items: Sequence[ImageItem],
    gt_paths: Sequence[Path],
    labels: RunLabels,
    ens: EnsembleConfig,
    device,
    progress: bool = True,
) -> tuple[str, np.ndarray]:
    """(stage name, confusion matrix) of the manifest's best candidate alone over items."""
    if not labels.identity:
        raise FaceParseError("--baseline scores in the 19 classes only (leave --label-set at celebamask19)")
    name = best_candidate(manifest)
    member = next(m for m in load_manifest(manifest, device, bags=False).members if m.name == name)
    cm = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    model = Ensemble([member], device=device)
    for pred in model.stream(
        items,
        batch_size=ens.batch_size,
        num_workers=ens.num_workers,
        max_pixels=ens.max_pixels,
        progress=progress,
    ):
        pred_labels = pred.probs.argmax(0).byte().cpu().numpy()
        gt = labels.read_gt(gt_paths[pred.index])
        if gt.shape != pred_labels.shape:
            gt = cv2.resize(gt, pred_labels.shape[::-1], interpolation=cv2.INTER_NEAREST)
        cm += image_confusion(pred_labels, gt)
    return f"{BASELINE_PREFIX}best search trial ({name})", cm
