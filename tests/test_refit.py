"""tuning refit: folds, out-of-fold predictions, bag choice, the Ray experiment (resume, cluster)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import ray
import torch

from configs import NUM_CLASSES
from configs.errors import ConfigError
from configs.schema import parse_config
from data_prep.dataset import FaceParsingDataset
from data_prep.layout import PreparedDataset
from data_prep.transforms import build_val_transform
from tuning.bagging import choose_bags
from tuning.folds import plan_folds, pool_ids
from tuning.library_export import TrialSummary, export_members
from tuning.manifest import read_manifest
from tuning.oof import gather_oof, held_out_f1, predict_probs, read_oof, write_oof
from tuning.train import train

from interrupted_run import REPO, interrupt_after, result_lines


def tiny_cfg(prepared: Path, storage: Path, arch: str = "Unet", lr: float = 3e-3):
    return parse_config(
        {
            "seed": 0,
            "data": {"datasets": [{"path": str(prepared)}], "image_size": 64, "num_workers": 0},
            "model": {"arch": arch, "encoder": "resnet18", "encoder_weights": None},
            "train": {"epochs": 1, "batch_size": 8, "lr": lr, "amp": "none"},
            "search": {"max_concurrent": 2},
            "resources": {"cpu": 1, "gpu": 0, "storage": str(storage), "include_dashboard": False},
        }
    )


def test_folds_hold_out_every_train_and_val_image_exactly_once_and_never_test(tiny_prepared):
    prep = PreparedDataset(tiny_prepared)
    plan = plan_folds(tiny_prepared, 3, seed=0)
    pool = set(prep.split_ids("train")) | set(prep.split_ids("val"))
    held = [i for f in range(plan.k) for i in plan.held_out(f)]
    assert sorted(held) == sorted(pool) and len(held) == len(set(held)) == 32  # each exactly once
    assert not set(held) & set(prep.split_ids("test"))
    assert {len(plan.held_out(f)) for f in range(3)} <= {10, 11}
    for f in range(3):
        assert set(plan.train_ids(f)) == pool - set(plan.held_out(f))
    assert plan == plan_folds(tiny_prepared, 3, seed=0) and plan != plan_folds(tiny_prepared, 3, seed=1)
    assert sorted(pool_ids(tiny_prepared)) == sorted(pool)
    with pytest.raises(ConfigError, match="K >= 2"):
        plan_folds(tiny_prepared, 1, seed=0)


class Memoriser(torch.nn.Module):
    """Knows the label map of every image it was trained on, and nothing else (background)."""

    def __init__(self, dataset: FaceParsingDataset):
        super().__init__()
        self.seen = {self.key(x): m for x, m in dataset}

    @staticmethod
    def key(x: torch.Tensor) -> bytes:
        return x.numpy().round(3).tobytes()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(x.shape[0], NUM_CLASSES, *x.shape[-2:])
        out[:, 0] = 1.0
        for i, image in enumerate(x):
            labels = self.seen.get(self.key(image))
            if labels is not None:
                out[i] = 20 * torch.nn.functional.one_hot(labels, NUM_CLASSES).permute(2, 0, 1).float()
        return out


def test_an_images_oof_prediction_comes_from_the_model_that_never_trained_on_it(tiny_prepared, tmp_path):
    cfg = tiny_cfg(tiny_prepared, tmp_path)
    plan = plan_folds(tiny_prepared, 3, seed=0)
    tf = build_val_transform(cfg.data)
    files, in_sample = [], []
    for f in range(plan.k):
        model = Memoriser(FaceParsingDataset(tiny_prepared, "fold", tf, ids=plan.train_ids(f)))
        write_oof(tmp_path / f"f{f}.npz", plan.held_out(f), predict_probs(model, cfg, plan.held_out(f), 64))
        files.append(tmp_path / f"f{f}.npz")
        in_sample.append(predict_probs(model, cfg, plan.train_ids(f), 64))
        assert read_oof(files[-1])[0] == plan.held_out(f)
    ids = sorted(pool_ids(tiny_prepared))
    oof = gather_oof(files, ids)
    assert oof.shape == (32, NUM_CLASSES, 64, 64) and oof.dtype == np.float16
    # each memoriser is perfect on what it trained on, and knows nothing out of fold
    assert held_out_f1(in_sample[0].astype(np.float32), tiny_prepared, plan.train_ids(0)) == pytest.approx(
        1.0
    )
    assert held_out_f1(oof.astype(np.float32), tiny_prepared, ids) < 0.2
    with pytest.raises(Exception, match="held out by two"):
        gather_oof([files[0], files[0]], ids)


@pytest.fixture(scope="module")
def candidates(tiny_prepared, tmp_path_factory) -> Path:
    """A search-like candidate library: Unet (best), FPN, and Unet again with the same config."""
    root = tmp_path_factory.mktemp("library")
    trials = []
    for i, (arch, lr) in enumerate([("Unet", 3e-3), ("FPN", 3e-3)]):
        result = train(tiny_cfg(tiny_prepared, root / "ray", arch, lr), root / f"w{i}")
        ckpt = Path(result["checkpoint"])
        trials.append(TrialSummary(f"t{i}", {}, "completed", "val_f1", best_score=0.5, best_checkpoint=ckpt))
    export_members(trials + trials[:1], root / "models")  # the third repeats the first's config
    (root / "ray").mkdir(exist_ok=True)
    return root / "models" / "manifest.json"


def test_bags_are_the_best_distinct_configs_and_respect_max_per_arch(candidates):
    manifest = read_manifest(candidates)
    f1 = {m.name: m.val_f1 for m in manifest.members}
    bags = choose_bags(manifest, top=3)
    # m2 repeats m0's config: one bag for both; best val_f1 first
    assert sorted(b.source for b in bags) == ["m0-Unet-resnet18", "m1-FPN-resnet18"]
    assert [b.source_val_f1 for b in bags] == sorted(
        (f1["m0-Unet-resnet18"], f1["m1-FPN-resnet18"]), reverse=True
    )
    assert [b.name[:3] for b in bags] == ["b0-", "b1-"]
    assert len(choose_bags(manifest, top=1)) == 1
    capped = read_manifest(candidates).model_copy(
        update={"members": manifest.members[::2]}
    )  # m0, m2: Unet twice
    assert len(choose_bags(capped, top=3, max_per_arch=1)) == 1


@pytest.mark.slow  # starts Ray twice
def test_interrupted_refit_resumes_without_retraining_finished_folds(candidates, tiny_prepared, tmp_path):
    out, storage = tmp_path / "bags", tmp_path / "ray"
    cmd = [sys.executable, "-m", "tuning", "refit", "--from", str(candidates), "--data", str(tiny_prepared)]
    cmd += [
        "--top",
        "2",
        "--folds",
        "2",
        "--max-epochs",
        "2",
        "--max-concurrent",
        "1",
        "--oof-resolution",
        "32",
    ]
    cmd += ["--out", str(out), "--storage", str(storage), "--name", "r"]
    before = interrupt_after(cmd, lambda: sorted(p.parent for p in storage.glob("r/*/result.json")), 2, 300)
    assert not (out / "manifest.json").exists()
    assert subprocess.run(cmd + ["--resume"], cwd=REPO, timeout=600).returncode == 0
    for d, lines in before.items():
        assert result_lines(d) == lines  # finished folds were not trained again
    dirs = sorted(p.parent for p in storage.glob("r/*/result.json"))
    assert len(dirs) == 4 and all([r["epoch"] for r in result_lines(d)][-1] == 2 for d in dirs)

    manifest = read_manifest(out)
    plan = plan_folds(tiny_prepared, 2, seed=0)
    assert sorted(b.name[3:] for b in manifest.bags) == ["FPN-resnet18", "Unet-resnet18"]
    for m in manifest.members:
        ids, probs = read_oof(out / m.oof)
        assert ids == plan.held_out(m.fold) and not set(ids) & set(plan.train_ids(m.fold))
        assert probs.shape == (len(ids), NUM_CLASSES, 32, 32) and m.epoch == 2
    for bag in manifest.bags:
        assert bag.score_split == "oof" and 0 <= bag.val_f1 <= 1 and len(bag.oof) == 2
    curves = pd.read_csv(out / "learning_curves.csv")
    assert len(curves) == 8 and set(curves["epoch"]) == {1, 2}


@pytest.mark.slow  # starts a two-node Ray cluster
def test_refit_trainings_spread_over_the_nodes_of_a_two_node_cluster(candidates, tiny_prepared, tmp_path):
    from ray.cluster_utils import Cluster

    from tuning.__main__ import main as tuning_main

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 1})
    cluster.add_node(num_cpus=1, num_gpus=1)
    try:
        argv = [
            "refit",
            "--from",
            str(candidates),
            "--data",
            str(tiny_prepared),
            "--top",
            "1",
            "--folds",
            "2",
        ]
        argv += ["--max-epochs", "1", "--out", str(tmp_path / "bags"), "--storage", str(tmp_path / "ray")]
        argv += ["--address", cluster.address, "--set", "resources.gpu=1"]
        assert tuning_main(argv) == 0
        trials = pd.read_csv(tmp_path / "bags" / "refit_trials.csv")
        assert len(trials) == 2 and trials["node"].nunique() == 2  # one fake GPU per node, one per training
    finally:
        ray.shutdown()
        cluster.shutdown()
