"""Greedy ensemble selection on cached probabilities (no models): members, views, options."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from configs import NUM_CLASSES
from ensemble.fit.selection import Scorer, Scores, select_members, select_options, select_views, split_halves

N, H = 12, 16


def _labels(seed: int = 0) -> torch.Tensor:
    """Blocky label maps that use every class."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, NUM_CLASSES, (N, H // 4, H // 4))
    return torch.from_numpy(np.kron(blocks, np.ones((4, 4), np.int64)).astype(np.uint8))


def _noisy(labels: torch.Tensor, noise: float, seed: int) -> torch.Tensor:
    """Softmax of (one-hot truth + Gaussian noise): independent errors that averaging reduces."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.nn.functional.one_hot(labels.long(), NUM_CLASSES).permute(0, 3, 1, 2).float()
    logits = logits + noise * torch.randn(logits.shape, generator=g)
    return torch.softmax(logits, 1).half()


def _scorer(labels: torch.Tensor) -> Scorer:
    return Scorer(labels, *split_halves(len(labels), seed=0))


def test_halves_are_disjoint_seeded_and_cover_everything():
    a, b = split_halves(11, seed=3)
    assert sorted(np.concatenate([a, b]).tolist()) == list(range(11))
    assert len(a) == 6 and len(b) == 5
    assert np.array_equal(a, split_halves(11, seed=3)[0])
    assert not np.array_equal(a, split_halves(11, seed=4)[0])
    with pytest.raises(ValueError, match="at least 2"):
        split_halves(1)


def test_selection_never_picks_a_random_candidate_and_beats_the_best_single():
    labels = _labels()
    good = [_noisy(labels, 0.8, seed) for seed in (1, 2, 3)]
    bad = torch.rand(N, NUM_CLASSES, H, H).half()  # untrained: random probabilities
    probs = torch.stack([good[0], bad, good[1], good[2]])
    names = ["a", "random", "b", "c"]
    selection, singles = select_members(probs, names, _scorer(labels))
    assert selection.counts["random"] == 0
    assert sum(selection.counts.values()) >= 2  # independent errors: averaging helps
    assert selection.scores.all >= max(s.all for s in singles.values())
    assert selection.scores.all > singles[selection.start].all
    assert selection.start == max(singles, key=lambda n: singles[n].all)
    assert [t.step for t in selection.trace] == list(range(1, len(selection.trace) + 1))
    assert abs(sum(selection.weights.values()) - 1) < 1e-9


def test_selection_keeps_the_best_single_when_every_addition_hurts():
    labels = _labels()
    best = _noisy(labels, 0.1, 1)
    probs = torch.stack(
        [best, torch.rand(N, NUM_CLASSES, H, H).half(), torch.rand(N, NUM_CLASSES, H, H).half()]
    )
    selection, singles = select_members(probs, ["best", "r1", "r2"], _scorer(labels))
    assert selection.weights == {"best": 1.0}
    assert selection.scores == singles["best"]


def test_view_that_hurts_is_not_kept_and_one_that_helps_is():
    labels = _labels()
    identity = _noisy(labels, 0.8, 1)
    helpful = _noisy(labels, 0.8, 2)
    harmful = torch.rand(N, NUM_CLASSES, H, H).half() * 3  # loud noise outvotes the others
    views = torch.stack([identity, harmful, helpful])
    chosen, scores, decisions = select_views(views, ["identity", "noise", "hflip"], _scorer(labels), 0)
    assert chosen == [0, 2]
    assert scores.all > _scorer(labels)(identity.float()).all
    assert [d.option for d in decisions if d.kept] == ["hflip"]
    assert decisions[-1].kept is False  # the search stopped at the harmful view


def test_option_is_dropped_when_it_hurts_the_confirming_half():
    before = Scores(0.5, 0.5, 0.5)
    fits_noise = Scores(0.6, 0.45, 0.52)  # better where chosen, worse where confirmed
    kept, after, decisions = select_options("smooth", [("sigma=1", 1.0)], before, lambda o: fits_noise)
    assert kept is None and after == before
    assert decisions[0].kept is False and decisions[0].to_json()["delta"]["confirm"] < 0


def test_best_option_is_kept_when_it_helps_everywhere():
    before = Scores(0.5, 0.5, 0.5)
    table = {0.5: Scores(0.52, 0.51, 0.515), 1.0: Scores(0.55, 0.53, 0.54), 2.0: Scores(0.4, 0.4, 0.4)}
    kept, after, decisions = select_options(
        "smooth", [(f"sigma={s}", s) for s in table], before, table.__getitem__
    )
    assert kept == 1.0 and after == table[1.0]
    assert [d.kept for d in decisions] == [False, True, False]
