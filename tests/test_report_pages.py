"""The report pages beside search, fit, prepare, distill and predict outputs: what each shows."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pandas as pd
import pytest
from browser import BROKEN_IMAGES_JS, Browser

from configs import CLASSES
from data_prep.layout import PreparedDataset
from data_prep.prepare_html import augmentation_previews, write_prepare_html
from ensemble.distill.distill_html import write_distill_html
from ensemble.fit.fit_html import decision_deltas, write_fit_html
from ensemble.submission.pictures import overlay
from tuning.library_export import TrialSummary
from tuning.search import trial_name
from tuning.search_html import write_search_html


def inline_images(page: str) -> list[np.ndarray]:
    """Every data-URI image (PNG or JPEG) of a page, decoded."""
    found = re.findall(r'src="data:image/(?:png|jpeg);base64,([^"]+)"', page)
    return [cv2.imdecode(np.frombuffer(base64.b64decode(b), np.uint8), cv2.IMREAD_COLOR) for b in found]


def assert_charts_drawn(page: str, count: int) -> None:
    images = inline_images(page)
    assert len(images) == count
    assert all(im is not None and im.std() > 5 for im in images)


def trial(i: int, arch: str, scores: list[float], status: str) -> TrialSummary:
    epochs = [
        {"epoch": e + 1, "val_f1": s, "val_loss": 1.5 - s, "train_loss": 1.6 - s}
        for e, s in enumerate(scores)
    ]
    return TrialSummary(
        trial_id=f"abc12_{i:05d}",
        config={"model.arch": arch, "model.encoder": "resnet18", "train.lr": 1e-3 * (i + 1)},
        status=status,
        metric="val_f1",
        epochs=epochs,
        best_score=max(scores),
        wall_s=10.0,
    )


@pytest.fixture(scope="module")
def search_page(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("search")
    trials = [
        trial(0, "Unet", [0.30, 0.45, 0.50, 0.55], "completed"),
        trial(1, "FPN", [0.20, 0.25], "stopped early"),
        trial(2, "FPN", [0.35, 0.50, 0.60, 0.62], "completed"),
    ]
    per_class = pd.DataFrame(
        [
            {"trial_id": t.trial_id, "arch": t.arch, "encoder": t.encoder, "epoch": 2}
            | {c: 0.5 for c in CLASSES}
            for t in trials
        ]
    )
    importance = {"importances": {"train.lr": 0.8, "arch": 0.2}, "completed_trials": 2, "note": ""}
    return write_search_html(out, trials, 4, per_class, importance)


def test_search_page_ranks_trials_and_draws_curves_heatmap_history_and_importances(search_page):
    page = search_page.read_text()
    board = page[page.index("Leaderboard") : page.index("Curves by epoch")]
    # best first: abc12_00002 (0.62), abc12_00000 (0.55), abc12_00001 (0.25, stopped)
    assert [board.index(f"abc12_0000{i}") for i in (2, 0, 1)] == sorted(
        board.index(f"abc12_0000{i}") for i in range(3)
    )
    assert "stopped early" in board and "lr=0.002" in board
    assert "3 trials: 2 completed, 1 stopped early" in page
    for section in ("Optimisation history", "Per-class F1 at each trial", "Parameter importance"):
        assert section in page
    assert_charts_drawn(page, 4)  # curves, history, heatmap, importances


def test_search_page_says_why_there_are_no_importances(tmp_path):
    page = write_search_html(tmp_path, [trial(0, "Unet", [0.3], "completed")], 1, None, None).read_text()
    assert "None: no stored Optuna study" in page
    assert_charts_drawn(page, 2)


def test_trial_names_carry_arch_and_encoder():
    fake = SimpleNamespace(
        config={"arch": "DeepLabV3Plus", "encoder_DeepLabV3Plus": "resnet18"}, trial_id="9a9a1_00003"
    )
    assert trial_name(fake) == "DeepLabV3Plus-resnet18-9a9a1_00003"
    assert trial_name(SimpleNamespace(config={}, trial_id="34ffa8d1")) == "trial-34ffa8d1"


RECIPE = {
    "data": {"dataset": "prep", "split": "val", "images": 6, "split_images": 6, "choose": 3, "confirm": 3},
    "members": {"m0": 0.667, "m1": 0.333},
    "views": ["identity", "hflip"],
    "scores": {
        "best_candidate": {"choose": 0.50, "confirm": 0.48, "all": 0.49},
        "ensemble": {"choose": 0.55, "confirm": 0.52, "all": 0.53},
    },
    "decisions": {
        "candidates": {
            "m0": {"choose": 0.5, "confirm": 0.48, "all": 0.49},
            "m1": {"choose": 0.4, "confirm": 0.41, "all": 0.4},
        },
        "selection": {
            "trace": [
                {"step": 1, "added": "m0", "choose": 0.50, "confirm": 0.48, "all": 0.49},
                {"step": 2, "added": "m1", "choose": 0.53, "confirm": 0.50, "all": 0.51},
                {"step": 3, "added": "m0", "choose": 0.55, "confirm": 0.52, "all": 0.53},
                {"step": 4, "added": "m1", "choose": 0.551, "confirm": 0.50, "all": 0.52},
            ],
            "counts": {"m0": 2, "m1": 1},
        },
        "views": [
            {
                "stage": "views",
                "option": "hflip",
                "kept": True,
                "delta": {"choose": 0.01, "confirm": 0.02, "all": 0.015},
            }
        ],
        "postprocess": [
            {
                "stage": "gaussian",
                "option": "sigma=1",
                "kept": False,
                "delta": {"choose": 0.002, "confirm": -0.01, "all": -0.004},
            }
        ],
    },
}


def test_fit_page_charts_every_decisions_delta_on_both_halves(tmp_path):
    deltas = decision_deltas(RECIPE)
    assert [(label, kept) for label, kept, _ in deltas] == [
        ("select m1 (step 2)", True),
        ("select m0 (step 3)", True),
        ("select m1 (step 4)", False),
        ("views: hflip", True),
        ("gaussian: sigma=1", False),
    ]
    assert deltas[0][2]["confirm"] == pytest.approx(0.02) and deltas[4][2]["confirm"] == pytest.approx(-0.01)
    page = write_fit_html(tmp_path / "fit_report.html", RECIPE, tmp_path / "recipe.json", None).read_text()
    assert "Every decision" in page and "gaussian: sigma=1" in page and "-0.0100" in page
    assert_charts_drawn(page, 2)  # selection trace (inline here) and the deltas


def test_pages_render_without_broken_images(search_page, tmp_path, chromium):
    fit = write_fit_html(tmp_path / "fit_report.html", RECIPE, tmp_path / "recipe.json", None)
    with Browser(chromium) as browser:
        for page in (search_page, fit):
            browser.open(page)
            assert browser.evaluate(BROKEN_IMAGES_JS) == [], page
            assert browser.evaluate("document.querySelectorAll('img').length") >= 2
            shot = cv2.imdecode(np.frombuffer(browser.screenshot(), np.uint8), cv2.IMREAD_COLOR)
            assert shot.std() > 10, page


def test_prepare_page_shows_samples_class_frequencies_and_augmentations(make_prepared):
    prep = PreparedDataset(make_prepared("prep_page", n_train=14, n_val=2, n_test=2))
    page = write_prepare_html(prep, prep.meta()).read_text()
    assert "Contact sheet (12 samples" in page
    assert page.count("data-image=") == 12 + 3 * 4  # sheet + 3 samples x (original, occlusion, 2 zooms)
    images = inline_images(page)
    assert len(images) == 12 + 1 + 12 and all(im is not None for im in images)
    assert "absent classes:" in page


def test_augmentation_preview_changes_image_and_labels_together(make_prepared):
    prep = PreparedDataset(make_prepared("prep_aug", n_train=2, n_val=0, n_test=0))
    sample = prep.split_ids("train")[0]
    image = cv2.cvtColor(cv2.imread(str(prep.image_path(sample))), cv2.COLOR_BGR2RGB)
    labels = cv2.imread(str(prep.mask_path(sample)), cv2.IMREAD_UNCHANGED)
    views = dict(augmentation_previews(image, labels, seed=0))
    assert list(views) == ["original", "occlusion", "zoom out x0.6", "zoom in x1.3"]
    original = views["original"]
    for name in ("occlusion", "zoom out x0.6", "zoom in x1.3"):
        half = original.shape[1] // 2
        assert views[name].shape == original.shape
        # both halves changed: the image and its label map move together
        assert not np.array_equal(views[name][:, :half], original[:, :half]), name
        assert not np.array_equal(views[name][:, half:], original[:, half:]), name


def test_predict_overlay_marks_landmarks_and_the_crop_used():
    image = np.full((100, 120, 3), 90, np.uint8)
    labels = np.zeros((100, 120), np.uint8)
    corners = np.array([[20.0, 10.0], [100.0, 10.0], [100.0, 90.0], [20.0, 90.0]])
    drawn = overlay(image, labels, [(40, 30, 80, 70)], landmarks=[{"l_eye": (70.0, 45.0)}], crops=[corners])
    assert tuple(drawn[45, 70]) == (255, 230, 0)  # the landmark

    def cyan(y, x):
        r, g, b = drawn[y, x].tolist()
        return r < 60 and g > 200 and b > 200

    assert cyan(50, 20) and cyan(10, 60) and cyan(90, 60)  # the crop's edges (anti-aliased)
    assert tuple(drawn[30, 60]) == (255, 255, 255)  # the face box
    assert tuple(drawn[5, 5]) == (90, 90, 90)  # elsewhere the photo


def test_distill_page_compares_teacher_student_and_best_member(tmp_path):
    per_class = {c: 0.5 for c in CLASSES}
    scores = {
        name: {"f1": f1, "miou": f1 - 0.1, "per_class_f1": per_class}
        for name, f1 in (("teacher", 0.8), ("student", 0.75), ("member:m0", 0.7))
    }
    speed = {
        n: {"forward_ms_per_image": ms, "wall_ms_per_image": ms * 2}
        for n, ms in (("teacher", 40.0), ("student", 8.0))
    }
    report = {
        "images": 4,
        "device": "cpu",
        "note": "argmax before post-processing",
        "scores": scores,
        "best_member": "member:m0",
        "speed": speed,
        "forward_speedup": 5.0,
        "forwards_per_image": {"teacher": 4, "student": 1},
        "size": {n: {"parameters": 1000, "weights_bytes": 4_000_000} for n in ("teacher", "student")},
    }
    page = write_distill_html(report, tmp_path, ["Teacher: recipe.json"], "teacher", "student").read_text()
    assert "best member alone: member:m0" in page and "0.7500" in page and "5.0x" in page
    assert_charts_drawn(page, 1)
