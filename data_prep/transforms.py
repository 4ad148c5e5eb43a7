"""Albumentations pipelines for training and validation, with the L/R-swapping horizontal flip."""

from __future__ import annotations

from typing import Any

import albumentations as A
import cv2
import numpy as np
from albumentations.pytorch import ToTensorV2

from configs import FLIP_LUT, FLIP_PERMUTATION, NUM_CLASSES
from configs.schema import AugmentConfig, DataConfig
from data_prep.occlusion import CopyPasteOcclusion


def swap_left_right_labels(mask: np.ndarray) -> np.ndarray:
    """Relabel l_eye<->r_eye, l_brow<->r_brow, l_ear<->r_ear (any other value is kept)."""
    if mask.dtype == np.uint8:
        return FLIP_LUT[mask]
    in_table = (mask >= 0) & (mask < NUM_CLASSES)
    swapped = FLIP_PERMUTATION[np.clip(mask, 0, NUM_CLASSES - 1)].astype(mask.dtype)
    return np.where(in_table, swapped, mask)


class HorizontalFlipSwapLR(A.HorizontalFlip):
    """Horizontal flip that also swaps the flip-partner labels on masks.

    A plain A.HorizontalFlip mirrors pixels only: the subject's left eye ends up where a right
    eye would be but keeps the label l_eye, teaching the model that left and right parts are
    interchangeable. Swapping the partner labels after mirroring keeps the labels true to the
    (mirrored) face. Images, boxes and keypoints flip exactly as in A.HorizontalFlip.
    """

    def apply_to_mask(self, mask: np.ndarray, **params: Any) -> np.ndarray:
        return swap_left_right_labels(super().apply_to_mask(mask, **params))

    def apply_to_masks(self, masks: np.ndarray, **params: Any) -> np.ndarray:
        return np.stack([self.apply_to_mask(m, **params) for m in masks])

    def apply_to_mask3d(self, mask3d: np.ndarray, **params: Any) -> np.ndarray:
        return swap_left_right_labels(super().apply_to_mask3d(mask3d, **params))

    def apply_to_masks3d(self, masks3d: np.ndarray, **params: Any) -> np.ndarray:
        return swap_left_right_labels(super().apply_to_masks3d(masks3d, **params))


def _normalize(cfg: DataConfig) -> list[A.BasicTransform]:
    return [A.Normalize(mean=cfg.mean, std=cfg.std, max_pixel_value=255.0), ToTensorV2()]


def _resize(cfg: DataConfig) -> A.BasicTransform:
    # Resize first so the affine and colour work runs at the training size, not the stored one.
    return A.Resize(
        cfg.image_size, cfg.image_size, interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST
    )


def zoom_transform(aug: AugmentConfig) -> A.Affine:
    """Scale by aug.zoom_range about the centre, shifted so a zoomed-out face may sit off-centre.

    Zooming out pads the border: image black, label background (nothing of the face is there).
    """
    low = aug.zoom_range[0]
    shift = max(0.05, (1.0 - low) / 2)
    return A.Affine(
        scale=aug.zoom_range,
        translate_percent=(-shift, shift),
        keep_ratio=True,
        interpolation=cv2.INTER_LINEAR,
        mask_interpolation=cv2.INTER_NEAREST,
        border_mode=cv2.BORDER_CONSTANT,
        fill=0,
        fill_mask=0,
        p=aug.zoom,
    )


def _wild_steps(aug: AugmentConfig) -> list[A.BasicTransform]:
    """Zoom and copy-paste occlusion, each only when switched on (p > 0), so a config without them
    draws the same random numbers, and gets the same augmentations, as before they existed."""
    steps: list[A.BasicTransform] = []
    if aug.zoom > 0:
        steps.append(zoom_transform(aug))
    if aug.occlusion > 0:
        steps.append(CopyPasteOcclusion(max_occluders=aug.max_occluders, p=aug.occlusion))
    return steps


def build_train_transform(cfg: DataConfig) -> A.Compose:
    """Resize, L/R-swapping flip, affine, [zoom, occlusion], colour jitter, blur, noise, normalise, to tensor."""
    aug = cfg.augment
    steps: list[A.BasicTransform] = [
        _resize(cfg),
        HorizontalFlipSwapLR(p=aug.hflip),
        A.Affine(
            translate_percent=(-aug.shift, aug.shift),
            scale=(1.0 - aug.scale, 1.0 + aug.scale),
            rotate=(-aug.rotate, aug.rotate),
            interpolation=cv2.INTER_LINEAR,
            mask_interpolation=cv2.INTER_NEAREST,  # labels are IDs: never blend them
            border_mode=cv2.BORDER_CONSTANT,
            fill=0,
            fill_mask=0,  # pixels shifted in from outside are background
            p=aug.affine,
        ),
        *_wild_steps(aug),  # before the colour steps: occluders get the same jitter, blur and noise
        A.ColorJitter(
            brightness=aug.brightness,
            contrast=aug.contrast,
            saturation=aug.saturation,
            hue=aug.hue,
            p=aug.color,
        ),
        A.GaussianBlur(blur_limit=(3, 5), sigma_limit=(0.3, 1.2), p=aug.blur),
        A.GaussNoise(std_range=(0.02, 0.06), p=aug.noise),
        *_normalize(cfg),
    ]
    return A.Compose(steps)


def build_val_transform(cfg: DataConfig) -> A.Compose:
    """Resize to image_size, normalise, to tensor."""
    return A.Compose([_resize(cfg), *_normalize(cfg)])
