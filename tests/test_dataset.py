"""FaceParsingDataset, mixing several prepared datasets by weight, class weights."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from configs import CLASS_ID, NUM_CLASSES
from configs.schema import parse_config
from data_prep.dataset import FaceParsingDataset, build_datasets, class_weights_from
from data_prep.layout import DatasetError, PreparedDataset, write_splits
from data_prep.transforms import build_val_transform


def config(*datasets, image_size=64):
    return parse_config(
        {"data": {"datasets": [{"path": str(p), "weight": w} for p, w in datasets], "image_size": image_size}}
    )


def test_split_lengths_and_ids_follow_the_split_files(tiny_prepared):
    prep = PreparedDataset(tiny_prepared)
    for split, n in (("train", 24), ("val", 8), ("test", 4)):
        ds = FaceParsingDataset(tiny_prepared, split)
        assert len(ds) == n
        assert ds.ids == prep.split_ids(split)


def test_raw_item_is_uint8_image_and_label_map(tiny_prepared):
    image, mask = FaceParsingDataset(tiny_prepared, "train")[0]
    assert image.dtype == np.uint8 and image.shape == (64, 64, 3)
    assert mask.dtype == np.uint8 and mask.shape == (64, 64)
    assert {CLASS_ID["skin"], CLASS_ID["l_eye"], CLASS_ID["r_eye"]} <= set(np.unique(mask))


def test_transformed_item_is_float_image_and_int64_mask(tiny_prepared):
    cfg = config((tiny_prepared, 1.0), image_size=32)
    ds = FaceParsingDataset(tiny_prepared, "val", build_val_transform(cfg.data))
    image, mask = ds[3]
    assert image.dtype == torch.float32 and image.shape == (3, 32, 32)
    assert mask.dtype == torch.int64 and mask.shape == (32, 32)
    assert int(mask.max()) < NUM_CLASSES and int(mask.min()) >= 0


def test_missing_dataset_error_names_the_path(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetError, match=str(missing)):
        FaceParsingDataset(missing, "train")


def test_missing_split_file_error_names_the_file(tiny_prepared, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(tiny_prepared, root)
    (root / "splits" / "val.txt").unlink()
    with pytest.raises(DatasetError, match=str(root / "splits" / "val.txt")):
        FaceParsingDataset(root, "val")


def test_missing_image_error_names_the_file(tiny_prepared, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(tiny_prepared, root)
    gone = PreparedDataset(root).image_path("t0005")
    gone.unlink()
    ds = FaceParsingDataset(root, "train")
    with pytest.raises(DatasetError, match=str(gone)):
        ds[5]


def test_build_datasets_needs_a_dataset():
    with pytest.raises(DatasetError, match="data.datasets is empty"):
        build_datasets(parse_config({}))


def test_build_datasets_without_val_data_says_so(tiny_prepared, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(tiny_prepared, root)
    prep = PreparedDataset(root)
    write_splits(prep, {"train": prep.split_ids("train"), "val": [], "test": prep.split_ids("test")})
    with pytest.raises(DatasetError, match="no validation data"):
        build_datasets(config((root, 1.0)))


def test_one_dataset_needs_no_sampler(tiny_prepared):
    train, val, sampler = build_datasets(config((tiny_prepared, 1.0)))
    assert (len(train), len(val), sampler) == (24, 8, None)


def test_mixed_datasets_are_drawn_in_proportion_to_their_weights(tiny_prepared, make_prepared):
    other = make_prepared("mix_other", n_train=8, n_val=4, n_test=0, size=32, seed=1)
    train, val, sampler = build_datasets(
        config((tiny_prepared, 1.0), (other, 3.0)), generator=torch.Generator().manual_seed(0)
    )
    assert len(train) == 24 + 8 and len(val) == 8 + 4
    draws = []
    for _ in range(1000):
        draws.extend(sampler)
    from_other = np.mean(np.array(draws) >= 24)  # ConcatDataset: indices 24.. are `other`
    # Weights 1:3 -> 75% of draws from the 8-sample dataset, although it holds 25% of the samples.
    assert abs(from_other - 0.75) < 0.01, from_other
    # Every sample of a dataset is equally likely.
    counts = np.bincount(draws, minlength=32)
    assert counts[:24].std() / counts[:24].mean() < 0.15
    assert counts[24:].std() / counts[24:].mean() < 0.15
    image, mask = train[30]  # from `other`, resized to the config's size
    assert image.shape == (3, 64, 64) and mask.dtype == torch.int64


def test_class_weights_favour_rare_classes_and_zero_absent_ones(tiny_prepared):
    weights = class_weights_from(config((tiny_prepared, 1.0)))
    assert weights.shape == (NUM_CLASSES,)
    freq = PreparedDataset(tiny_prepared).class_frequencies()
    assert weights[CLASS_ID["hat"]] == 0 and freq[CLASS_ID["hat"]] == 0
    assert weights[CLASS_ID["l_brow"]] > 1.0 > weights[CLASS_ID["hair"]] >= weights[CLASS_ID["background"]]
    assert weights.max() <= 10.0 and weights[weights > 0].min() >= 0.1
    present = freq > 0
    median = np.median(freq[present])
    expected = np.clip(median / freq[present], 0.1, 10.0)
    np.testing.assert_allclose(weights.numpy()[present], expected, rtol=1e-5)
