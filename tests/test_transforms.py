"""L/R-swapping flip and the train/val augmentation pipelines."""

from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
import torch

from configs import CLASS_ID, IGNORE_INDEX, NUM_CLASSES
from configs.schema import DataConfig
from data_prep.transforms import HorizontalFlipSwapLR, build_train_transform, build_val_transform

PAIRS = [("l_eye", "r_eye"), ("l_brow", "r_brow"), ("l_ear", "r_ear")]


def asymmetric_face() -> tuple[np.ndarray, np.ndarray]:
    """An 8x12 label map with each left part on the image's right, at distinct rows."""
    mask = np.full((8, 12), CLASS_ID["skin"], np.uint8)
    for row, (left, right) in enumerate(PAIRS):
        mask[row, 9] = CLASS_ID[left]  # subject's left = image right
        mask[row, 1] = CLASS_ID[right]
    mask[5, 10] = CLASS_ID["nose"]  # an unpaired part off-centre
    mask[7, 0] = IGNORE_INDEX
    image = np.zeros((8, 12, 3), np.uint8)
    image[..., 0] = np.arange(12, dtype=np.uint8)[None, :] * 10  # red ramp shows the mirroring
    return image, mask


def assert_flipped_and_swapped(out_mask: np.ndarray) -> None:
    """After a true flip the r_* part (was image col 1) is at col 10 and labelled l_*, and vice versa."""
    for row, (left, right) in enumerate(PAIRS):
        assert out_mask[row, 10] == CLASS_ID[left], f"row {row}: expected {left} on the image right"
        assert out_mask[row, 2] == CLASS_ID[right], f"row {row}: expected {right} on the image left"
        assert out_mask[row, 9] == out_mask[row, 1] == CLASS_ID["skin"], "parts must move"


def test_flip_swaps_left_and_right_labels_and_moves_them():
    image, mask = asymmetric_face()
    out = HorizontalFlipSwapLR(p=1.0)(image=image, mask=mask)
    assert_flipped_and_swapped(out["mask"])
    assert out["mask"][5, 1] == CLASS_ID["nose"]  # unpaired part moves, keeps its label
    assert out["mask"][7, 11] == IGNORE_INDEX  # ignore label survives the relabelling
    np.testing.assert_array_equal(out["image"], image[:, ::-1])


def test_plain_horizontal_flip_mislabels_left_and_right():
    image, mask = asymmetric_face()
    out = A.HorizontalFlip(p=1.0)(image=image, mask=mask)
    with pytest.raises(AssertionError):
        assert_flipped_and_swapped(out["mask"])
    # What goes wrong: the l_eye pixels now sit on the image left, still called l_eye.
    assert out["mask"][0, 2] == CLASS_ID["l_eye"]


def test_flip_twice_is_identity():
    image, mask = asymmetric_face()
    flip = HorizontalFlipSwapLR(p=1.0)
    once = flip(image=image, mask=mask)
    twice = flip(image=once["image"], mask=once["mask"])
    np.testing.assert_array_equal(twice["mask"], mask)
    np.testing.assert_array_equal(twice["image"], image)


def test_flip_inside_compose_swaps_labels_of_wide_integer_masks():
    image, mask = asymmetric_face()
    out = A.Compose([HorizontalFlipSwapLR(p=1.0)])(image=image, mask=mask.astype(np.int64))
    assert out["mask"].dtype != np.uint8  # the non-uint8 relabelling path
    assert_flipped_and_swapped(out["mask"])


def test_flip_with_p_zero_changes_nothing():
    image, mask = asymmetric_face()
    out = A.Compose([HorizontalFlipSwapLR(p=0.0)])(image=image, mask=mask)
    np.testing.assert_array_equal(out["mask"], mask)


def random_sample(size: int = 80, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    mask = rng.integers(0, NUM_CLASSES, (size, size), dtype=np.uint8)
    mask[:4] = IGNORE_INDEX
    return image, mask


def test_train_transform_gives_tensors_at_image_size_with_valid_labels():
    cfg = DataConfig(
        image_size=64, augment={"hflip": 1.0, "affine": 1.0, "color": 1.0, "blur": 1.0, "noise": 1.0}
    )
    transform = build_train_transform(cfg)
    valid = set(range(NUM_CLASSES)) | {IGNORE_INDEX}
    for seed in range(5):
        image, mask = random_sample(seed=seed)
        out = transform(image=image, mask=mask)
        assert out["image"].shape == (3, 64, 64) and out["image"].dtype == torch.float32
        assert out["mask"].shape == (64, 64)
        # Nearest interpolation everywhere: no blended label values appear.
        assert set(np.unique(out["mask"].numpy())) <= valid


def test_affine_fills_border_with_background():
    cfg = DataConfig(
        image_size=64,
        augment={
            "hflip": 0,
            "affine": 1.0,
            "shift": 0.5,
            "scale": 0.0,
            "rotate": 0.0,
            "color": 0,
            "blur": 0,
            "noise": 0,
        },
    )
    transform = build_train_transform(cfg)
    transform.set_random_seed(0)
    mask = np.full((64, 64), CLASS_ID["skin"], np.uint8)
    image = np.full((64, 64, 3), 200, np.uint8)
    out = [transform(image=image, mask=mask)["mask"].numpy() for _ in range(5)]
    assert any((m == 0).sum() > 64 for m in out), "a shift of up to 50% must bring in background"
    assert all(set(np.unique(m)) <= {0, CLASS_ID["skin"]} for m in out)


def test_val_transform_normalises_with_config_mean_and_std():
    cfg = DataConfig(image_size=32, mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0))
    image = np.full((32, 32, 3), 255, np.uint8)
    image[..., 1] = 0
    out = build_val_transform(cfg)(image=image, mask=np.zeros((32, 32), np.uint8))
    channel_values = out["image"].reshape(3, -1).mean(dim=1)
    # (255/255 - 0.5)/0.5 = 1, (0 - 0.25)/0.25 = -1, (1 - 0)/1 = 1
    torch.testing.assert_close(channel_values, torch.tensor([1.0, -1.0, 1.0]))


def test_val_transform_resizes_mask_with_nearest():
    cfg = DataConfig(image_size=32)
    _, mask = random_sample(size=96)
    out = build_val_transform(cfg)(image=np.zeros((96, 96, 3), np.uint8), mask=mask)
    assert out["mask"].shape == (32, 32)
    assert set(np.unique(out["mask"].numpy())) <= set(np.unique(mask))
