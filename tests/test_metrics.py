"""tuning.metrics against a brute-force per-class count with numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from configs import CLASS_ID, CLASSES, FACE_CLASS_IDS, IGNORE_INDEX, NUM_CLASSES
from tuning.metrics import ConfusionMatrix, scores_from_confusion


def brute_force(pred: np.ndarray, target: np.ndarray) -> dict:
    """Per-class F1 / IoU by counting pixels class by class (None when a class never occurs)."""
    keep = target != IGNORE_INDEX
    p, t = pred[keep], target[keep]
    f1, iou = {}, {}
    for c, name in enumerate(CLASSES):
        tp = np.sum((p == c) & (t == c))
        fp = np.sum((p == c) & (t != c))
        fn = np.sum((p != c) & (t == c))
        f1[name] = None if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
        iou[name] = None if tp + fp + fn == 0 else tp / (tp + fp + fn)
    return {"f1": f1, "iou": iou, "pixel_acc": float(np.mean(p == t))}


def random_maps(seed: int, absent: int):
    rng = np.random.default_rng(seed)
    classes = [c for c in range(NUM_CLASSES) if c != absent]
    target = rng.choice(classes, size=(4, 40, 48)).astype(np.int64)
    pred = target.copy()
    wrong = rng.random(target.shape) < 0.4
    pred[wrong] = rng.choice(classes, size=int(wrong.sum()))
    target[rng.random(target.shape) < 0.1] = IGNORE_INDEX
    return pred, target


@pytest.mark.parametrize("seed", [0, 1])
def test_scores_equal_a_brute_force_count(seed):
    absent = CLASS_ID["hat"]
    pred, target = random_maps(seed, absent)
    cm = ConfusionMatrix()
    for b in range(pred.shape[0]):  # accumulated batch by batch
        cm.update(torch.from_numpy(pred[b : b + 1]), torch.from_numpy(target[b : b + 1]))
    scores = cm.scores()
    expected = brute_force(pred, target)

    assert scores["per_class_f1"]["hat"] is None  # absent from truth and prediction
    for name in CLASSES:
        assert scores["per_class_f1"][name] == pytest.approx(expected["f1"][name])
        assert scores["per_class_iou"][name] == pytest.approx(expected["iou"][name])
    face = [expected["f1"][CLASSES[c]] for c in FACE_CLASS_IDS if expected["f1"][CLASSES[c]] is not None]
    assert scores["f1"] == pytest.approx(np.mean(face))
    assert len(face) == 17  # 18 face classes minus the absent one
    every = [v for v in expected["f1"].values() if v is not None]
    assert scores["f1_with_bg"] == pytest.approx(np.mean(every))
    assert scores["miou"] == pytest.approx(np.mean([v for v in expected["iou"].values() if v is not None]))
    assert scores["pixel_acc"] == pytest.approx(expected["pixel_acc"])


def test_ignored_pixels_do_not_count_whatever_is_predicted():
    target = torch.tensor([[1, 1, IGNORE_INDEX, IGNORE_INDEX]])
    right = ConfusionMatrix()
    right.update(torch.tensor([[1, 1, 1, 1]]), target)
    wrong = ConfusionMatrix()
    wrong.update(torch.tensor([[1, 1, 5, 7]]), target)
    assert right.scores() == wrong.scores()
    assert int(wrong.matrix.sum()) == 2


def test_a_class_predicted_but_absent_from_truth_scores_zero():
    target = np.zeros((1, 4, 4), np.int64)
    target[0, :2] = CLASS_ID["skin"]
    pred = target.copy()
    pred[0, 3, 3] = CLASS_ID["nose"]  # false positive of a class with no truth pixels
    cm = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    np.add.at(cm, (target.ravel(), pred.ravel()), 1)
    scores = scores_from_confusion(cm)
    assert scores["per_class_f1"]["nose"] == 0.0
    assert scores["f1"] == pytest.approx((1.0 + 0.0) / 2)  # skin 1.0, nose 0.0; others undefined


def test_each_class_f1_is_reported_as_a_flat_metric_equal_to_a_hand_count():
    from tuning.train import epoch_metrics

    # skin: 6 right, 2 pixels of nose called skin, 1 skin pixel called background -> F1 = 12 / 15
    cm = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    skin, nose = CLASS_ID["skin"], CLASS_ID["nose"]
    cm[skin, skin], cm[nose, skin], cm[skin, 0], cm[0, 0], cm[nose, nose] = 6, 2, 1, 5, 3
    scores = scores_from_confusion(cm)
    scores["loss"] = 0.5
    metrics = epoch_metrics(1, 0.7, scores, 1e-3, seconds=1.0)
    assert metrics["val_f1_skin"] == pytest.approx(12 / 15)
    assert metrics["val_f1_nose"] == pytest.approx(6 / 8)  # 3 right, 2 missed
    assert metrics["val_f1_background"] == pytest.approx(10 / 11)
    assert metrics["val_f1_hat"] is None  # no hat pixels anywhere: no score, not a zero
    assert [k for k in metrics if k.startswith("val_f1_") and k != "val_f1_with_bg"] == [
        f"val_f1_{name}" for name in CLASSES
    ]
