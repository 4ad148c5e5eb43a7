"""`python -m data_prep celebamask`: the summary it prints and its one-line errors on a bad root."""

from __future__ import annotations

import pytest
from raw_celebamask import make_raw, simple_parts

import data_prep.__main__ as data_prep_cli
from configs import CLASS_ID, DEFAULT_PAINT_ORDER
from data_prep.layout import PreparedDataset, read_label_map


@pytest.fixture
def cli_main(monkeypatch):
    """The real `python -m data_prep` entry, registering only this subcommand (no other module needed)."""
    monkeypatch.setattr(data_prep_cli, "COMMANDS", {"celebamask": data_prep_cli.COMMANDS["celebamask"]})
    return data_prep_cli.main


def test_cli_prepares_a_dataset_and_prints_a_summary(tmp_path, capsys, cli_main):
    raw = make_raw(tmp_path / "raw", {i: simple_parts(i) for i in range(10)})
    rc = cli_main(
        [
            "celebamask",
            "--root",
            str(raw),
            "--out",
            str(tmp_path / "prep"),
            "--size",
            "16",
            "--workers",
            "2",
            "--seed",
            "1",
            "--paint-order",
            ",".join(reversed(DEFAULT_PAINT_ORDER)),
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "train 8, val 1, test 1" in out and str(tmp_path / "prep") in out
    meta = PreparedDataset(tmp_path / "prep").meta()
    assert meta["source"] == "celebamask-hq" and meta["size"] == 16
    assert meta["root"] == str(raw.resolve()) and meta["paint_order"][0] == "hat"
    label = read_label_map(tmp_path / "prep" / "masks" / "1.png")
    assert label[8, 8] == CLASS_ID["skin"]  # reversed order: skin painted last, over the nose
    assert "Contact sheet (10 samples" in (tmp_path / "prep" / "report.html").read_text()


@pytest.mark.parametrize(
    "broken, message",
    [
        ("no_root", "raw dataset root not found"),
        ("no_images_dir", "CelebA-HQ-img: image folder not found"),
        ("no_images", "no images named"),
        ("no_anno_dir", "CelebAMask-HQ-mask-anno: mask folder not found"),
        ("no_anno_folders", "none of the mask folders"),
    ],
)
def test_cli_gives_a_one_line_error_on_a_bad_root(tmp_path, capsys, cli_main, broken, message):
    raw = make_raw(tmp_path / "raw", {1: simple_parts(1)})
    if broken == "no_root":
        raw = tmp_path / "missing"
    elif broken == "no_images_dir":
        (raw / "CelebA-HQ-img" / "1.jpg").unlink()
        (raw / "CelebA-HQ-img").rmdir()
    elif broken == "no_images":
        (raw / "CelebA-HQ-img" / "1.jpg").rename(raw / "CelebA-HQ-img" / "readme.txt")
    elif broken == "no_anno_dir":
        (raw / "CelebAMask-HQ-mask-anno").rename(tmp_path / "elsewhere")
    elif broken == "no_anno_folders":
        (raw / "CelebAMask-HQ-mask-anno" / "0").rename(raw / "CelebAMask-HQ-mask-anno" / "zero")
    rc = cli_main(["celebamask", "--root", str(raw), "--out", str(tmp_path / "prep")])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("error: ") and "\n" not in err and message in err
    assert not (tmp_path / "prep" / "dataset.json").exists()
