"""Ensemble selection on held-out predictions: members, TTA views and post-processing steps.

Members are chosen by greedy forward selection with replacement (Caruana et al. 2004, "Ensemble
Selection from Libraries of Models", the method auto-sklearn and AutoGluon use): start from the
best single candidate, add whichever candidate raises the score most (the same one may come
again), keep the best prefix; the weights are the selection counts. Views and post-processing
steps are then added greedily, each kept only if it raises the score.

Over-fitting guard: the validation images are split into two seeded halves. Every decision is
made on the "choose" half; a stage is kept only when it also does not lower the "confirm" half's
score nor the whole split's. So the fitted ensemble never scores below its starting point (the
best single candidate on the whole split) on validation data, by construction.

The score is the leaderboard's: mean F1 over the 18 face classes from the dataset-wide
confusion matrix (tuning.metrics). Everything here works on cached tensors; no model runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from tuning.metrics import confusion_matrix, scores_from_confusion

EPS = 1e-9


@dataclass(frozen=True)
class Scores:
    """Mean face F1 on the choosing half, the confirming half and the whole split."""

    choose: float
    confirm: float
    all: float

    def improves_on(self, before: Scores) -> bool:
        """Kept only if better where it was chosen and no worse where it is confirmed."""
        return (
            self.choose > before.choose + EPS
            and self.confirm >= before.confirm - EPS
            and self.all >= before.all - EPS
        )

    def delta(self, before: Scores) -> dict[str, float]:
        return {k: getattr(self, k) - getattr(before, k) for k in ("choose", "confirm", "all")}


def split_halves(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random halves (choose, confirm) of n images; both non-empty when n >= 2."""
    if n < 2:
        raise ValueError(f"need at least 2 validation images to split into halves, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    half = (n + 1) // 2
    return np.sort(order[:half]), np.sort(order[half:])


class Scorer:
    """Scores label predictions of a fixed set of images against their ground truth."""

    def __init__(self, labels: torch.Tensor, choose: np.ndarray, confirm: np.ndarray):
        self.labels = labels
        self.choose = torch.as_tensor(choose, dtype=torch.long)
        self.confirm = torch.as_tensor(confirm, dtype=torch.long)

    @staticmethod
    def f1(cm: torch.Tensor) -> float:
        return float(scores_from_confusion(cm.cpu().numpy())["f1"])

    def choose_score(self, probs: torch.Tensor) -> float:
        """Score on the choosing half only; probs hold the whole split (N, C, h, w)."""
        pred = probs.index_select(0, self.choose).argmax(1)
        return self.f1(confusion_matrix(pred, self.labels.index_select(0, self.choose)))

    def __call__(self, probs: torch.Tensor) -> Scores:
        pred = probs.argmax(1)
        return self.from_labels(pred)

    def from_labels(self, pred: torch.Tensor) -> Scores:
        cm_a = confusion_matrix(pred.index_select(0, self.choose), self.labels.index_select(0, self.choose))
        cm_b = confusion_matrix(pred.index_select(0, self.confirm), self.labels.index_select(0, self.confirm))
        return Scores(self.f1(cm_a), self.f1(cm_b), self.f1(cm_a + cm_b))


@dataclass
class TraceStep:
    step: int
    added: str
    scores: Scores


@dataclass
class MemberSelection:
    """Selection counts per candidate, the trace, and why the result is what it is."""

    counts: dict[str, int]
    start: str
    start_scores: Scores
    scores: Scores
    trace: list[TraceStep] = field(default_factory=list)
    kept: bool = True  # False: the ensemble lost on the confirming half; the best single stays

    @property
    def weights(self) -> dict[str, float]:
        total = sum(self.counts.values())
        return {name: c / total for name, c in self.counts.items() if c}

    def to_json(self) -> dict:
        return {
            "counts": self.counts,
            "weights": self.weights,
            "start": self.start,
            "start_scores": asdict(self.start_scores),
            "scores": asdict(self.scores),
            "kept": self.kept,
            "trace": [{"step": t.step, "added": t.added, **asdict(t.scores)} for t in self.trace],
        }


def select_members(
    probs: torch.Tensor, names: Sequence[str], scorer: Scorer, max_steps: int | None = None
) -> tuple[MemberSelection, dict[str, Scores]]:
    """Greedy forward selection with replacement over candidates' probabilities (M, N, C, h, w).

    Returns the selection and every candidate's own scores. Argmax ignores a common scale, so
    the running sum stands in for the count-weighted average.
    """
    m = probs.shape[0]
    if m != len(names):
        raise ValueError(f"{m} candidates' probabilities for {len(names)} names")
    singles = {name: scorer(probs[i].float()) for i, name in enumerate(names)}
    start = max(range(m), key=lambda i: (singles[names[i]].all, -i))
    counts = np.zeros(m, np.int64)
    counts[start] = 1
    acc = probs[start].float()
    trace = [TraceStep(1, names[start], singles[names[start]])]
    best_counts, best_choose = counts.copy(), trace[0].scores.choose
    for step in range(2, (max_steps or 2 * m + 2) + 1):
        gains = [scorer.choose_score(acc + probs[i].float()) for i in range(m)]
        pick = int(np.argmax(gains))
        acc += probs[pick].float()
        counts[pick] += 1
        trace.append(TraceStep(step, names[pick], scorer(acc)))
        if gains[pick] > best_choose + EPS:
            best_counts, best_choose = counts.copy(), gains[pick]
    start_scores = singles[names[start]]
    acc = torch.einsum("m,mnchw->nchw", torch.as_tensor(best_counts, dtype=torch.float32), probs.float())
    scores = scorer(acc)
    kept = best_counts.sum() == 1 or scores.improves_on(start_scores)
    if not kept:
        best_counts = np.eye(m, dtype=np.int64)[start]
        scores = start_scores
    selection = MemberSelection(
        counts={n: int(c) for n, c in zip(names, best_counts)},
        start=names[start],
        start_scores=start_scores,
        scores=scores,
        trace=trace,
        kept=bool(kept),
    )
    return selection, singles


@dataclass
class Decision:
    """One greedy stage: an option tried on top of what was kept so far."""

    stage: str
    option: str
    scores: Scores
    before: Scores
    kept: bool

    def to_json(self) -> dict:
        return {
            "stage": self.stage,
            "option": self.option,
            "kept": self.kept,
            **asdict(self.scores),
            "delta": self.scores.delta(self.before),
        }


def select_views(
    view_probs: torch.Tensor, view_names: Sequence[str], scorer: Scorer, start: int
) -> tuple[list[int], Scores, list[Decision]]:
    """Add views (V, N, C, h, w) to the start view greedily while one improves the score."""
    chosen = [start]
    acc = view_probs[start].float().clone()
    current = scorer(acc)
    decisions: list[Decision] = []
    while True:
        rest = [v for v in range(len(view_names)) if v not in chosen]
        if not rest:
            break
        tried = {v: scorer(acc + view_probs[v].float()) for v in rest}
        best = max(rest, key=lambda v: tried[v].choose)
        keep = tried[best].improves_on(current)
        decisions.append(Decision("view", view_names[best], tried[best], current, keep))
        if not keep:
            break
        chosen.append(best)
        acc += view_probs[best].float()
        current = tried[best]
    return chosen, current, decisions


def select_options(
    stage: str, options: Sequence[tuple[str, object]], current: Scores, evaluate: Callable[[object], Scores]
) -> tuple[object | None, Scores, list[Decision]]:
    """Try each (label, option) of one stage; keep the best on the choosing half if it improves.

    Returns the kept option (None when none is kept), the scores after the stage, and one
    Decision per option tried (the kept one marked).
    """
    tried = [(label, option, evaluate(option)) for label, option in options]
    if not tried:
        return None, current, []
    best = max(range(len(tried)), key=lambda i: tried[i][2].choose)
    keep = tried[best][2].improves_on(current)
    decisions = [
        Decision(stage, label, scores, current, keep and i == best)
        for i, (label, _, scores) in enumerate(tried)
    ]
    if keep:
        return tried[best][1], tried[best][2], decisions
    return None, current, decisions
