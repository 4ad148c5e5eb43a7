"""Probability averaging over members and views, stage labels, and member weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from configs import FLIP_PERMUTATION
from data_prep.layout import read_rgb
from ensemble.core.inference import Ensemble
from ensemble.core.inputs import ImageItem
from ensemble.core.member_weights import WeightsError, score_weights, uniform_weights
from ensemble.core.members import load_manifest
from ensemble.core.tta import build_views

from ensemble_fixtures import PaletteModel, make_image_folder, member, write_manifest


@pytest.fixture(scope="module")
def two_members(tmp_path_factory):
    """Two tiny smp members with different normalisation."""
    folder = tmp_path_factory.mktemp("models")
    path = write_manifest(folder, [{}, {"arch": "Unet", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}])
    return load_manifest(path).members


def _hand_probs(m, image: np.ndarray, flip: bool = False) -> torch.Tensor:
    x = (image.astype(np.float32) / 255 - np.float32(m.mean)) / np.float32(m.std)
    x = torch.from_numpy(x.transpose(2, 0, 1).copy())[None]
    with torch.no_grad():
        if not flip:
            return torch.softmax(m.model(x), 1)[0]
        return torch.softmax(m.model(x.flip(-1)), 1).flip(-1)[0, FLIP_PERMUTATION]


def test_average_of_two_members_equals_hand_computed_average(two_members, tmp_path):
    make_image_folder(tmp_path, [(64, 64)])
    item = ImageItem("0", tmp_path / "0.png")
    image = read_rgb(item.path)
    p0, p1 = (_hand_probs(m, image) for m in two_members)
    assert (p0 - p1).abs().max() > 0.1  # the members really disagree

    (probs,) = Ensemble(two_members, [0.3, 0.7], build_views("none")).predict([item], probs=True)
    assert probs.shape == (19, 64, 64) and probs.dtype == np.float32
    np.testing.assert_allclose(probs, (0.3 * p0 + 0.7 * p1).numpy(), atol=1e-5)

    # With flip TTA each member's two views are averaged first (weights normalised: 1:1).
    (probs,) = Ensemble(two_members, [2.0, 2.0], build_views("flip")).predict([item], probs=True)
    hand = sum(0.5 * (_hand_probs(m, image) + _hand_probs(m, image, flip=True)) for m in two_members) / 2
    np.testing.assert_allclose(probs, hand.numpy(), atol=1e-5)


def test_probabilities_come_back_at_each_images_own_size(two_members, tmp_path):
    sizes = [(64, 64), (37, 90), (120, 50)]
    make_image_folder(tmp_path, sizes)
    items = [ImageItem(str(i), tmp_path / f"{i}.png") for i in range(3)]
    # Members at different resolutions average at the larger one, then resize to each image.
    wide = [two_members[0], member(PaletteModel(), "palette", image_size=96)]
    out = list(Ensemble(wide, [1, 1], build_views("flip")).stream(items, batch_size=2, progress=False))
    assert [p.stem for p in out] == ["0", "1", "2"]
    for pred, size in zip(out, sizes):
        assert pred.probs.shape == (19, *size) and pred.size == size
        np.testing.assert_allclose(pred.probs.sum(0), 1.0, atol=1e-4)


def test_stage_labels_are_each_member_alone_and_the_plain_ensemble(two_members, tmp_path):
    make_image_folder(tmp_path, [(64, 64), (48, 80)])
    items = [ImageItem(str(i), tmp_path / f"{i}.png") for i in range(2)]
    views = build_views("flip")
    out = list(Ensemble(two_members, [1, 1], views).stream(items, track_stages=True, progress=False))
    for m in two_members:
        alone = Ensemble([m], [1], build_views("none")).predict(items, probs=True)
        for pred, p in zip(out, alone):
            np.testing.assert_array_equal(pred.stage_labels[f"member:{m.name}"], p.argmax(0))
    plain = Ensemble(two_members, [1, 1], build_views("none")).predict(items, probs=True)
    for pred, p in zip(out, plain):
        np.testing.assert_array_equal(pred.stage_labels["ensemble"], p.argmax(0))


def test_score_weights_follow_validation_f1(two_members):
    w = score_weights(two_members)  # val_f1 0.5 and 0.6
    assert w == pytest.approx({"m0": 0.5 / 1.1, "m1": 0.6 / 1.1})
    assert uniform_weights(two_members) == {"m0": 0.5, "m1": 0.5}
    two_members[0].val_f1, saved = None, two_members[0].val_f1
    try:
        with pytest.raises(WeightsError, match=r"\['m0'\] have no positive val_f1"):
            score_weights(two_members)
    finally:
        two_members[0].val_f1 = saved


def test_stages_run_the_plain_view_even_when_tta_leaves_it_out(two_members, tmp_path):
    make_image_folder(tmp_path, [(64, 64)])
    items = [ImageItem("0", tmp_path / "0.png")]
    views = build_views("flip+scale", [0.5, 1.5])  # no identity view among them
    (pred,) = Ensemble(two_members, [1, 1], views).stream(items, track_stages=True, progress=False)
    (tta,) = Ensemble(two_members, [1, 1], views).predict(items, probs=True)
    np.testing.assert_allclose(pred.probs, tta, atol=1e-6)  # the extra view is not averaged in
    (plain,) = Ensemble(two_members, [1, 1], build_views("none")).predict(items, probs=True)
    np.testing.assert_array_equal(pred.stage_labels["ensemble"], plain.argmax(0))


class _CountingModel(torch.nn.Module):
    """Wraps a member's model and records the batch shape of every forward pass."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model, self.calls = model, []

    def forward(self, x):
        self.calls.append(tuple(x.shape))
        return self.model(x)


@pytest.mark.parametrize("mode, expected_calls", [("flip", 1), ("flip+scale", 3)])
def test_views_of_one_shape_share_one_forward_pass(two_members, tmp_path, mode, expected_calls):
    make_image_folder(tmp_path, [(64, 64), (64, 64)])
    items = [ImageItem(str(i), tmp_path / f"{i}.png") for i in range(2)]
    views = build_views(mode, [0.5, 1.0, 1.5])
    base = two_members[0]
    reference = Ensemble([base], [1], views).predict(items, probs=True, batch_size=2)[0]

    counting = _CountingModel(base.model)
    wrapped = member(counting, base.name, image_size=base.image_size, mean=base.mean, std=base.std)
    got = Ensemble([wrapped], [1], views).predict(items, probs=True, batch_size=2)[0]
    # identity + flip of each scale go through the model together: 2 views x 2 images per call
    assert len(counting.calls) == expected_calls
    assert all(shape[0] == 4 for shape in counting.calls)
    np.testing.assert_allclose(got, reference, atol=1e-5)
