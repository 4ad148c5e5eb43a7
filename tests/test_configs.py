"""Config schema and class table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from configs import (
    CLASS_ID,
    CLASSES,
    DEFAULT_PAINT_ORDER,
    FLIP_LUT,
    FLIP_PERMUTATION,
    ConfigError,
    colorize,
    load_config,
    parse_config,
)
from configs.classes import validate_paint_order

REPO = Path(__file__).resolve().parents[1]


def test_class_ids_follow_the_official_celebamask_order():
    assert len(CLASSES) == 19
    assert [CLASS_ID[n] for n in ("background", "skin", "l_eye", "r_eye", "hair", "hat", "cloth")] == [
        0,
        1,
        4,
        5,
        13,
        14,
        18,
    ]


def test_flip_permutation_swaps_only_left_right_partners_and_is_an_involution():
    swapped = {CLASSES[c]: CLASSES[p] for c, p in enumerate(FLIP_PERMUTATION) if c != p}
    assert swapped == {
        "l_eye": "r_eye",
        "r_eye": "l_eye",
        "l_brow": "r_brow",
        "r_brow": "l_brow",
        "l_ear": "r_ear",
        "r_ear": "l_ear",
    }
    assert (FLIP_PERMUTATION[FLIP_PERMUTATION] == np.arange(19)).all()
    assert FLIP_LUT[255] == 255 and FLIP_LUT[4] == 5


def test_paint_order_must_name_every_part_once():
    assert validate_paint_order(DEFAULT_PAINT_ORDER) == DEFAULT_PAINT_ORDER
    with pytest.raises(ValueError, match="repeats"):
        validate_paint_order(DEFAULT_PAINT_ORDER[:-1] + ("hair",))
    with pytest.raises(ValueError, match="unknown"):
        validate_paint_order(DEFAULT_PAINT_ORDER[:-1] + ("beard",))


def test_colorize_uses_the_palette_and_marks_unknown_ids_white():
    rgb = colorize(np.array([[0, 1, 255]], dtype=np.uint8))
    assert rgb.shape == (1, 3, 3) and rgb[0, 0].tolist() == [0, 0, 0]
    assert rgb[0, 2].tolist() == [255, 255, 255] and rgb[0, 1].tolist() != [0, 0, 0]


@pytest.mark.parametrize("name", ["demo.yaml", "celebamask.yaml"])
def test_shipped_configs_load(name):
    cfg = load_config(REPO / "configs" / name)
    assert cfg.data.image_size % 32 == 0 and cfg.search.archs


def test_celebamask_recipe_is_the_real_one():
    cfg = load_config(REPO / "configs" / "celebamask.yaml")
    assert cfg.data.image_size == 512 and cfg.model.encoder_weights == "imagenet"
    assert cfg.resources.gpu == 1
    assert {"UnetPlusPlus", "DeepLabV3Plus", "FPN", "Segformer"} <= set(cfg.search.archs)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ({"train": {"lrr": 0.1}}, r"train\.lrr: unknown key"),
        ({"trian": {}}, r"trian: unknown key"),
        ({"data": {"image_size": 100}}, r"data\.image_size: must be a multiple of 32"),
        ({"train": {"amp": "fp8"}}, r"train\.amp: .*'bf16', 'fp16' or 'none'.*fp8"),
        ({"train": {"lr": -1}}, r"train\.lr: .*greater than 0"),
        ({"search": {"archs": {"Unet": []}}}, r"search\.archs: .*lists no encoders"),
        (
            {"search": {"params": {"train.foo": {"choices": [1]}}}},
            r"search\.params\.train\.foo: not a config key",
        ),
        ({"search": {"params": {"train.lr": {"low": 1, "high": 0.1}}}}, r"must be below high"),
        ({"train": {"ce_weight": 0, "dice_weight": 0}}, r"train: .*no loss"),
    ],
)
def test_config_errors_name_the_bad_key(raw, expected):
    with pytest.raises(ConfigError, match=expected) as err:
        parse_config(raw)
    assert len(str(err.value).splitlines()) == 1


def test_yaml_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epochs: [\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(bad)
    bad.write_text("train:\n  epochs: 0\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: train\.epochs"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_overrides_are_validated_and_leave_the_original_untouched():
    cfg = parse_config({})
    new = cfg.with_overrides({"train.lr": 1e-3, "model.arch": "FPN"})
    assert (new.train.lr, new.model.arch) == (1e-3, "FPN") and cfg.model.arch == "Unet"
    with pytest.raises(ConfigError, match="train.lr"):
        cfg.with_overrides({"train.lr": "fast"})
    with pytest.raises(ConfigError, match="train.nope: no such config key"):
        cfg.with_overrides({"train.nope": 1})


def test_candidate_library_defaults_to_twice_the_ensemble_size():
    assert parse_config({"search": {"top_k": 3}}).search.library_size == 6
    assert parse_config({"search": {"top_k": 3, "candidates": 4}}).search.library_size == 4
    with pytest.raises(ConfigError, match="search.candidates"):
        parse_config({"search": {"candidates": 0}})


def test_postprocess_section_keeps_keys_of_steps_it_does_not_declare():
    cfg = parse_config({"ensemble": {"postprocess": {"sigma": 2, "new_step": True}}})
    post = cfg.ensemble.postprocess
    assert post.sigma == 2.0 and post.model_extra == {"new_step": True}
    assert list(post.model_dump())[-1] == "new_step"  # after the declared fields, which keep their order
    again = cfg.with_overrides({"ensemble.postprocess.other": 3}).ensemble.postprocess
    assert again.model_extra == {"new_step": True, "other": 3}
    with pytest.raises(ConfigError, match="ensemble.postprocess.sigma"):
        parse_config({"ensemble": {"postprocess": {"sigma": -1}}})  # declared fields are still checked


def test_optional_packages_are_required_in_one_way():
    from configs.optional import installed, require

    assert require("json", "none", "reading JSON").dumps([]) == "[]"
    assert installed("json") and not installed("no_such_package_xyz")

    class FeatureError(ValueError):
        pass

    with pytest.raises(FeatureError) as err:
        require(
            "no_such_package_xyz.sub", "extra1", "the feature", FeatureError, "no-such-dist", "or turn it off"
        )
    assert str(err.value) == (
        "the feature needs the optional package no-such-dist: pip install '.[extra1]' (or turn it off)"
    )
