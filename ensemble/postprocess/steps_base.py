"""The contract every post-processing step follows, and the registry the steps join by subclassing.

A step is one class in one module of this package, a subclass of one of the two kinds:

    ProbabilityStep  apply(probs, image_path) -> probs: (C, H, W) torch probabilities, before the
                     argmax, on whatever device holds them (a GPU keeps them)
    LabelStep        __call__(ctx): edits ctx.labels, the (H, W) uint8 label map, on the CPU

and declares, as class attributes, everything the rest of the project needs to know about it:

    key      its registry name, the stage name in `ensemble fit`'s decisions and `--step NAME`
    order    where it runs (ascending); the registry is kept in this order
    switch   the PostprocessConfig field that turns it on (bool, True = on)
    fields   every PostprocessConfig field it reads, switch included: name -> SCHEMA for a field
             configs.schema.PostprocessConfig declares, or (type, default) for one only this step
             knows (PostprocessConfig keeps unknown keys; they are checked here when steps are built)

and, as class methods with defaults that fit a plain on/off step, how it is built from a config
(`from_config`), what `ensemble fit` tries (`grid`: (label, config update) pairs, on top of the
settings already chosen) and starts from (`plain`), what turns it on and off (`on`, `off`: used by
`--step` and `--no-postprocess`) and whether it can run here (`available`, e.g. an optional
package). Defining the class registers it (`__init_subclass__`); the package's __init__ imports
every module in the package, so a new file is all it takes.

No torch at module level here or in any step module: the CLI reads the registry to build its flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, ClassVar

import cv2
import numpy as np
from pydantic import BaseModel, ValidationError, create_model

from configs.errors import FaceParseError
from configs.schema import PostprocessConfig, error_message
from data_prep.layout import read_rgb

if TYPE_CHECKING:
    import torch


class PostprocessError(FaceParseError):
    """A post-processing step that cannot run (e.g. a missing optional package) or a bad setting."""


class _Schema:
    def __repr__(self) -> str:
        return "SCHEMA"


SCHEMA: Any = _Schema()  # in Step.fields: a field PostprocessConfig declares (its type and default)

# Every registered step class by key, in run order (Step.order); filled as step classes are defined.
STEPS: dict[str, type[Step]] = {}
_OWN_FIELDS: dict[type, type[BaseModel]] = {}  # per step class: a pydantic model of its own fields


@dataclass
class Context:
    """What the label steps work on: the label map and, computed once on the probabilities'
    device, only the per-pixel facts the enabled steps need (never the (C, H, W) tensor)."""

    labels: np.ndarray  # (H, W) uint8, edited in place by the label steps
    top2: np.ndarray | None = None  # (2, H, W) uint8: best and second-best class per pixel
    foreground: np.ndarray | None = None  # (H, W) float32: 1 - p(background)
    face_best: np.ndarray | None = None  # (H, W) uint8: the most likely face class (1..18)
    image_path: Path | None = None
    faces: list | None = None  # detected faces (ensemble.postprocess.face_regions.Face) for the face steps
    _image: np.ndarray | None = field(default=None, repr=False)

    def image(self) -> np.ndarray:
        """The RGB input at the labels' size (read only when a step needs it)."""
        if self._image is None:
            if self.image_path is None:
                raise PostprocessError("this post-processing step needs the input image")
            image = read_rgb(self.image_path)
            h, w = self.labels.shape
            if image.shape[:2] != (h, w):
                image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
            self._image = image
        return self._image


class Step:
    """Base of both kinds (subclass ProbabilityStep or LabelStep); see the module docstring."""

    kind: ClassVar[str] = ""  # set by the kind: "probabilities" or "labels"
    key: ClassVar[str] = ""
    order: ClassVar[int] = 0
    switch: ClassVar[str] = ""
    fields: ClassVar[dict[str, Any]] = {}
    name: ClassVar[str] = "step"  # what reports call a built step (default: key)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "key" in cls.__dict__:
            register(cls)

    @property
    def label(self) -> str:
        """The built step with its parameters, as reports show it."""
        return self.name

    # --- what the class declares (defaults: a plain on/off step built without arguments) --------------

    @classmethod
    def from_config(cls, cfg: PostprocessConfig) -> Step | None:
        """The step cfg asks for, or None when cfg leaves it off."""
        return cls() if getattr(cls.values(cfg), cls.switch) else None

    @classmethod
    def grid(cls) -> list[tuple[str, dict[str, Any]]]:
        """What `ensemble fit` tries: (option label, PostprocessConfig update) pairs."""
        return [(cls.key, cls.on())]

    @classmethod
    def on(cls) -> dict[str, Any]:
        """The config update that turns the step on (its other settings kept)."""
        return {cls.switch: True}

    @classmethod
    def off(cls) -> dict[str, Any]:
        """The config update that turns the step off (its other settings kept)."""
        return {cls.switch: False}

    @classmethod
    def plain(cls) -> dict[str, Any]:
        """The step's settings in the config `ensemble fit` starts from (the step off)."""
        return cls.off()

    @classmethod
    def available(cls) -> bool:
        """Whether the step can run here (`ensemble fit` skips it otherwise)."""
        return True

    # --- reading the config ---------------------------------------------------------------------------

    @classmethod
    def values(cls, cfg: PostprocessConfig) -> SimpleNamespace:
        """The step's fields in cfg: the schema's as they are, its own validated (or their default)."""
        own = {k: v for k, v in cls.fields.items() if v is not SCHEMA}
        given = {k: v for k, v in (cfg.model_extra or {}).items() if k in own}
        if cls not in _OWN_FIELDS:
            _OWN_FIELDS[cls] = create_model(f"{cls.__name__}Fields", **own)
        try:
            checked = _OWN_FIELDS[cls].model_validate(given)
        except ValidationError as err:
            e = err.errors()[0]
            where = ".".join(str(p) for p in e["loc"])
            raise PostprocessError(f"ensemble.postprocess.{where}: {error_message(e)}") from None
        return SimpleNamespace(
            **{k: getattr(cfg, k) if v is SCHEMA else getattr(checked, k) for k, v in cls.fields.items()}
        )


class ProbabilityStep(Step):
    """Maps (C, H, W) probabilities (a torch tensor) to new ones on the same device, before the argmax."""

    kind = "probabilities"

    def apply(self, probs: torch.Tensor, image_path: Path | None = None) -> torch.Tensor:
        raise NotImplementedError


class LabelStep(Step):
    """Edits ctx.labels (uint8, CPU) in place, after the argmax."""

    kind = "labels"
    needs: ClassVar[tuple[str, ...]] = ()  # Context facts it reads: "top2", "foreground", "face_best"

    def __call__(self, ctx: Context) -> None:
        raise NotImplementedError


def register(cls: type[Step]) -> None:
    """Add a step class to STEPS, keeping run order; called when a class that sets `key` is defined."""
    problems = []
    if not issubclass(cls, (ProbabilityStep, LabelStep)):
        problems.append("must subclass ProbabilityStep or LabelStep")
    if not isinstance(cls.__dict__.get("order"), int):
        problems.append("must set its own integer `order`")
    if not cls.switch or cls.switch not in cls.fields:
        problems.append("must name its `switch` among its `fields`")
    if cls.key in STEPS and STEPS[cls.key] is not cls:
        problems.append(f"key {cls.key!r} is taken by {STEPS[cls.key].__qualname__}")
    taken = [k for k, s in STEPS.items() if s.order == cls.order and k != cls.key]
    if taken:
        problems.append(f"order {cls.order} is taken by {taken[0]!r}")
    for name, spec in cls.fields.items():
        if (spec is SCHEMA) != (name in PostprocessConfig.model_fields):
            problems.append(
                f"field {name!r}: SCHEMA only for PostprocessConfig's own fields, (type, default) otherwise"
            )
    if problems:
        raise TypeError(f"post-processing step {cls.__qualname__}: " + "; ".join(problems))
    if "name" not in cls.__dict__:
        cls.name = cls.key
    entries = sorted(
        [*((k, s) for k, s in STEPS.items() if k != cls.key), (cls.key, cls)], key=lambda e: e[1].order
    )
    STEPS.clear()
    STEPS.update(entries)


def unregister(key: str) -> None:
    """Remove a step from STEPS (tests that register a step of their own restore the registry)."""
    STEPS.pop(key, None)
