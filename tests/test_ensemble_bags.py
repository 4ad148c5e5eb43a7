"""Refit bags in the ensemble: a bag predicts the mean of its models; fit --oof chooses bags on
out-of-fold predictions; export refuses a bag."""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from configs import NUM_CLASSES
from data_prep.layout import read_label_map, read_rgb
from ensemble.cli import export_command
from ensemble.core.inference import Ensemble
from ensemble.core.members import load_manifest
from ensemble.export.model_export import ExportError
from ensemble.fit.fit_recipe import FitOptions, fit
from tuning.manifest import ManifestError, read_manifest
from tuning.oof import write_oof

from ensemble_fixtures import make_face_dataset, make_image_folder, write_manifest

R = 32  # out-of-fold resolution of these tests


def two_fold_bags(folder: Path, oof: bool = True) -> Path:
    """Bags b0 (m0, m1) and b1 (m2, m3), each with folds 0 and 1 (random tiny models)."""
    members = [
        {"bag": f"b{i // 2}", "fold": i % 2, **({"oof": f"oof/m{i}.npz"} if oof else {})} for i in range(4)
    ]
    if oof:
        (folder / "oof").mkdir(parents=True, exist_ok=True)
        for i in range(4):  # placeholders: the OOF test writes the real ones
            write_oof(folder / f"oof/m{i}.npz", ["0"], np.zeros((1, NUM_CLASSES, R, R), np.float16))
    bags = [
        {
            "name": f"b{b}",
            "members": [f"m{2 * b}", f"m{2 * b + 1}"],
            "score_split": "oof" if oof else "val",
            "oof": [f"oof/m{2 * b}.npz", f"oof/m{2 * b + 1}.npz"] if oof else [],
        }
        for b in range(2)
    ]
    return write_manifest(folder, members, bags=bags)


def test_a_bag_predicts_the_mean_of_its_fold_models(tmp_path):
    manifest = two_fold_bags(tmp_path / "m", oof=False)
    stems = make_image_folder(tmp_path / "img", [(64, 64), (48, 80)])
    rgb = [read_rgb(tmp_path / "img" / f"{s}.png") for s in stems]
    bags = load_manifest(manifest).members
    assert [b.name for b in bags] == ["b0", "b1"] and bags[0].bag_members == ["m0", "m1"]
    bag = Ensemble(bags[:1]).predict(rgb, probs=True)
    folds = load_manifest(manifest, bags=False).members
    alone = [Ensemble([m]).predict(rgb, probs=True) for m in folds[:2]]
    for i in range(len(rgb)):
        np.testing.assert_allclose(bag[i], (alone[0][i] + alone[1][i]) / 2, atol=1e-5)
        assert not np.allclose(alone[0][i], alone[1][i], atol=1e-2)  # the two models do differ


def test_a_member_tagged_with_a_bag_must_be_listed_in_it(tmp_path):
    with pytest.raises(ManifestError, match="belong to no bag"):
        write_manifest(
            tmp_path,
            [{"bag": "b0", "fold": 0}, {"bag": "b0", "fold": 1}],
            bags=[{"name": "b0", "members": ["m0"]}],
        )


def test_oof_selection_never_picks_a_bag_of_random_models(tmp_path):
    prep = make_face_dataset(tmp_path / "prep", {"train": 16, "val": 8, "test": 2})
    manifest = two_fold_bags(tmp_path / "m")
    ids = prep.split_ids("train") + prep.split_ids("val")
    folds = [ids[0::2], ids[1::2]]
    rng = np.random.default_rng(0)
    for fold, held in enumerate(folds):
        gt = np.stack(
            [
                cv2.resize(read_label_map(prep.mask_path(i)), (R, R), interpolation=cv2.INTER_NEAREST_EXACT)
                for i in held
            ]
        )
        onehot = np.moveaxis(np.eye(NUM_CLASSES, dtype=np.float32)[gt], -1, 1)
        # b0: a decent model (the truth under noise); b1: random probabilities
        good = torch.softmax(
            torch.from_numpy(3 * onehot + rng.normal(0, 1.2, onehot.shape).astype(np.float32)), 1
        )
        noise = torch.softmax(torch.from_numpy(rng.normal(0, 3, onehot.shape).astype(np.float32)), 1)
        write_oof(tmp_path / "m" / f"oof/m{fold}.npz", held, good.numpy())
        write_oof(tmp_path / "m" / f"oof/m{2 + fold}.npz", held, noise.numpy())
    out = tmp_path / "m" / "recipe.json"
    recipe = fit(
        FitOptions(manifest=manifest, data=prep.root, out=out, candidate_views="flip", progress=False)
    )
    assert recipe.members == {"b0": 1.0}
    assert recipe.bags == {"b0": ["m0", "m1"]}
    assert recipe.data["images"] == len(ids) and recipe.data["split"].startswith("out-of-fold")
    singles = recipe.decisions["candidates"]
    assert singles["b0"]["all"] > singles["b1"]["all"] + 0.2


def test_export_refuses_a_bag_and_points_to_distill(tmp_path):
    manifest = two_fold_bags(tmp_path / "m", oof=False)
    args = argparse.Namespace(
        manifest=manifest, member="b0", format="smp", out=tmp_path / "x", opset=17, check_images=None
    )
    with pytest.raises(ExportError, match=r"bag of 2 models.*--member m0.*distill"):
        export_command.main(args)
    assert len(read_manifest(manifest).bags) == 2


def test_the_run_report_starts_with_the_best_search_trial(tmp_path):
    from ensemble.submission.run_pipeline import RunOptions, run
    from ensemble.submission.run_report import compact_rows

    prep = make_face_dataset(tmp_path / "prep", {"test": 3})
    search = write_manifest(tmp_path / "search", [{}, {}])  # m1 has the higher val_f1
    report = run(
        RunOptions(manifest=search, images=prep.root, out=tmp_path / "out", baseline=search, progress=False)
    )
    stages = {s["stage"]: s for s in report["stages"]}
    first = report["stages"][0]
    assert first["stage"] == "baseline:best search trial (m1)" and first["kind"] == "baseline"
    assert first["f1"] == pytest.approx(stages["member:m1"]["f1"])  # the same model on the same images
    assert compact_rows(report["stages"])[0][0] == "best search trial (m1)"
