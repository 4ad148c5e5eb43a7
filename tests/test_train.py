"""The Ray-free training function: it learns, checkpoints, and resumes on the same LR curve."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from configs import CLASSES, IGNORE_INDEX
from configs.schema import TrainConfig, parse_config
from data_prep.dataset import FaceParsingDataset
from data_prep.layout import PreparedDataset, read_label_map
from data_prep.transforms import build_val_transform
from tuning.checkpoint import load_checkpoint, load_model_weights
from tuning.loaders import loader_workers
from tuning.losses import build_loss
from tuning.metrics import confusion_matrix, scores_from_confusion
from tuning.models import build_model
from tuning.schedule import build_scheduler, lr_at
from tuning.train import evaluate, train, train_step

METRIC_KEYS = {
    "epoch",
    "train_loss",
    "val_loss",
    "val_f1",
    "val_f1_with_bg",
    "val_miou",
    "val_pixel_acc",
    "lr",
    "epoch_seconds",
    "val_per_class_f1",
    *(f"val_f1_{name}" for name in CLASSES),  # flat copies: Ray's TensorBoard logger plots each
    "micro_batch",  # train batch split (tuning.oom): the batch and 1 unless a step ran out of memory
    "accum_steps",
    "oom_retries",
    "first_step_s",
    "first_epoch_s",
    "epoch_s",
}


def make_config(root, **train):
    return parse_config(
        {
            "seed": 0,
            "data": {
                "datasets": [{"path": str(root)}],
                "image_size": 64,
                "num_workers": 0,
                # No affine: fewer steps to learn the drawn faces; flips stay on (L/R swap).
                "augment": {"affine": 0.0},
            },
            "model": {"arch": "Unet", "encoder": "resnet18", "encoder_weights": None},
            "train": {
                "epochs": 8,
                "batch_size": 2,
                "lr": 5e-3,
                "warmup_fraction": 0.1,
                "amp": "none",
                **train,
            },
        }
    )


@pytest.fixture(scope="module")
def trained(tiny_prepared, tmp_path_factory):
    """One 8-epoch run (~100 steps, 15-40 s on 2 CPU cores) shared by the tests below."""
    cfg = make_config(tiny_prepared)
    work = tmp_path_factory.mktemp("train_run")
    calls = []

    def on_epoch(metrics, ckpt_dir):
        calls.append((metrics, ckpt_dir, sorted(p.name for p in ckpt_dir.iterdir())))

    result = train(cfg, work, on_epoch=on_epoch)
    return cfg, work, result, calls


def prior_baseline_f1(root) -> float:
    """Mean face-class F1 of predicting, at each pixel, the class most frequent there in train."""
    prep = PreparedDataset(root)
    train = np.stack([read_label_map(prep.mask_path(i)) for i in prep.split_ids("train")])
    val = np.stack([read_label_map(prep.mask_path(i)) for i in prep.split_ids("val")])
    prior = np.stack([(train == c).sum(0) for c in range(len(CLASSES))]).argmax(0)
    pred = torch.from_numpy(np.broadcast_to(prior, val.shape).copy())
    return scores_from_confusion(confusion_matrix(pred, torch.from_numpy(val)).numpy())["f1"]


def test_training_beats_the_per_pixel_prior_clearly(trained, tiny_prepared):
    _, _, result, _ = trained
    baseline = prior_baseline_f1(tiny_prepared)  # ~0.23; all-background scores 0
    assert 0.1 < baseline < 0.4
    assert result["val_f1"] > baseline + 0.2, (result["val_f1"], baseline)
    per_class = result["val_per_class_f1"]
    # Left and right parts are told apart: ~0.65 here, ~0.25 when the flip does not swap labels.
    paired = np.mean([per_class[n] for n in ("l_eye", "r_eye", "l_ear", "r_ear")])
    assert paired > 0.45, per_class
    assert per_class["hat"] is None  # absent from the data: no score, not a zero


def test_metrics_have_exactly_the_agreed_keys_every_epoch(trained):
    cfg, work, result, calls = trained
    assert [m["epoch"] for m, _, _ in calls] == list(range(1, 9))
    for metrics, ckpt_dir, files in calls:
        assert set(metrics) == METRIC_KEYS
        assert isinstance(metrics["epoch"], int)
        assert set(metrics["val_per_class_f1"]) == set(CLASSES)
        assert all(metrics[f"val_f1_{n}"] == v for n, v in metrics["val_per_class_f1"].items())
        assert (metrics["micro_batch"], metrics["accum_steps"], metrics["oom_retries"]) == (2, 1, 0)
        assert ckpt_dir == work / "checkpoints" / f"epoch_{metrics['epoch']:03d}"
        assert files == ["meta.json", "model.safetensors", "train_state.pt"]
    assert set(result) == METRIC_KEYS | {"best_val_f1", "checkpoint"}
    assert calls[-1][0]["train_loss"] < calls[0][0]["train_loss"] / 2


def test_warmup_is_reported_every_epoch(trained):
    _, _, result, calls = trained
    seconds = [m["epoch_seconds"] for m, _, _ in calls]
    first_step = calls[0][0]["first_step_s"]
    assert 0 < first_step < seconds[0] + 60  # the first step comes after building data and model
    assert all(m["first_step_s"] == first_step and m["first_epoch_s"] == seconds[0] for m, _, _ in calls)
    assert np.isnan(calls[0][0]["epoch_s"])  # no steady epoch yet
    assert [m["epoch_s"] for m, _, _ in calls[1:]] == [np.median(seconds[1:i]) for i in range(2, 9)]
    assert result["epoch_s"] == np.median(seconds[1:])


def test_lr_follows_the_schedule_over_all_steps(trained):
    cfg, _, result, calls = trained
    steps_per_epoch, total = 12, 8 * 12  # 24 train images, batch 2
    for metrics, _, _ in calls:  # metrics["lr"] is the lr of the epoch's last step
        step = metrics["epoch"] * steps_per_epoch - 1
        assert metrics["lr"] == pytest.approx(lr_at(step, total, cfg.train))
    assert result["lr"] == pytest.approx(cfg.train.lr * cfg.train.min_lr_ratio)


def test_only_newest_and_best_checkpoints_are_kept(trained):
    _, work, result, calls = trained
    best_epoch = max(calls, key=lambda c: c[0]["val_f1"])[0]["epoch"]
    kept = sorted(p.name for p in (work / "checkpoints").iterdir())
    assert kept == sorted({f"epoch_{best_epoch:03d}", "epoch_008"})
    assert result["checkpoint"] == str(work / "checkpoints" / f"epoch_{best_epoch:03d}")
    assert result["best_val_f1"] == max(m["val_f1"] for m, _, _ in calls)


def test_checkpoint_weights_reproduce_val_f1_in_a_fresh_model(trained, tiny_prepared):
    cfg, _, result, _ = trained
    best = Path(result["checkpoint"])
    meta = json.loads((best / "meta.json").read_text())
    model = load_model_weights(build_model(meta["arch"], meta["encoder"]), best / "model.safetensors")
    val = FaceParsingDataset(tiny_prepared, "val", build_val_transform(cfg.data))
    scores = evaluate(model, DataLoader(val, batch_size=4), "cpu")
    assert scores["f1"] == pytest.approx(meta["val_f1"], abs=1e-6)
    assert scores["f1"] == pytest.approx(result["best_val_f1"], abs=1e-6)


def test_checkpoint_meta_and_state_load_safely(trained):
    cfg, _, result, _ = trained
    best = Path(result["checkpoint"])
    meta = json.loads((best / "meta.json").read_text())
    assert (meta["arch"], meta["encoder"], meta["image_size"]) == ("Unet", "resnet18", 64)
    assert meta["classes"] == list(CLASSES) and meta["num_classes"] == 19
    assert meta["mean"] == list(cfg.data.mean) and meta["std"] == list(cfg.data.std)
    assert parse_config(meta["config"]) == cfg  # the full config round-trips
    state = torch.load(best / "train_state.pt", weights_only=True)
    assert state["epoch"] == meta["epoch"] and state["global_step"] == meta["epoch"] * 12
    assert set(state) >= {"optimizer", "scheduler", "scaler", "epoch", "global_step", "best_val_f1"}
    model = build_model("Unet", "resnet18")
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr)
    restored = load_checkpoint(best, model, optimizer)
    assert restored["epoch"] == meta["epoch"]
    assert len(optimizer.state) == len(list(model.parameters()))  # Adam moments came back


class Killed(RuntimeError):
    pass


def test_killed_run_resumes_at_next_epoch_on_the_same_curve(tiny_prepared, tmp_path):
    # Short run: 4 epochs x 2 steps; class weights on to cover that path too.
    cfg = make_config(tiny_prepared, epochs=4, max_train_batches=2, class_weights=True)
    full = []
    train(cfg, tmp_path / "full", on_epoch=lambda m, d: full.append(m))

    def kill_after_epoch_2(metrics, ckpt_dir):
        if metrics["epoch"] == 2:
            raise Killed

    with pytest.raises(Killed):
        train(cfg, tmp_path / "killed", on_epoch=kill_after_epoch_2)

    resumed = []
    result = train(
        cfg,
        tmp_path / "killed",
        resume_from=tmp_path / "killed" / "checkpoints" / "epoch_002",
        on_epoch=lambda m, d: resumed.append(m),
    )
    assert [m["epoch"] for m in resumed] == [3, 4]
    assert [m["lr"] for m in resumed] == pytest.approx([m["lr"] for m in full[2:]], rel=1e-9)
    assert resumed[-1]["lr"] == pytest.approx(cfg.train.lr * cfg.train.min_lr_ratio)
    # Same batches, same augmentations, same optimizer state: the same model comes out.
    assert resumed[-1]["train_loss"] == pytest.approx(full[-1]["train_loss"], rel=1e-4)
    a = load_model_weights(
        build_model("Unet", "resnet18"), tmp_path / "full/checkpoints/epoch_004/model.safetensors"
    )
    b = load_model_weights(
        build_model("Unet", "resnet18"), tmp_path / "killed/checkpoints/epoch_004/model.safetensors"
    )
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5, msg=name)
    state = torch.load(tmp_path / "killed/checkpoints/epoch_004/train_state.pt", weights_only=True)
    assert state["global_step"] == 8
    assert result["epoch"] == 4


def test_data_loader_workers_seed_and_run(tiny_prepared, tmp_path):
    cfg = make_config(tiny_prepared, epochs=1, max_train_batches=2).with_overrides({"data.num_workers": 1})
    result = train(cfg, tmp_path)
    assert result["epoch"] == 1 and np.isfinite(result["train_loss"])


def test_train_step_clips_gradients_and_steps_the_schedule():
    torch.manual_seed(0)
    model = torch.nn.Conv2d(3, len(CLASSES), 1)
    cfg = TrainConfig(lr=0.1, warmup_fraction=0.5, grad_clip=1e-3)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    scheduler = build_scheduler(optimizer, 4, cfg)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    images, masks = torch.randn(2, 3, 8, 8) * 10, torch.randint(0, len(CLASSES), (2, 8, 8))
    before = [p.detach().clone() for p in model.parameters()]
    loss, lr = train_step(
        model, images, masks, build_loss(cfg), optimizer, scheduler, scaler, grad_clip=cfg.grad_clip
    )
    assert loss.requires_grad is False and float(loss) > 0
    assert lr == pytest.approx(lr_at(0, 4, cfg))  # the lr this step used; the next one is set
    assert optimizer.param_groups[0]["lr"] == pytest.approx(lr_at(1, 4, cfg))
    grad_norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
    assert grad_norm == pytest.approx(cfg.grad_clip, rel=1e-4)  # unclipped it is far larger
    # Plain SGD: the parameters moved by exactly lr * the clipped gradient.
    for p, b in zip(model.parameters(), before):
        torch.testing.assert_close(p.detach(), b - lr * p.grad)


def test_loader_workers_come_from_config_or_cpus():
    assert loader_workers(3, cpus=8) == 3
    assert loader_workers(None, cpus=4) == 3
    assert loader_workers(None, cpus=1) == 0
    assert loader_workers(None, cpus=64) == 8


def test_loss_ignores_pixels_labelled_255_and_weights_its_terms():
    torch.manual_seed(0)
    logits = torch.randn(2, len(CLASSES), 8, 8)
    target = torch.randint(0, len(CLASSES), (2, 8, 8))
    target[:, :3] = IGNORE_INDEX
    loss = build_loss(TrainConfig(ce_weight=1.0, dice_weight=1.0))
    changed = logits.clone()
    changed[:, :, :3] = torch.randn(2, len(CLASSES), 3, 8) * 10  # only at ignored pixels
    assert loss(changed, target) == pytest.approx(float(loss(logits, target)))

    ce_only = build_loss(TrainConfig(ce_weight=2.0, dice_weight=0.0))
    expected = 2 * torch.nn.functional.cross_entropy(logits, target, ignore_index=IGNORE_INDEX)
    assert ce_only(logits, target) == pytest.approx(float(expected))
    weights = torch.ones(len(CLASSES))
    weights[1] = 5.0
    weighted = build_loss(TrainConfig(ce_weight=1.0, dice_weight=0.0), class_weights=weights)
    assert float(weighted(logits, target)) != pytest.approx(float(expected) / 2)

    perfect = torch.nn.functional.one_hot(target.clamp(max=len(CLASSES) - 1), len(CLASSES))
    perfect = perfect.permute(0, 3, 1, 2).float() * 50
    assert float(loss(perfect, target)) < 1e-3
