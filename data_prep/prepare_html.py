"""The prepared dataset's report.html (PREP/report.html): a contact sheet of samples with their
label maps, the class-frequency chart and a preview of the occlusion and zoom augmentations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import albumentations as A
import cv2
import numpy as np

from configs import CLASSES, colorize
from configs.schema import AugmentConfig
from data_prep.figures import horizontal_bars
from data_prep.html_page import HtmlPage, array_uri
from data_prep.layout import SPLITS, PreparedDataset, read_label_map, read_rgb
from data_prep.occlusion import CopyPasteOcclusion
from data_prep.transforms import zoom_transform

THUMB = 128  # px: the contact sheet's tiles
SHEET = 12  # samples on the contact sheet
PREVIEW = 3  # samples in the augmentation preview


def _thumb(image: np.ndarray, interpolation: int) -> np.ndarray:
    h, w = image.shape[:2]
    return cv2.resize(image, (max(1, round(w * THUMB / h)), THUMB), interpolation=interpolation)


def pair(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Image and its colour-coded label map side by side."""
    gap = np.full((THUMB, 3, 3), 255, np.uint8)
    return np.hstack([_thumb(image, cv2.INTER_AREA), gap, _thumb(colorize(labels), cv2.INTER_NEAREST)])


def sample_ids(prep: PreparedDataset, count: int, seed: int = 0) -> list[str]:
    """count ids spread over the splits (train first), chosen with a seed: the same page each run."""
    ids = [i for split in SPLITS for i in prep.split_ids(split)]
    rng = np.random.default_rng(seed)
    return [ids[k] for k in sorted(rng.choice(len(ids), size=min(count, len(ids)), replace=False))]


def _fixed_zoom(factor: float) -> AugmentConfig:
    # One factor, so the preview shows each direction; the schema wants a range around 1.
    return AugmentConfig.model_construct(zoom=1.0, zoom_range=(factor, factor))


def augmentation_previews(image: np.ndarray, labels: np.ndarray, seed: int) -> list[tuple[str, np.ndarray]]:
    """(name, image | label map) for the original, copy-paste occlusion, zoom out and zoom in."""
    views = [("original", pair(image, labels))]
    steps = [
        ("occlusion", CopyPasteOcclusion(max_occluders=2, p=1.0)),
        ("zoom out x0.6", zoom_transform(_fixed_zoom(0.6))),
        ("zoom in x1.3", zoom_transform(_fixed_zoom(1.3))),
    ]
    for i, (name, step) in enumerate(steps):
        compose = A.Compose([step], seed=seed + i)
        out = compose(image=image, mask=labels)
        views.append((name, pair(out["image"], out["mask"])))
    return views


def write_prepare_html(prep: PreparedDataset, meta: dict[str, Any]) -> Path:
    """PREP/report.html from the prepared files and dataset.json's content."""
    page = HtmlPage(f"Prepared dataset: {meta['source']}")
    counts = meta.get("counts", {})
    page.bullets(
        [
            f"from: {meta.get('root', '?')}",
            f"size: {meta['size']} px; samples: " + ", ".join(f"{s} {n}" for s, n in counts.items()),
            f"skipped: {len(meta.get('skipped', []))} (reasons in dataset.json)",
        ]
    )
    ids = sample_ids(prep, SHEET)
    page.heading(f"Contact sheet ({len(ids)} samples: image | label map)")
    page.gallery(
        (
            array_uri(pair(read_rgb(prep.image_path(i)), read_label_map(prep.mask_path(i))), ".jpg"),
            i,
            {"image": i},
        )
        for i in ids
    )
    frequency = meta.get("class_frequency", {})
    if frequency:
        page.heading("Class frequency (share of all pixels)")
        ordered = {c: frequency.get(c, 0.0) for c in CLASSES}
        absent = [c for c, f in ordered.items() if not f]
        page.figure(
            horizontal_bars(
                {c: f for c, f in ordered.items() if f}, "pixel share per class", "share (log)", log=True
            ),
            "absent classes: " + (", ".join(absent) if absent else "none"),
        )
    if ids:
        page.heading("Augmentation preview (occlusion and zoom, each applied alone)")
        for k, sample in enumerate(ids[:PREVIEW]):
            image, labels = read_rgb(prep.image_path(sample)), read_label_map(prep.mask_path(sample))
            views = augmentation_previews(image, labels, seed=k)
            page.gallery((array_uri(v, ".jpg"), f"{sample}: {name}", {"image": sample}) for name, v in views)
    return page.write(prep.root / "report.html")
