"""Wild synthetic scenes: boxes match the labels, later faces occlude earlier ones, empty scenes, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest

from configs import CLASS_ID
from data_prep.__main__ import main as data_prep_main
from data_prep.framing import FACE_CORE
from data_prep.layout import PreparedDataset, read_label_map
from data_prep.synth import scenes as wild
from data_prep.synth.scenes import generate_wild, render_scene

INNER = np.isin(np.arange(256), FACE_CORE)


@pytest.mark.parametrize("seed", range(4))
def test_boxes_are_tight_around_the_visible_inner_face_pixels(seed):
    scene = render_scene(np.random.default_rng(seed), 128, num_faces=3)
    inner = INNER[scene.label]
    covered = np.zeros_like(inner)
    for x0, y0, x1, y1 in scene.boxes:
        assert 0 <= x0 < x1 <= 128 and 0 <= y0 < y1 <= 128
        box = inner[y0:y1, x0:x1]
        # tight: every edge row/column of the box holds a face pixel
        assert box[0].any() and box[-1].any() and box[:, 0].any() and box[:, -1].any()
        covered[y0:y1, x0:x1] = True
    assert not (inner & ~covered).any(), "every face pixel lies in some face's box"
    assert 1 <= len(scene.boxes) <= 3


def test_a_scene_without_faces_is_all_background():
    scene = render_scene(np.random.default_rng(0), 96, num_faces=0)
    assert (scene.label == 0).all() and scene.boxes == []
    assert scene.image.shape == (96, 96, 3) and scene.image.std() > 1  # a textured canvas, not blank


def test_later_faces_occlude_earlier_ones_in_labels_and_boxes(monkeypatch):
    # Flat stand-in faces: the first all skin, the second all nose, each filling its crop.
    calls = iter(["skin", "nose"])

    def flat_face(rng, side):
        return np.full((side, side, 3), 100, np.uint8), {next(calls): np.ones((side, side), np.uint8)}

    monkeypatch.setattr(wild, "render_face", flat_face)
    scene = render_scene(np.random.default_rng(5), 64, num_faces=2, face_scale=(0.6, 0.7))
    skin, nose = scene.label == CLASS_ID["skin"], scene.label == CLASS_ID["nose"]
    ys, xs = np.nonzero(nose)
    later = np.s_[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    assert nose[later].all(), "the later face is whole: nothing was painted over it"
    side_skin = skin.sum()
    assert 0 < side_skin < 38 * 38, "the faces overlap in this scene (else the test shows nothing)"
    sy, sx = np.nonzero(skin)
    assert scene.boxes == [
        [int(sx.min()), int(sy.min()), int(sx.max()) + 1, int(sy.max()) + 1],
        [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1],
    ]


def test_wild_generation_is_deterministic_per_seed(tmp_path):
    a = generate_wild(tmp_path / "a", 4, 64, seed=3, progress=False)
    b = generate_wild(tmp_path / "b", 4, 64, seed=3, progress=False)
    c = generate_wild(tmp_path / "c", 4, 64, seed=4, progress=False)

    def files(root):
        return {
            p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
        }

    assert files(a) == files(b)
    assert (
        files(a)["masks/0.png"] != files(c)["masks/0.png"]
        or files(a)["images/0.jpg"] != files(c)["images/0.jpg"]
    )


def test_cli_writes_a_prepared_dataset_with_boxes(tmp_path, capsys):
    out = tmp_path / "wild"
    argv = ["synth", "--wild", "--out", str(out), "--num", "5", "--size", "64", "--max-faces", "2"]
    assert data_prep_main(argv) == 0
    prep = PreparedDataset(out)
    meta = json.loads(prep.meta_path.read_text())
    assert meta["source"] == "synth-wild" and sum(meta["counts"].values()) == 5
    boxes = json.loads((out / "boxes.json").read_text())
    assert sorted(boxes, key=int) == [str(i) for i in range(5)]
    for stem, listed in boxes.items():
        label = read_label_map(prep.mask_path(stem))
        assert len(listed) <= 2 and (len(listed) == 0) == (not INNER[label].any())
    assert "wild scenes" in capsys.readouterr().out


def test_clothes_continue_to_the_bottom_of_the_canvas(monkeypatch):
    def bust(rng, side):
        masks = {"skin": np.zeros((side, side), np.uint8), "cloth": np.zeros((side, side), np.uint8)}
        masks["skin"][: side // 2, side // 4 : 3 * side // 4] = 1
        masks["cloth"][side // 2 :] = 1
        return np.full((side, side, 3), 90, np.uint8), masks

    monkeypatch.setattr(wild, "render_face", bust)  # crops of 32 px (the smallest): 16 rows of clothes
    longest = 0
    for seed in range(6):
        scene = render_scene(np.random.default_rng(seed), 96, num_faces=1, face_scale=(0.3, 0.3))
        cloth = scene.label == CLASS_ID["cloth"]
        cols = np.flatnonzero(cloth.any(0))
        assert cols.size and cloth[-1, cols].all(), (
            "the clothes reach the bottom row in every column they cover"
        )
        assert set(np.unique(scene.label)) <= {0, CLASS_ID["skin"], CLASS_ID["cloth"]}
        longest = max(longest, int(cloth[:, cols[0]].sum()))
    assert longest > 16, "some crop ended above the bottom and its clothes were continued"
