"""Copy-paste occlusion and zoom augmentation: labels follow the pasted pixels, p=0 changes nothing."""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np
import pytest

from configs import CLASS_ID, IGNORE_INDEX, NUM_CLASSES
from configs.schema import AugmentConfig, DataConfig
from data_prep.occlusion import OCCLUDER_KINDS, CopyPasteOcclusion
from data_prep.transforms import build_train_transform, zoom_transform

SKIN, NOSE, HAIR = CLASS_ID["skin"], CLASS_ID["nose"], CLASS_ID["hair"]


def flat_face(value: int = SKIN, size: int = 64, grey: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """A face that is one class everywhere, on a flat grey image."""
    return np.full((size, size, 3), grey, np.uint8), np.full((size, size), value, np.uint8)


@pytest.mark.parametrize("kind", ["hand", "microphone", "cup", "blob"])
def test_objects_turn_exactly_the_pasted_pixels_into_background(kind):
    image, mask = flat_face()
    t = CopyPasteOcclusion(kinds={kind: 1.0}, p=1.0)
    t.set_random_seed(3)
    for _ in range(3):
        out = t(image=image, mask=mask)
        paste = t.params["paste"]
        assert paste.any()
        np.testing.assert_array_equal(out["mask"] != mask, paste)  # the mask changes exactly there
        assert (out["mask"][paste] == 0).all()
        np.testing.assert_array_equal(out["image"][paste], t.params["paste_rgb"][paste])
        np.testing.assert_array_equal(out["image"][~paste], image[~paste])


def test_hair_strands_are_labelled_hair():
    image, mask = flat_face()
    t = CopyPasteOcclusion(kinds={"hair": 1.0}, p=1.0)
    t.set_random_seed(0)
    out = t(image=image, mask=mask)
    paste = t.params["paste"]
    assert paste.sum() > 10 and (out["mask"][paste] == HAIR).all()
    np.testing.assert_array_equal(out["mask"][~paste], mask[~paste])


def test_face_patches_bring_the_other_faces_labels():
    t = CopyPasteOcclusion(kinds={"face": 1.0}, p=1.0)
    t.set_random_seed(1)
    other_image, other_mask = flat_face(NOSE, grey=30)
    t(image=other_image, mask=other_mask)  # the bank now holds this face
    image, mask = flat_face(SKIN)
    out = t(image=image, mask=mask)
    paste = t.params["paste"]
    assert paste.sum() > 10
    assert (out["mask"][paste] == NOSE).all() and (out["image"][paste] == 30).all()
    np.testing.assert_array_equal(out["mask"][~paste], mask[~paste])


def test_occlusion_with_p_zero_is_identity_and_off_by_default():
    image, mask = flat_face()
    out = A.Compose([CopyPasteOcclusion(p=0.0)])(image=image, mask=mask)
    np.testing.assert_array_equal(out["mask"], mask)
    np.testing.assert_array_equal(out["image"], image)
    default = build_train_transform(DataConfig(image_size=64))
    assert not any(isinstance(s, CopyPasteOcclusion) for s in default.transforms)
    on = build_train_transform(DataConfig(image_size=64, augment={"occlusion": 0.3}))
    assert [s.p for s in on.transforms if isinstance(s, CopyPasteOcclusion)] == [0.3]


def test_unknown_occluder_kind_is_refused():
    with pytest.raises(ValueError, match="unknown occluder kinds"):
        CopyPasteOcclusion(kinds={"umbrella": 1.0})
    assert set(OCCLUDER_KINDS) >= {"hand", "microphone", "cup", "hair", "face"}


def test_zoom_out_pads_with_background_label_and_black_image():
    image, mask = flat_face(size=64, grey=200)
    t = A.Compose([zoom_transform(AugmentConfig(zoom=1.0, zoom_range=(0.5, 1.0)))])
    t.set_random_seed(0)
    outs = [t(image=image, mask=mask) for _ in range(6)]
    assert any((o["mask"] == 0).mean() > 0.3 for o in outs), "a zoom to 0.5 must bring in a wide border"
    for o in outs:
        assert set(np.unique(o["mask"])) <= {0, SKIN}
        # black image where the label is background (one pixel in: bilinear edges blend)
        border = cv2.erode((o["mask"] == 0).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        assert (o["image"][border] == 0).all()


def test_zoom_in_crops_the_face():
    _, mask = flat_face(size=64)
    mask[:8, :8] = NOSE  # a part in the corner: zooming in pushes it out of the frame
    t = A.Compose([zoom_transform(AugmentConfig(zoom=1.0, zoom_range=(1.0, 2.0)))])
    t.set_random_seed(0)
    out = [t(image=np.zeros((64, 64, 3), np.uint8), mask=mask)["mask"] for _ in range(6)]
    assert any((m == NOSE).sum() == 0 for m in out)


def test_train_transform_with_zoom_and_occlusion_gives_valid_labels():
    cfg = DataConfig(image_size=64, augment={"occlusion": 1.0, "zoom": 1.0, "max_occluders": 3})
    transform = build_train_transform(cfg)
    transform.set_random_seed(0)
    rng = np.random.default_rng(0)
    valid = set(range(NUM_CLASSES)) | {IGNORE_INDEX}
    for _ in range(4):
        image = rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)
        mask = rng.integers(0, NUM_CLASSES, (80, 80), dtype=np.uint8)
        out = transform(image=image, mask=mask)
        assert out["image"].shape == (3, 64, 64) and set(np.unique(out["mask"].numpy())) <= valid
