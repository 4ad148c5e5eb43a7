"""Label sets: the lapa11 merge (summed probabilities), and `run --label-set lapa11` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from configs import CLASS_ID, CLASSES, FLIP_PERMUTATION
from configs.label_sets import LAPA11, merge_probabilities
from data_prep.atomic import write_image
from data_prep.layout import read_label_map
from ensemble.submission.relabel import MergedModel
from run_ensemble import main
from tuning.metrics import confusion_matrix, scores_from_confusion

from ensemble_fixtures import make_face_dataset, make_image_folder, write_manifest

# LaPa's IDs, written out by hand from its README (not taken from the module under test).
LAPA = {
    "background": 0,
    "skin": 1,
    "left eyebrow": 2,
    "right eyebrow": 3,
    "left eye": 4,
    "right eye": 5,
    "nose": 6,
    "upper lip": 7,
    "inner mouth": 8,
    "lower lip": 9,
    "hair": 10,
}


def hand_merge(p: np.ndarray) -> np.ndarray:
    """The lapa11 merge of a (19, ...) array spelled out class by class."""
    c = CLASS_ID
    out = np.zeros((11, *p.shape[1:]), p.dtype)
    out[LAPA["background"]] = p[c["background"]] + p[c["neck"]] + p[c["cloth"]] + p[c["neck_l"]]
    out[LAPA["background"]] += p[c["ear_r"]] + p[c["hat"]]
    out[LAPA["skin"]] = p[c["skin"]] + p[c["l_ear"]] + p[c["r_ear"]] + p[c["eye_g"]]
    for ours, theirs in [
        ("l_brow", "left eyebrow"),
        ("r_brow", "right eyebrow"),
        ("l_eye", "left eye"),
        ("r_eye", "right eye"),
        ("nose", "nose"),
        ("u_lip", "upper lip"),
        ("mouth", "inner mouth"),
        ("l_lip", "lower lip"),
        ("hair", "hair"),
    ]:
        out[LAPA[theirs]] = p[c[ours]]
    return out


def random_probs(shape=(19, 3, 4), seed=0) -> np.ndarray:
    logits = np.random.default_rng(seed).normal(0, 3, shape)
    e = np.exp(logits - logits.max(0))
    return (e / e.sum(0)).astype(np.float64)


def test_lapa11_merge_sums_probabilities_as_computed_by_hand():
    p = random_probs()
    merged = merge_probabilities(p, LAPA11)
    np.testing.assert_allclose(merged, hand_merge(p), rtol=1e-12)
    np.testing.assert_allclose(merged.sum(0), 1.0)
    # Summing is not slicing: a pixel whose largest single class is merged away can still win.
    q = np.zeros((19, 1, 1))
    q[CLASS_ID["neck"]], q[CLASS_ID["cloth"]], q[CLASS_ID["skin"]] = 0.3, 0.3, 0.4
    assert merge_probabilities(q, LAPA11).argmax(0)[0, 0] == LAPA["background"]


def test_lapa11_names_and_ids_match_lapa():
    assert [LAPA11.display_names[i] for i in range(11)] == list(LAPA)
    assert LAPA11.to_set_lut[255] == 255 and LAPA11.from_set_lut[255] == 255
    # Every set ID comes back as itself through its representative.
    assert (LAPA11.to_set_lut[LAPA11.from_set_lut[:11]] == np.arange(11)).all()


def test_lapa11_merge_commutes_with_the_left_right_flip():
    # A flip swaps l_/r_ channels; merging before or after must agree (TTA flips merged outputs).
    p = random_probs(seed=1)
    flipped = merge_probabilities(p[FLIP_PERMUTATION], LAPA11)
    swap = [LAPA[n] for n in LAPA]
    for a, b in [("left eyebrow", "right eyebrow"), ("left eye", "right eye")]:
        swap[LAPA[a]], swap[LAPA[b]] = LAPA[b], LAPA[a]
    np.testing.assert_allclose(flipped, merge_probabilities(p, LAPA11)[swap])


class _Fixed(torch.nn.Module):
    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = logits

    def forward(self, x):
        return self.logits


def test_merged_model_softmax_is_the_hand_merge_in_representative_channels():
    p = random_probs((19, 2, 3), seed=2)
    model = MergedModel(_Fixed(torch.log(torch.tensor(p[None], dtype=torch.float32))), LAPA11)
    out = torch.softmax(model(torch.zeros(1, 3, 2, 3)), dim=1)[0].numpy()
    expected = hand_merge(p)
    for lapa_id, c in enumerate(LAPA11.classes):
        np.testing.assert_allclose(out[CLASS_ID[c]], expected[lapa_id], atol=1e-6)
    merged_away = [i for i, c in enumerate(CLASSES) if c not in LAPA11.classes]
    assert (out[merged_away] == 0).all()


FAST = ["--workers", "0", "--quiet", "--device", "cpu", "--viz", "1"]


@pytest.fixture(scope="module")
def lapa_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("lapa_run")
    images, gt19, gt = root / "images", root / "gt19", root / "gt"
    stems = make_image_folder(images, [(64, 64), (48, 56)], masks=gt19)
    for s in stems:
        write_image(gt / f"{s}.png", LAPA11.to_set_lut[read_label_map(gt19 / f"{s}.png")])
    return images, gt19, gt, stems


def test_run_with_lapa11_writes_lapa_ids_and_scores_against_lapa_ground_truth(lapa_folder, tmp_path):
    images, _, gt, stems = lapa_folder
    manifest = write_manifest(tmp_path / "models")
    out = tmp_path / "out"
    args = ["--manifest", str(manifest), "--images", str(images), "--gt", str(gt), "--out", str(out)]
    assert main([*args, "--tta", "flip", "--label-set", "lapa11", *FAST]) == 0
    cm = np.zeros((19, 19), np.int64)
    for s in stems:
        written = read_label_map(out / "masks" / f"{s}.png")
        assert written.max() < 11
        truth = read_label_map(gt / f"{s}.png")
        # scored in representative IDs: the LaPa IDs mapped back by name
        cm += confusion_matrix(
            torch.from_numpy(LAPA11.from_set_lut[written]), torch.from_numpy(LAPA11.from_set_lut[truth])
        ).numpy()
    report = json.loads((out / "report.json").read_text())
    final = report["stages"][-1]
    assert final["f1"] == pytest.approx(scores_from_confusion(cm)["f1"])
    # classes merged away have no pixels: no score, out of the means
    assert final["per_class_f1"]["neck"] is None and final["per_class_f1"]["l_ear"] is None
    assert report["label_set"]["merged_into"]["skin"] == ["skin", "eye_g", "l_ear", "r_ear"]
    md = (out / "report.md").read_text()
    assert "## Label set: lapa11" in md and "| 1 | skin | skin, eye_g, l_ear, r_ear |" in md
    assert "Mean F1 over the 10 face classes" in md


def test_run_with_lapa11_refuses_19_class_ground_truth_before_writing(lapa_folder, tmp_path, capsys):
    images, gt19, _, _ = lapa_folder
    manifest = write_manifest(tmp_path / "models")
    out = tmp_path / "out"
    args = ["--manifest", str(manifest), "--images", str(images), "--gt", str(gt19), "--out", str(out)]
    assert main([*args, "--label-set", "lapa11", *FAST]) == 2
    assert "outside the lapa11 label set" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_lapa11_run_merges_19_class_ground_truth_of_a_prepared_dataset(tmp_path):
    prep = make_face_dataset(tmp_path / "prep", {"train": 1, "val": 1, "test": 2}, size=64)
    manifest = write_manifest(tmp_path / "models")
    out = tmp_path / "out"
    argv = ["--manifest", str(manifest), "--images", str(prep.root), "--out", str(out), "--tta", "none"]
    assert main([*argv, "--no-postprocess", "--label-set", "lapa11", *FAST]) == 0
    cm = np.zeros((19, 19), np.int64)
    for s in prep.split_ids("test"):
        written = LAPA11.from_set_lut[read_label_map(out / "masks" / f"{s}.png")]
        truth = LAPA11.from_set_lut[LAPA11.to_set_lut[read_label_map(prep.mask_path(s))]]  # merged by name
        cm += confusion_matrix(torch.from_numpy(written), torch.from_numpy(truth)).numpy()
    report = json.loads((out / "report.json").read_text())
    assert report["label_set"]["ground_truth"] == "celebamask19"
    assert report["stages"][-1]["f1"] == pytest.approx(scores_from_confusion(cm)["f1"])


def test_lapa11_ground_truth_needs_a_lapa11_run(tmp_path, capsys):
    prep = make_face_dataset(tmp_path / "prep", {"train": 1, "val": 1, "test": 1}, size=64)
    meta = json.loads(prep.meta_path.read_text())
    prep.meta_path.write_text(json.dumps({**meta, "label_set": "lapa11"}))
    manifest = write_manifest(tmp_path / "models")
    argv = ["--manifest", str(manifest), "--images", str(prep.root), "--out", str(tmp_path / "out")]
    assert main([*argv, *FAST]) == 2
    assert "can be scored only with --label-set lapa11" in capsys.readouterr().err
