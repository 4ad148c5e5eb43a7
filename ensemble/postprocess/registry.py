"""The post-processing registry in use: steps built from a config, and the two stages that run them.

Every step is a class in its own module of this package (ensemble.postprocess.steps_base states the
contract); STEPS holds them in run order: smooth, crf (probability steps), grabcut, remove_small,
fill_holes, face_clip, glasses_to_skin, eye_repair (label steps). Probability steps run first, as
torch ops where the probabilities are (a GPU keeps them), then argmax; only uint8 maps (and a float
map for GrabCut) go to the CPU, where the label steps run, always in STEPS order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from configs.schema import PostprocessConfig
from ensemble.postprocess.steps_base import (
    SCHEMA,
    STEPS,
    Context,
    LabelStep,
    PostprocessError,
    ProbabilityStep,
    Step,
)

if TYPE_CHECKING:
    import torch

__all__ = [
    "STEPS",
    "Context",
    "LabelStep",
    "PostprocessError",
    "ProbabilityResult",
    "ProbabilityStep",
    "Step",
    "argmax_labels",
    "build_steps",
    "check_keys",
    "known_keys",
    "label_stage",
    "plain_config",
    "postprocess",
    "probability_stage",
    "step_switch",
]


def known_keys() -> list[str]:
    """Every PostprocessConfig key some step reads: the schema's fields, then the steps' own."""
    own = [k for s in STEPS.values() for k, v in s.fields.items() if v is not SCHEMA]
    return [*PostprocessConfig.model_fields, *dict.fromkeys(own)]


def check_keys(cfg: PostprocessConfig) -> None:
    """Raise PostprocessError for a key no registered step reads (a typo, or a step not installed)."""
    known = known_keys()
    for key in cfg.model_extra or {}:
        if key not in known:
            raise PostprocessError(
                f"ensemble.postprocess.{key}: no post-processing step reads this key (known: {', '.join(known)})"
            )


def build_steps(cfg: PostprocessConfig) -> list[Step]:
    """The enabled steps in run order (raises PostprocessError early: an unknown key, a bad value of
    a step's own field, CRF without its package)."""
    check_keys(cfg)
    steps = [s for s in (cls.from_config(cfg) for cls in STEPS.values()) if s is not None]
    # Probability steps must precede the argmax; keep the registry order within each kind.
    return [s for s in steps if isinstance(s, ProbabilityStep)] + [
        s for s in steps if isinstance(s, LabelStep)
    ]


def plain_config() -> PostprocessConfig:
    """Every registered step off: plain argmax (where `ensemble fit` starts)."""
    update: dict[str, Any] = {}
    for cls in STEPS.values():
        update.update(cls.plain())
    return PostprocessConfig(**update)


def step_switch(key: str, on: bool) -> dict[str, Any]:
    """The config update that turns the step called key on or off (KeyError for an unknown key)."""
    return STEPS[key].on() if on else STEPS[key].off()


def argmax_labels(probs: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(probs, np.ndarray):
        return probs.argmax(0).astype(np.uint8)
    import torch

    return probs.argmax(0).to(torch.uint8).cpu().numpy()


@dataclass
class ProbabilityResult:
    """What leaves the probabilities' device: the label map and the facts the label steps need."""

    context: Context
    stage_labels: list[tuple[Step, np.ndarray]]  # labels after each probability step


def probability_stage(
    probs: torch.Tensor, steps: list[Step], image_path: Path | None = None, track: bool = False
) -> ProbabilityResult:
    """Run the probability steps where probs live (GPU or CPU); return small CPU arrays only."""
    import torch

    seen = []
    for step in steps:
        if isinstance(step, ProbabilityStep):
            probs = step.apply(probs, image_path)
            if track:
                seen.append((step, argmax_labels(probs)))
    needs = {n for step in steps if isinstance(step, LabelStep) for n in step.needs}
    top2 = probs.topk(2, dim=0).indices.to(torch.uint8) if "top2" in needs else None
    labels = top2[0] if top2 is not None else probs.argmax(0).to(torch.uint8)
    ctx = Context(
        labels=labels.cpu().numpy(),
        image_path=image_path,
        top2=top2.cpu().numpy() if top2 is not None else None,
    )
    if "foreground" in needs:
        ctx.foreground = (1.0 - probs[0]).float().cpu().numpy()
    if "face_best" in needs:
        ctx.face_best = (probs[1:].argmax(0) + 1).to(torch.uint8).cpu().numpy()
    return ProbabilityResult(ctx, seen)


def label_stage(
    ctx: Context, steps: list[Step], on_step: Callable[[Step, np.ndarray], None] | None = None
) -> np.ndarray:
    """Run the label steps (CPU: components, holes, GrabCut, face steps) on ctx.labels; returns them."""
    for step in steps:
        if isinstance(step, LabelStep):
            step(ctx)
            if on_step is not None:
                on_step(step, ctx.labels)
    return ctx.labels


def postprocess(
    probs: np.ndarray | torch.Tensor,
    steps: list[Step],
    image_path: Path | None = None,
    on_step: Callable[[Step, np.ndarray], None] | None = None,
) -> np.ndarray:
    """Run the steps on (C, H, W) probabilities; returns the label map (H, W) uint8.

    on_step(step, labels) is called after each step with the labels so far (for the report).
    """
    import torch

    result = probability_stage(torch.as_tensor(probs), steps, image_path, track=on_step is not None)
    for step, labels in result.stage_labels:
        on_step(step, labels)
    return label_stage(result.context, steps, on_step)
