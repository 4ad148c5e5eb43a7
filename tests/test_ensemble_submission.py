"""The leaderboard CSV: run-length codes, IDs, label order, image order, atomic writing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from configs import CLASS_ID, CLASSES
from configs.schema import CsvConfig
from ensemble.core.inputs import sort_stems
from ensemble.submission.csv_codes import (
    CSV_HEADER,
    SubmissionWriter,
    read_submission,
    rle_decode,
    rle_encode,
    write_ids,
    write_submission,
)


def test_rle_uses_one_based_start_length_pairs_joined_by_underscores():
    flat = np.zeros(20, bool)
    flat[0:3] = True  # pixels 1..3
    flat[9:11] = True  # pixels 10..11
    assert rle_encode(flat.reshape(4, 5)) == "1_3_10_2"
    assert rle_encode(np.zeros((4, 5), bool)) == "0"
    assert rle_encode(np.ones((2, 2), bool)) == "1_4"


def test_rle_runs_continue_across_rows_in_row_major_order():
    mask = np.zeros((3, 4), bool)
    mask[0, 3] = mask[1, 0] = mask[1, 1] = True  # end of row 0 joins start of row 1
    assert rle_encode(mask) == "4_3"
    mask[2, 3] = True  # the very last pixel
    assert rle_encode(mask) == "4_3_12_1"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rle_decode_inverts_encode(seed):
    mask = np.random.default_rng(seed).random((256, 256)) > 0.7
    np.testing.assert_array_equal(rle_decode(rle_encode(mask)), mask)


def _label_map(h: int, w: int) -> np.ndarray:
    labels = np.zeros((h, w), np.uint8)
    labels[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = CLASS_ID["skin"]
    labels[h // 3 : h // 2, w // 3 : w // 2] = CLASS_ID["l_eye"]
    labels[: h // 8] = CLASS_ID["hair"]
    return labels


def _seed_mask2csv(labels: np.ndarray) -> list[str]:
    """The seed's conventions, written independently: each class mask resized to 256 with plain
    INTER_NEAREST, flattened row-major, runs as 1-based start and length joined by '_', the
    background encoded like any class, an empty mask '0'."""
    codes = []
    for c in range(19):
        mask = cv2.resize((labels == c).astype(np.uint8), (256, 256), interpolation=cv2.INTER_NEAREST)
        runs, start = [], None
        for i, v in enumerate(mask.flatten().tolist() + [0]):
            if v and start is None:
                start = i
            elif not v and start is not None:
                runs += [str(start + 1), str(i - start)]
                start = None
        codes.append("_".join(runs) if runs else "0")
    return codes


def test_csv_follows_the_seed_submission_conventions_on_512px_maps(tmp_path):
    rng = np.random.default_rng(0)
    maps = []
    for _ in range(3):  # 512 px maps with thin, odd-sized parts where the two resizes disagree
        labels = _label_map(512, 512)
        for _ in range(40):
            y, x = rng.integers(0, 509, 2)
            labels[y : y + rng.integers(1, 4), x : x + rng.integers(1, 4)] = rng.integers(0, 19)
        maps.append(labels)
    write_submission(tmp_path / "submission.csv", maps)
    rows = read_submission(tmp_path / "submission.csv")
    for p, labels in enumerate(maps):
        assert [r[3] for r in rows[p * 19 : (p + 1) * 19]] == _seed_mask2csv(labels)
    assert rows[0][3] != "0"  # the background row is the background's run-length code


def test_other_csv_conventions_remain_available(tmp_path):
    labels = _label_map(512, 512)
    labels[101:104, 201:203] = CLASS_ID["nose"]  # odd offsets: nearest and nearest-exact differ
    exact = CsvConfig(resize="nearest_exact", background="zero")
    write_submission(tmp_path / "exact.csv", [labels], exact)
    write_submission(tmp_path / "seed.csv", [labels])
    exact_rows, seed_rows = read_submission(tmp_path / "exact.csv"), read_submission(tmp_path / "seed.csv")
    assert exact_rows[0][3] == "0" and seed_rows[0][3] != "0"
    small = cv2.resize(labels, (256, 256), interpolation=cv2.INTER_NEAREST_EXACT)
    for c in range(1, 19):
        np.testing.assert_array_equal(rle_decode(exact_rows[c][3]), small == c, err_msg=CLASSES[c])
    assert exact_rows[CLASS_ID["nose"]][3] != seed_rows[CLASS_ID["nose"]][3]


def test_csv_rows_decode_back_to_the_written_masks(tmp_path):
    maps = [_label_map(300, 200), None, _label_map(64, 64)]  # position 1: a skipped image
    write_submission(tmp_path / "submission.csv", maps)
    assert (tmp_path / "submission.csv").read_text().splitlines()[0] == CSV_HEADER
    rows = read_submission(tmp_path / "submission.csv")
    assert len(rows) == 3 * 19
    assert [r[0] for r in rows] == list(range(57))  # ID = p*19 + c
    assert [r[2] for r in rows] == list(CLASSES) * 3  # labels in class-ID order
    assert {r[1] for r in rows} == {"Public"}
    for p, labels in enumerate(maps):
        block = rows[p * 19 : (p + 1) * 19]
        if labels is None:
            assert all(r[3] == "0" for r in block)  # a skipped image: every row empty
            continue
        small = cv2.resize(labels, (256, 256), interpolation=cv2.INTER_NEAREST)
        for c in range(19):
            np.testing.assert_array_equal(rle_decode(block[c][3]), small == c, err_msg=CLASSES[c])
        assert block[CLASS_ID["nose"]][3] == "0"  # an absent class is empty
        assert block[CLASS_ID["skin"]][3] != "0"


def test_stems_sort_numerically_when_all_are_numbers():
    assert sort_stems(["10", "9", "100", "2", "0"]) == ["0", "2", "9", "10", "100"]
    assert sort_stems(["010", "9"]) == ["9", "010"]


def test_other_stems_sort_in_natural_order():
    assert sort_stems(["img10", "img9", "img1", "b", "A2"]) == ["A2", "b", "img1", "img9", "img10"]
    assert sort_stems(["face_2_b", "face_10_a", "face_2_a", "3"]) == [
        "3",
        "face_2_a",
        "face_2_b",
        "face_10_a",
    ]


def test_ids_sidecar_maps_positions_to_image_names(tmp_path):
    write_ids(tmp_path / "submission_ids.csv", ["2.jpg", "10.png"])
    assert (tmp_path / "submission_ids.csv").read_text() == "position,image\n0,2.jpg\n1,10.png\n"


def test_an_interrupted_csv_leaves_no_file_behind(tmp_path):
    with pytest.raises(RuntimeError):
        with SubmissionWriter(tmp_path / "submission.csv") as sub:
            sub.add(0, _label_map(32, 32))
            raise RuntimeError("crash mid-run")
    assert list(tmp_path.iterdir()) == []


def test_rows_must_come_in_position_order(tmp_path):
    with pytest.raises(ValueError, match="out of order"):
        with SubmissionWriter(tmp_path / "submission.csv") as sub:
            sub.add(1, None)
    assert list(tmp_path.iterdir()) == []
