"""Member weights without validation data: uniform, or proportional to each member's val F1.

`python -m ensemble fit` chooses weights from validation predictions instead (ensemble.fit.selection).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from configs.errors import FaceParseError
from ensemble.core.members import Member


class WeightsError(FaceParseError):
    """Member weights that cannot be computed or loaded."""


def uniform_weights(members: Sequence[Member]) -> dict[str, float]:
    return {m.name: 1.0 / len(members) for m in members}


def score_weights(members: Sequence[Member]) -> dict[str, float]:
    """Weights proportional to each member's val_f1, normalised to sum to 1."""
    missing = [m.name for m in members if m.val_f1 is None or not m.val_f1 > 0]
    if missing:
        raise WeightsError(
            f"member(s) {missing} have no positive val_f1 in the manifest; "
            f"use --weights uniform, or fit a recipe (python -m ensemble fit)"
        )
    total = sum(m.val_f1 for m in members)  # type: ignore[misc]
    return {m.name: float(m.val_f1) / total for m in members}  # type: ignore[arg-type]


WEIGHT_MODES: dict[str, Callable[[Sequence[Member]], dict[str, float]]] = {
    "uniform": uniform_weights,
    "score": score_weights,
}
