"""Distillation: the student learns the teacher through train(), and both teachers give the same targets."""

from __future__ import annotations

import json

import pytest
import torch

from configs import CLASS_ID, NUM_CLASSES, parse_config
from configs.schema import PostprocessConfig
from data_prep.layout import read_label_map
from data_prep.transforms import swap_left_right_labels
from ensemble.__main__ import main as ensemble_main
from ensemble.core.inference import Ensemble
from ensemble.core.inputs import ImageItem
from ensemble.core.members import load_manifest
from ensemble.core.recipe import Recipe, write_recipe
from ensemble.core.tta import build_views, resize_bilinear
from ensemble.distill.student import choose_teacher_mode
from ensemble.distill.teacher import CachedTeacher, OnTheFlyTeacher, cache_bytes
from tuning.losses import DistillationLoss
from tuning.soft_targets import SoftTargetDataset
from tuning.train import train

from ensemble_fixtures import make_face_dataset, make_image_folder, write_manifest


def _config(root, **train_kw):
    return parse_config(
        {
            "seed": 0,
            "data": {
                "datasets": [{"path": str(root)}],
                "image_size": 64,
                "num_workers": 0,
                "augment": {"affine": 0.0, "color": 0.0, "blur": 0.0, "noise": 0.0},
            },
            "model": {"arch": "FPN", "encoder": "mobilenet_v2", "encoder_weights": None},
            "train": {
                "epochs": 3,
                "batch_size": 4,
                "lr": 1e-2,
                "warmup_fraction": 0.0,
                "amp": "none",
                **train_kw,
            },
            "distill": {"temperature": 1.0, "kd_weight": 1.0, "ce_weight": 0.0},
        }
    )


def _samples(prep, split="train"):
    return [(prep.image_path(i), prep.mask_path(i)) for i in prep.split_ids(split)]


def _teacher(tmp_path, prep):
    manifest = write_manifest(tmp_path / "models", [{}, {}])
    recipe = Recipe(
        manifest="manifest.json",
        members={"m0": 2.0, "m1": 1.0},
        views=["identity", "hflip"],
        postprocess=PostprocessConfig(),
    )
    write_recipe(tmp_path / "models" / "recipe.json", recipe)
    teacher = Ensemble.from_recipe(tmp_path / "models" / "recipe.json")
    items = [ImageItem(i, prep.image_path(i)) for i in prep.split_ids("train")]
    return manifest, teacher, items


@pytest.fixture
def two_torch_threads():
    """40 steps from scratch land on different students for different float reduction orders (with
    one thread this run learns hair 0.6 / skin 0.3, with two the target): the thread count an
    earlier test left (tuning.loaders sets it) must not decide the outcome."""
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(saved)


def test_student_trained_on_a_constant_teacher_learns_that_constant(tmp_path, two_torch_threads):
    prep = make_face_dataset(tmp_path / "prep", {"train": 8, "val": 1}, size=32)
    constant = torch.zeros(NUM_CLASSES)
    constant[CLASS_ID["skin"]], constant[CLASS_ID["hair"]], constant[CLASS_ID["nose"]] = 0.6, 0.3, 0.1
    target = constant.view(-1, 1, 1).expand(-1, 8, 8).clone()
    # 32 px, 40 steps of 8 (the 8 faces repeated): enough for FPN/mobilenet_v2 to settle, ~15 s.
    cfg = _config(prep.root, epochs=8, batch_size=8, lr=1e-3).with_overrides({"data.image_size": 32})
    train_set = SoftTargetDataset(_samples(prep) * 5, lambda i: target, cfg.data, seed=0)
    loss = DistillationLoss(cfg.distill.temperature, cfg.distill.kd_weight, cfg.distill.ce_weight)
    result = train(cfg, tmp_path / "work", train_set=train_set, loss_fn=loss)

    student = load_manifest(_student_manifest(tmp_path, result["checkpoint"])).members[0].model
    images = torch.stack([train_set[i][0] for i in range(8)])
    # 40 steps leave BatchNorm's running averages (momentum 0.1) behind the weights; re-estimate
    # them on these images so eval mode shows what the weights learned, not the lag.
    with torch.no_grad():
        for m in student.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
                m.momentum = None  # a cumulative average over the passes below
        student.train()
        for _ in range(3):
            student(images)
    student.eval()
    with torch.inference_mode():
        probs = torch.softmax(student(images), 1)
    # The faces in the images are ignored: the teacher says the same everywhere, and so does the
    # student (labels would make it draw faces; ce_weight is 0).
    mean = probs.mean((0, 2, 3))
    assert torch.allclose(mean, constant, atol=0.1), mean
    # Pixel by pixel too: 40 steps do not erase every trace of the faces, but skin leads on most
    # pixels and the typical pixel is near the constant.
    assert (probs.argmax(1) == CLASS_ID["skin"]).float().mean() > 0.6
    assert (probs - constant.view(1, -1, 1, 1)).abs().sum(1).median() < 0.3
    assert probs[:, constant == 0].sum(1).mean() < 0.03
    assert mean[CLASS_ID["skin"]] > mean[CLASS_ID["hair"]] > mean[CLASS_ID["nose"]], mean


def _student_manifest(tmp_path, checkpoint):
    from ensemble.distill.student import write_student

    return write_student(checkpoint, tmp_path / "student").path


def test_cache_and_on_the_fly_teachers_give_the_same_targets(tmp_path):
    prep = make_face_dataset(tmp_path / "prep", {"train": 5, "val": 1}, size=64)
    _, teacher, items = _teacher(tmp_path, prep)
    cached = CachedTeacher(teacher, items, 32, batch_size=2, progress=False)
    on_the_fly = OnTheFlyTeacher(teacher, items, 32)
    for i in range(len(items)):
        a, b = cached(i), on_the_fly(i)
        assert a.shape == (NUM_CLASSES, 32, 32) and a.dtype == torch.float16
        torch.testing.assert_close(a.float(), b.float(), atol=2e-3, rtol=0)
    # Both are the recipe's weighted average over members and views (what run_ensemble.py averages).
    assert teacher.weights == pytest.approx({"m0": 2 / 3, "m1": 1 / 3})
    by_hand = Ensemble(teacher.members, {"m0": 2.0, "m1": 1.0}, build_views("flip"))
    pred = next(by_hand.stream(items[:1], progress=False))
    torch.testing.assert_close(
        cached(0).float(), resize_bilinear(pred.probs[None], (32, 32))[0], atol=2e-3, rtol=0
    )
    assert not torch.allclose(cached(0).float(), cached(1).float(), atol=1e-2)  # targets differ per image
    # ... and the training set built on either yields the same (augmented) targets.
    cfg = _config(prep.root)
    a = SoftTargetDataset(_samples(prep), cached, cfg.data, seed=3)
    b = SoftTargetDataset(_samples(prep), on_the_fly, cfg.data, seed=3)
    for i in range(len(items)):
        torch.testing.assert_close(a[i][1][1].float(), b[i][1][1].float(), atol=2e-3, rtol=0)


def test_augmentation_moves_teacher_probabilities_with_the_labels(tmp_path):
    """Flip (with L/R channel swap) and affine keep the teacher aligned with the mask."""
    prep = make_face_dataset(tmp_path / "prep", {"train": 4, "val": 1}, size=64)
    samples = _samples(prep)

    def one_hot_teacher(i):
        labels = torch.from_numpy(read_label_map(samples[i][1])).long()
        return torch.nn.functional.one_hot(labels, NUM_CLASSES).permute(2, 0, 1).half()

    for affine in (0.0, 1.0):
        cfg = _config(prep.root).with_overrides({"data.augment.hflip": 1.0, "data.augment.affine": affine})
        data = SoftTargetDataset(samples, one_hot_teacher, cfg.data, seed=0)
        for i in range(len(samples)):
            _, (mask, soft) = data[i]
            if affine == 0.0:  # every sample flipped: mirrored, left/right labels swapped
                original = read_label_map(samples[i][1])
                assert (mask.numpy() == swap_left_right_labels(original[:, ::-1])).all()
            valid = soft.float().sum(0) > 0.5
            assert valid.float().mean() > 0.5
            agree = soft.float().argmax(0) == mask
            assert agree[valid].float().mean() > 0.99
            # Without the channel swap the teacher would call the flipped l_eye r_eye.
            paired = valid & torch.isin(
                mask, torch.tensor([CLASS_ID[n] for n in ("l_eye", "r_eye", "l_brow", "r_brow")])
            )
            assert paired.sum() > 10 and agree[paired].float().mean() > 0.95


def test_cache_memory_formula_picks_the_mode():
    assert cache_bytes(30000, 128) == 30000 * 19 * 128 * 128 * 2
    assert choose_teacher_mode("auto", 100, 128, cache_gb=1.0) == "cache"
    assert choose_teacher_mode("auto", 30000, 128, cache_gb=8.0) == "on-the-fly"
    assert choose_teacher_mode("cache", 30000, 128, cache_gb=8.0) == "cache"


def test_distill_command_writes_a_one_member_manifest_and_report(tmp_path, capsys):
    prep = make_face_dataset(tmp_path / "prep", {"train": 6, "val": 2, "test": 2}, size=64)
    _teacher(tmp_path, prep)
    make_image_folder(tmp_path / "wild", [(80, 80), (64, 96)], stems=["a", "b"], seed=5)
    (tmp_path / "wild" / "notes.txt").write_text("not an image")
    (tmp_path / "cfg.yaml").write_text(
        "data: {image_size: 64, num_workers: 0}\n"
        "train: {epochs: 1, batch_size: 3, amp: none}\n"
        "distill: {arch: Unet, encoder: resnet18, resolution: 32}\n"
    )
    out = tmp_path / "student"
    rc = ensemble_main(
        [
            "distill",
            "--recipe",
            str(tmp_path / "models" / "recipe.json"),
            "--data",
            str(prep.root),
            "--out",
            str(out),
            "--config",
            str(tmp_path / "cfg.yaml"),
            "--work",
            str(tmp_path / "work"),
            "--device",
            "cpu",
            "--unlabeled",
            str(tmp_path / "wild"),
            "--quiet",
        ]
    )
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "8 samples" in captured.out and ": cache" in captured.out  # 6 labelled + 2 unlabelled
    manifest = load_manifest(out / "manifest.json")
    assert [(m.arch, m.encoder, m.image_size) for m in manifest.members] == [("Unet", "resnet18", 64)]
    report = json.loads((out / "distill_report.json").read_text())
    assert report["images"] == 2 and report["forwards_per_image"]["teacher (recipe)"] == 4
    assert set(report["scores"]) == {"teacher (recipe)", "student", "member:m0", "member:m1"}
    assert report["size"]["student"]["weights_bytes"] == (out / "m0.safetensors").stat().st_size
    assert "| l_eye |" in (out / "distill_report.md").read_text()
    assert "best member alone: member:m" in (out / "distill_report.html").read_text()
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["config"]["distill"]["arch"] == "Unet" and provenance["config"]["train"]["epochs"] == 1
    # The student is an ordinary manifest: the ensemble runs it.
    pred = next(Ensemble(manifest.members).stream([ImageItem("0", prep.image_path("0"))], progress=False))
    assert pred.probs.shape == (NUM_CLASSES, 64, 64)
