"""Out-of-fold (OOF) predictions: a fold model's probabilities for the images it did not train on.

Stored in half precision at the reduced resolution `ensemble fit` caches at (r = --oof-resolution,
default 64), one .npz per fold model holding `probs` (n, 19, r, r) float16 and `ids` (n,):

    bytes = n x 19 x r^2 x 2   per fold model; over a bag's K folds n sums to N = train + val images,
                              so a bag's OOF is N x 19 x r^2 x 2 bytes (320 faces at 64 px: 40 MB).

The prediction is the ensemble's identity view: the val transform (resize to image_size,
normalise), softmax, then a bilinear resize to r (antialiased when shrinking).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from configs import NUM_CLASSES
from configs.errors import FaceParseError
from configs.schema import RunConfig
from data_prep.atomic import write_bytes
from data_prep.dataset import FaceParsingDataset
from data_prep.layout import PreparedDataset, read_label_map
from data_prep.transforms import build_val_transform
from tuning.metrics import image_confusion, scores_from_confusion

OOF_FILE = "oof.npz"  # beside a fold model's checkpoint (model.safetensors)


class OOFError(FaceParseError):
    """Out-of-fold files that do not fit together (missing images, other resolutions)."""


def oof_bytes(images: int, resolution: int) -> int:
    return images * NUM_CLASSES * resolution * resolution * 2


@torch.inference_mode()
def predict_probs(
    model: torch.nn.Module,
    cfg: RunConfig,
    ids: Sequence[str],
    resolution: int,
    device: torch.device | str = "cpu",
    batch_size: int = 8,
) -> np.ndarray:
    """(n, 19, r, r) float16 softmax probabilities of model for the images ids of cfg's first dataset."""
    dataset = FaceParsingDataset(
        cfg.data.datasets[0].path, "held out", build_val_transform(cfg.data), ids=ids
    )
    model.eval()
    out = np.zeros((len(ids), NUM_CLASSES, resolution, resolution), np.float16)
    start = 0
    for images, _ in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        probs = torch.softmax(model(images.to(device)).float(), dim=1)
        if probs.shape[-1] != resolution or probs.shape[-2] != resolution:
            shrink = resolution < probs.shape[-1]
            probs = F.interpolate(
                probs, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=shrink
            )
        out[start : start + len(images)] = probs.half().cpu().numpy()
        start += len(images)
    return out


def write_oof(path: Path, ids: Sequence[str], probs: np.ndarray) -> None:
    """ids and probs to one .npz, written atomically (no pickles: ids are a unicode array)."""
    buf = io.BytesIO()
    np.savez(buf, probs=probs.astype(np.float16), ids=np.asarray(list(ids), dtype=str))
    write_bytes(path, buf.getvalue())


def read_oof(path: Path) -> tuple[list[str], np.ndarray]:
    """(ids, probs (n, 19, r, r) float16) from a file write_oof wrote."""
    if not Path(path).is_file():
        raise OOFError(f"{path}: out-of-fold predictions not found")
    with np.load(path, allow_pickle=False) as z:
        ids, probs = [str(i) for i in z["ids"]], z["probs"]
    if probs.ndim != 4 or probs.shape[:2] != (len(ids), NUM_CLASSES) or probs.shape[2] != probs.shape[3]:
        raise OOFError(f"{path}: probs {probs.shape} is not (ids, {NUM_CLASSES}, r, r) for {len(ids)} ids")
    return ids, probs


def gather_oof(paths: Sequence[Path], ids: Sequence[str]) -> np.ndarray:
    """One bag's OOF probabilities (N, 19, r, r) in the order of ids, from its fold models' files;
    every id must be held out by exactly one of them."""
    row = {i: k for k, i in enumerate(ids)}
    out: np.ndarray | None = None
    filled = np.zeros(len(ids), bool)
    for path in paths:
        fold_ids, probs = read_oof(path)
        if out is None:
            out = np.zeros((len(ids), *probs.shape[1:]), np.float16)
        if probs.shape[1:] != out.shape[1:]:
            raise OOFError(f"{path}: resolution {probs.shape[-1]} differs from the bag's {out.shape[-1]}")
        for i, p in zip(fold_ids, probs):
            k = row.get(i)
            if k is None:
                continue
            if filled[k]:
                raise OOFError(f"{path}: image {i!r} is held out by two fold models")
            out[k], filled[k] = p, True
    if out is None or not filled.all():
        missing = [i for i, f in zip(ids, filled) if not f][:5]
        raise OOFError(f"{', '.join(map(str, paths))}: no out-of-fold prediction for {missing} ...")
    return out


def held_out_f1(probs: np.ndarray, prepared: Path, ids: Sequence[str]) -> float:
    """Mean face F1 of probabilities (N, 19, r, r) against the label maps of ids, resized to r
    (nearest, as `ensemble fit` caches them): a bag's OOF score."""
    prep, r = PreparedDataset(prepared), probs.shape[-1]
    cm = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    for i, p in zip(ids, probs):
        gt = cv2.resize(read_label_map(prep.mask_path(i)), (r, r), interpolation=cv2.INTER_NEAREST_EXACT)
        cm += image_confusion(p.argmax(0).astype(np.uint8), gt)
    return float(scores_from_confusion(cm)["f1"])
