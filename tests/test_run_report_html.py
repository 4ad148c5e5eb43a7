"""The run's report.html: every scored image in the gallery, worst first, checked in a real browser."""

from __future__ import annotations

import math
import re
import shutil
from html.parser import HTMLParser

import cv2
import numpy as np
import pytest
from browser import BROKEN_IMAGES_JS, GALLERY_JS, Browser

from data_prep.layout import read_label_map
from run_ensemble import main
from tuning.metrics import image_confusion, scores_from_confusion

from ensemble_fixtures import make_image_folder, write_manifest

SIZES = [(64, 64), (72, 56), (48, 64), (64, 80), (56, 56), (64, 48)]


@pytest.fixture(scope="module")
def run_out(tmp_path_factory):
    root = tmp_path_factory.mktemp("html_run")
    manifest = write_manifest(root / "models", [{}, {"arch": "Unet"}])
    images, gt = root / "images", root / "gt"
    make_image_folder(images, SIZES, stems=[f"face{i}" for i in range(len(SIZES))], masks=gt)
    out = root / "out"
    args = ["--manifest", str(manifest), "--images", str(images), "--gt", str(gt), "--out", str(out)]
    assert main([*args, "--tta", "flip", "--workers", "0", "--quiet", "--device", "cpu"]) == 0
    return out, gt


class _Entries(HTMLParser):
    def __init__(self):
        super().__init__()
        self.entries: list[dict[str, str]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "figure" and "data-f1" in attrs:
            self.entries.append(attrs)


def gallery(out) -> list[dict[str, str]]:
    parser = _Entries()
    parser.feed((out / "report.html").read_text())
    return parser.entries


def test_gallery_holds_every_image_worst_first_with_its_own_f1(run_out):
    out, gt = run_out
    entries = gallery(out)
    assert sorted(e["data-image"] for e in entries) == sorted(f"face{i}.png" for i in range(len(SIZES)))
    for e in entries:  # the F1 shown is the image's own, from the mask the run wrote
        stem = e["data-image"].removesuffix(".png")
        cm = image_confusion(
            read_label_map(out / "masks" / f"{stem}.png"), read_label_map(gt / f"{stem}.png")
        )
        assert float(e["data-f1"]) == pytest.approx(scores_from_confusion(cm)["f1"], abs=1e-6)
    f1s = [float(e["data-f1"]) for e in entries]
    assert f1s == sorted(f1s) and len(set(f1s)) > 1
    page = (out / "report.html").read_text()
    for section in ("Stages", "Per-class F1", "Confusion matrix", "worst first"):
        assert section in page
    assert "member:m1" in page and "+tta(hflip)" in page


def test_gallery_panels_show_image_prediction_truth_and_errors(run_out):
    out, _ = run_out
    worst = gallery(out)[0]
    panel = cv2.imread(str(out / "gallery" / f"{worst['data-image'].removesuffix('.png')}.png"))
    assert panel is not None and panel.shape[0] >= 160
    # four tiles side by side: the panel is wider than three tiles of the 160 px height
    assert panel.shape[1] > 3 * 160
    red = (panel[..., 2] > 200) & (panel[..., 1] < 30) & (panel[..., 0] < 30)
    assert red.any()  # the error map marks wrong pixels in red


def test_report_renders_in_a_real_browser_with_no_broken_image_and_gallery_ascending(run_out, chromium):
    out, _ = run_out
    with Browser(chromium) as browser:
        browser.open(out / "report.html")
        shot = cv2.imdecode(np.frombuffer(browser.screenshot(), np.uint8), cv2.IMREAD_COLOR)
        broken = browser.evaluate(BROKEN_IMAGES_JS)
        shown = browser.evaluate(GALLERY_JS)
        title = browser.evaluate("document.title")
    assert shot is not None and shot.shape[:2] == (900, 1280)
    assert shot.std() > 10  # not a blank page: text, tables and a chart are drawn
    assert broken == []
    assert len(shown) == len(SIZES)
    f1s = [float(f1) for _, f1, _ in shown]
    assert f1s == sorted(f1s) and not any(math.isnan(v) for v in f1s)
    tops = [top for _, _, top in shown]
    assert tops == sorted(tops)  # laid out in that order on the page too
    assert title == "Ensemble run report"


def test_the_browser_check_catches_a_missing_panel(run_out, chromium, tmp_path):
    out, _ = run_out
    copy = shutil.copytree(out, tmp_path / "copy")
    victim = sorted((copy / "gallery").iterdir())[0]
    victim.unlink()
    with Browser(chromium) as browser:
        browser.open(copy / "report.html")
        broken = browser.evaluate(BROKEN_IMAGES_JS)
    assert [re.sub(r"^gallery/", "", b) for b in broken] == [victim.name]
