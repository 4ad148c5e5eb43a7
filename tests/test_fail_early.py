"""What used to fail inside every trial after Ray started now fails before: the search space's
names and ranges, undecodable prepared data; and a failed trial's error is its message."""

from __future__ import annotations

import shutil
import traceback
from pathlib import Path

import pytest
import yaml

from configs import ConfigError, parse_config
from data_prep import check
from data_prep.check import CACHE_FILE, check_prepared
from tuning import search
from tuning.__main__ import main as tuning_main
from tuning.library_export import error_message


@pytest.fixture
def no_ray(monkeypatch):
    """Starting Ray is a test failure: everything here must be caught before it."""

    def refuse(*args, **kwargs):
        raise AssertionError("Ray was started although the input was bad")

    monkeypatch.setattr(search, "ray_session", refuse)


def write_config(tmp_path: Path, **search_section) -> Path:
    raw = {
        "data": {"image_size": 64, "num_workers": 0},
        "train": {"epochs": 1, "batch_size": 4, "amp": "none", "device": "cpu"},
        "search": {"archs": {"Unet": ["resnet18"]}, "num_samples": 1, **search_section},
        "resources": {"storage": str(tmp_path / "ray")},
    }
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def copy_prepared(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize(
    "params, expected",
    [
        (
            {"train.lr": {"low": -1e-3, "high": 1e-2}},
            r"search\.params\.train\.lr: -0\.001 is not a valid train\.lr",
        ),
        ({"train.lr": {"low": 0.0, "high": 1e-2}}, r"search\.params\.train\.lr: 0\.0 is not a valid"),
        ({"train.lr": {"low": 1e-2, "high": 1e-3}}, r"low \(0\.01\) must be below high"),
        ({"train.lr": {"low": 0.0, "high": 1e-2, "log": True}}, r"a log range needs low > 0"),
        ({"train.amp": {"choices": ["bf16", "fp8"]}}, r"'fp8' is not a valid train\.amp"),
        (
            {"data.image_size": {"choices": [64, 100]}},
            r"100 is not a valid data\.image_size: must be a multiple of 32",
        ),
    ],
)
def test_every_sampled_value_is_validated_by_the_schema(params, expected):
    with pytest.raises(ConfigError, match=expected):
        parse_config({"search": {"params": params}})


def test_a_valid_log_range_and_choices_pass():
    cfg = parse_config(
        {
            "search": {
                "params": {
                    "train.lr": {"low": 1e-4, "high": 1e-2, "log": True},
                    "train.amp": {"choices": ["bf16", "none"]},
                }
            }
        }
    )
    assert cfg.search.params["train.lr"].low == 1e-4


def test_unknown_arch_and_encoder_fail_before_ray_starts(tmp_path, tiny_prepared, no_ray, capsys):
    config = write_config(tmp_path, archs={"Unet": ["resnet18", "resnet1800"], "Unetto": ["resnet18"]})
    rc = tuning_main(["--config", str(config), "--data", str(tiny_prepared), "--out", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"{config}: search.archs.Unet: model.encoder 'resnet1800' is not an smp encoder" in err
    assert f"{config}: search.archs.Unetto: model.arch 'Unetto' is not an smp architecture" in err


def test_negative_lr_range_fails_before_ray_starts(tmp_path, tiny_prepared, no_ray, capsys):
    config = write_config(tmp_path, params={"train.lr": {"low": -1e-3, "high": 1e-2}})
    rc = tuning_main(["--config", str(config), "--data", str(tiny_prepared)])
    assert rc == 2 and "search.params.train.lr: -0.001 is not a valid train.lr" in capsys.readouterr().err


def test_bad_prepared_files_are_all_listed_before_ray_starts(tmp_path, tiny_prepared, no_ray, capsys):
    prep = copy_prepared(tiny_prepared, tmp_path / "prep")
    truncated = prep / "masks" / "t0003.png"
    truncated.write_bytes(truncated.read_bytes()[:40])
    (prep / "images" / "v0001.jpg").unlink()
    config = write_config(tmp_path)
    rc = tuning_main(["--config", str(config), "--data", str(prep)])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"error: {truncated}: not a readable label map" in err
    assert f"error: {prep / 'images' / 'v0001.jpg'}: not found" in err
    assert "2 bad file(s)" in err


def test_decode_check_is_cached_by_size_and_mtime(tmp_path, tiny_prepared, monkeypatch):
    prep = copy_prepared(tiny_prepared, tmp_path / "prep")
    assert check_prepared(prep, progress=False) == []
    assert (prep / CACHE_FILE).is_file()
    reads: list[Path] = []
    real = check._check_sample
    monkeypatch.setattr(check, "_check_sample", lambda p, i: reads.append(i) or real(p, i))
    assert check_prepared(prep, progress=False) == [] and reads == []  # nothing changed: no decode
    mask = prep / "masks" / "t0002.png"
    mask.write_bytes(b"not a png at all")
    problems = check_prepared(prep, progress=False)
    assert reads == ["t0002"] and problems == [f"{mask}: not a readable label map"]
    assert check_prepared(prep, progress=False) == problems  # a bad file is never cached as good


def test_trial_error_is_the_exceptions_message_not_the_ray_header():
    from ray.exceptions import RayTaskError

    try:
        raise ValueError("/data/prep/masks/t0003.png: not a readable label map")
    except ValueError as exc:
        err = RayTaskError("train", traceback.format_exc(), exc, proctitle="ray::ImplicitFunc.train")
    expected = "ValueError: /data/prep/masks/t0003.png: not a readable label map"
    assert "\x1b[" in str(err)  # what the column used to hold: a coloured header line
    assert error_message(err) == expected
    assert error_message(err.as_instanceof_cause()) == expected
    assert error_message(str(err)) == expected  # a restored experiment keeps only the text
