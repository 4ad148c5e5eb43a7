"""TTA views: the flip swaps left/right channels, every inverse undoes its transform."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from configs import CLASS_ID, FLIP_PERMUTATION, NUM_CLASSES
from data_prep.atomic import write_image
from ensemble.core.inference import Ensemble
from ensemble.core.inputs import ImageItem
from ensemble.core.tta import HFlip, Scale, View, build_views

from ensemble_fixtures import SideModel, member


class PlainFlip(HFlip):
    """The mistake the real flip avoids: flipping the geometry back without swapping channels."""

    def inverse(self, probs, size):
        return probs.flip(-1)


@pytest.fixture
def one_eye_image(tmp_path):
    """Dark 64x64 image with one bright blob on the image's right: the subject's left eye."""
    image = np.zeros((64, 64, 3), np.uint8)
    image[20:30, 40:56] = 255
    write_image(tmp_path / "face.png", image)
    blob = np.zeros((64, 64), bool)
    blob[20:30, 40:56] = True
    return ImageItem("face", tmp_path / "face.png"), blob


def _labels(item, views):
    (probs,) = Ensemble([member(SideModel())], [1.0], views).predict([item], probs=True)
    return probs.argmax(0)


def _left_eye_kept(item, blob, views) -> bool:
    labels = _labels(item, views)
    return bool((labels[blob] == CLASS_ID["l_eye"]).all() and (labels[~blob] == CLASS_ID["skin"]).all())


def test_flip_view_keeps_left_eye_left_on_asymmetric_image(one_eye_image):
    item, blob = one_eye_image
    assert _left_eye_kept(item, blob, [View()])  # the model itself is right without TTA
    assert _left_eye_kept(item, blob, [View((HFlip(),))])  # the flipped view alone
    assert _left_eye_kept(item, blob, build_views("flip"))
    assert _left_eye_kept(item, blob, build_views("flip+scale", [0.5, 1.0, 1.5]))


def test_plain_flip_without_channel_swap_fails_the_same_check(one_eye_image):
    item, blob = one_eye_image
    assert not _left_eye_kept(item, blob, [View((PlainFlip(),))])
    labels = _labels(item, [View((PlainFlip(),))])
    assert (labels[blob] == CLASS_ID["r_eye"]).all()  # the subject's left eye called right


def _smooth_probs(n: int, size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, NUM_CLASSES, 4, 4, generator=g) * 3
    logits = F.interpolate(logits, size=(size, size), mode="bicubic", align_corners=False)
    return torch.softmax(logits, 1)


@pytest.mark.parametrize("view", build_views("flip+scale", [0.75, 1.0, 1.25]), ids=lambda v: v.name)
def test_each_view_inverse_undoes_its_transform(view):
    probs = _smooth_probs(2, 128)
    # What a perfect parser outputs on the transformed image: the transformed map, with the
    # left/right partners exchanged when the image was mirrored.
    seen = view.forward(probs)
    if any(isinstance(s, HFlip) for s in view.steps):
        seen = seen[:, FLIP_PERMUTATION]
    back = view.inverse(seen, (128, 128))
    assert back.shape == probs.shape
    tol = 1e-6 if all(not isinstance(s, Scale) for s in view.steps) else 0.03
    assert torch.allclose(back, probs, atol=tol)
    assert torch.allclose(back.sum(1), torch.ones(2, 128, 128), atol=1e-4)  # still probabilities


def test_hflip_inverse_flips_back_and_swaps_partner_channels():
    probs = _smooth_probs(1, 32)
    back = HFlip().inverse(probs.flip(-1), (32, 32))
    assert torch.equal(back, probs[:, FLIP_PERMUTATION])
    assert torch.equal(back[:, CLASS_ID["l_eye"]], probs[:, CLASS_ID["r_eye"]])
    assert torch.equal(back[:, CLASS_ID["l_ear"]], probs[:, CLASS_ID["r_ear"]])
    assert torch.equal(back[:, CLASS_ID["nose"]], probs[:, CLASS_ID["nose"]])


def test_scale_rounds_to_a_multiple_of_32():
    x = torch.zeros(1, 3, 128, 128)
    assert Scale(0.75).forward(x).shape[-2:] == (96, 96)
    assert Scale(1.25).forward(x).shape[-2:] == (160, 160)
    assert Scale(0.8).output_size((96, 64)) == (64, 64)
    assert Scale(0.1).output_size((64, 64)) == (32, 32)  # never below one encoder stride


def test_build_views_gives_each_scale_with_and_without_flip():
    assert [v.name for v in build_views("none")] == ["identity"]
    assert [v.name for v in build_views("flip")] == ["identity", "hflip"]
    names = [v.name for v in build_views("flip+scale", [0.75, 1.0, 1.25])]
    assert names == ["scale0.75", "scale0.75+hflip", "identity", "hflip", "scale1.25", "scale1.25+hflip"]
    with pytest.raises(ValueError, match="unknown TTA mode"):
        build_views("rotate")
