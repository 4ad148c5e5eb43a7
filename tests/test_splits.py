"""Split rules: split file -> train/test, seeded val/test fractions, disjoint, complete, sorted."""

from __future__ import annotations

import pytest

from data_prep.splits import filter_splits, make_splits, read_split_file, sorted_ids


def flat(splits: dict[str, list[str]]) -> list[str]:
    return splits["train"] + splits["val"] + splits["test"]


def test_listed_ids_go_to_train_or_val_and_the_rest_to_test():
    splits = make_splits(range(100), train_ids=range(0, 100, 2), val_fraction=0.2, seed=0)
    assert splits["test"] == [str(i) for i in range(1, 100, 2)]
    assert sorted(splits["train"] + splits["val"], key=int) == [str(i) for i in range(0, 100, 2)]
    assert len(splits["val"]) == 10  # 20 % of the 50 training ids


def test_listed_ids_without_a_sample_are_ignored():
    splits = make_splits([1, 2, 3, 4], train_ids=[1, 2, 3, 99], val_fraction=0.0)
    assert splits == {"train": ["1", "2", "3"], "val": [], "test": ["4"]}


def test_random_split_takes_the_fractions_of_all_ids():
    splits = make_splits(range(1000), val_fraction=0.1, test_fraction=0.2, seed=0)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [700, 100, 200]


@pytest.mark.parametrize("train_ids", [None, range(0, 60, 3)])
def test_splits_are_disjoint_complete_and_numerically_sorted(train_ids):
    ids = list(range(60))
    splits = make_splits(ids, train_ids=train_ids, val_fraction=0.25, test_fraction=0.15, seed=1)
    assert sorted(flat(splits), key=int) == [str(i) for i in ids]
    assert len(set(flat(splits))) == len(ids)
    for part in splits.values():
        assert part == sorted(part, key=int)
    assert "10" in flat(splits) and all(isinstance(i, str) for i in flat(splits))


@pytest.mark.parametrize("train_ids", [None, range(0, 80, 2)])
def test_the_same_seed_gives_the_same_split_whatever_the_input_order(train_ids):
    a = make_splits(range(80), train_ids=train_ids, val_fraction=0.2, seed=7)
    b = make_splits(reversed(range(80)), train_ids=train_ids, val_fraction=0.2, seed=7)
    c = make_splits([str(i) for i in range(80)], train_ids=train_ids, val_fraction=0.2, seed=8)
    assert a == b
    assert a["val"] != c["val"]


def test_a_tiny_dataset_still_gets_one_val_and_one_test_sample_and_keeps_a_train_sample():
    three = make_splits([5, 6, 7], val_fraction=0.1, test_fraction=0.1)
    assert [len(three[s]) for s in ("train", "val", "test")] == [1, 1, 1]
    assert sorted(flat(three)) == ["5", "6", "7"]
    assert make_splits([5], val_fraction=0.5, test_fraction=0.4)["train"] == ["5"]
    assert make_splits([5, 6], train_ids=[5], val_fraction=0.5) == {"train": ["5"], "val": [], "test": ["6"]}
    assert make_splits(range(10), val_fraction=0.0, test_fraction=0.0)["train"] == [str(i) for i in range(10)]


@pytest.mark.parametrize("val, test", [(-0.1, 0.1), (1.0, 0.0), (0.1, 1.2), (0.6, 0.5), (float("nan"), 0.1)])
def test_bad_fractions_are_refused(val, test):
    with pytest.raises(ValueError, match="fraction"):
        make_splits(range(10), val_fraction=val, test_fraction=test)


def test_filtering_out_skipped_ids_moves_no_other_id():
    splits = make_splits(range(30), seed=2)
    kept = filter_splits(splits, [i for i in range(30) if i != int(splits["val"][0])])
    assert kept["train"] == splits["train"] and kept["test"] == splits["test"]
    assert kept["val"] == splits["val"][1:]


def test_split_file_reads_one_int_per_line_ignoring_blanks_and_comments(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("# official training ids\n3\n\n 10 \n2  # a comment\n")
    assert read_split_file(path) == [3, 10, 2]


def test_split_file_with_a_bad_line_names_file_and_line(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("1\n2.jpg\n")
    with pytest.raises(ValueError, match=r"train.txt:2: expected one integer id per line, got '2.jpg'"):
        read_split_file(path)
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_split_file(tmp_path / "missing.txt")


def test_ids_sort_numerically_not_as_text():
    assert sorted_ids(["10", "9", 100, "1", "9"]) == ["1", "9", "10", "100"]
