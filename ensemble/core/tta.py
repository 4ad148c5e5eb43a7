"""Test-time augmentation: a registry of invertible transforms and the views built from them."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from configs import FLIP_PERMUTATION
from configs.errors import FaceParseError

Size = tuple[int, int]


class TTAError(FaceParseError):
    """A TTA mode or scale that gives no usable views."""


class Transform:
    """One test-time transform: forward on images (N,3,H,W), inverse on probabilities (N,C,h,w)."""

    name = "transform"

    def output_size(self, size: Size) -> Size:
        return size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def inverse(self, probs: torch.Tensor, size: Size) -> torch.Tensor:
        """Map probabilities predicted on the transformed input back onto the input's geometry."""
        raise NotImplementedError


class Identity(Transform):
    name = "identity"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images

    def inverse(self, probs: torch.Tensor, size: Size) -> torch.Tensor:
        return probs


class HFlip(Transform):
    """Horizontal flip whose inverse also swaps the left/right eye, brow and ear channels."""

    name = "hflip"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.flip(-1)

    def inverse(self, probs: torch.Tensor, size: Size) -> torch.Tensor:
        # Flipping back the geometry is not enough: in the mirrored photo the subject's left eye
        # sits where a right eye would, so the model (rightly) calls it r_eye. Its r_eye channel
        # therefore holds the original image's l_eye, and partner channels must be swapped.
        perm = torch.as_tensor(FLIP_PERMUTATION, device=probs.device)
        return probs.flip(-1).index_select(1, perm)


class Scale(Transform):
    """Resize by a factor, rounded to a multiple of 32 (encoders downsample 32x)."""

    def __init__(self, factor: float):
        if factor <= 0:
            raise TTAError(f"scale factor must be positive, got {factor}")
        self.factor = float(factor)
        self.name = f"scale{self.factor:g}"

    def output_size(self, size: Size) -> Size:
        return tuple(max(32, math.floor(s * self.factor / 32 + 0.5) * 32) for s in size)  # type: ignore[return-value]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        size = self.output_size(tuple(images.shape[-2:]))
        return resize_bilinear(images, size)

    def inverse(self, probs: torch.Tensor, size: Size) -> torch.Tensor:
        return resize_bilinear(probs, size)


def resize_bilinear(x: torch.Tensor, size: Size) -> torch.Tensor:
    """Bilinear resize of (N, C, h, w) images or probabilities (antialiased when shrinking)."""
    size = (int(size[0]), int(size[1]))
    if tuple(x.shape[-2:]) == size:
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    # Antialias when shrinking so thin parts (brows, lips) are averaged rather than skipped.
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


TRANSFORMS: dict[str, Callable[..., Transform]] = {
    "identity": Identity,
    "hflip": HFlip,
    "scale": Scale,
}


@dataclass(frozen=True)
class View:
    """A chain of transforms applied to the input; its inverse undoes them in reverse order."""

    steps: tuple[Transform, ...] = ()

    @property
    def name(self) -> str:
        names = [s.name for s in self.steps if not isinstance(s, Identity)]
        return "+".join(names) or "identity"

    @property
    def is_identity(self) -> bool:
        return all(isinstance(s, Identity) for s in self.steps)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        for step in self.steps:
            images = step.forward(images)
        return images

    def inverse(self, probs: torch.Tensor, size: Size) -> torch.Tensor:
        """Probabilities predicted on forward(images) -> the geometry of images of this size."""
        sizes = [tuple(size)]
        for step in self.steps[:-1]:
            sizes.append(step.output_size(sizes[-1]))
        for step, in_size in zip(reversed(self.steps), reversed(sizes)):
            probs = step.inverse(probs, in_size)
        return probs


def _views_none(scales: Sequence[float]) -> list[View]:
    return [View()]


def _views_flip(scales: Sequence[float]) -> list[View]:
    return [View(), View((HFlip(),))]


def _views_flip_scale(scales: Sequence[float]) -> list[View]:
    views = []
    for s in dict.fromkeys(float(s) for s in scales):  # unique, in the given order
        base = () if s == 1.0 else (Scale(s),)
        views += [View(base), View(base + (HFlip(),))]
    return views


TTA_MODES: dict[str, Callable[[Sequence[float]], list[View]]] = {
    "none": _views_none,
    "flip": _views_flip,
    "flip+scale": _views_flip_scale,
}


def build_views(mode: str, scales: Sequence[float] = (0.75, 1.0, 1.25)) -> list[View]:
    """The views of a TTA mode: none | flip | flip+scale (each scale with and without flip)."""
    if mode not in TTA_MODES:
        raise TTAError(f"unknown TTA mode {mode!r}; expected one of {list(TTA_MODES)}")
    views = TTA_MODES[mode](scales)
    if not views:
        raise TTAError(f"TTA mode {mode!r} with scales {list(scales)} gives no views")
    return views


def view_from_name(name: str) -> View:
    """The inverse of View.name: "identity", "hflip", "scale0.75", "scale1.25+hflip", ..."""
    steps: list[Transform] = []
    for part in name.split("+"):
        if part == "identity":
            continue
        if part == "hflip":
            steps.append(HFlip())
        elif part.startswith("scale"):
            try:
                steps.append(Scale(float(part[len("scale") :])))
            except ValueError:
                raise TTAError(f"bad view {name!r}: {part!r} is not scale<factor>") from None
        else:
            raise TTAError(f"unknown view {name!r}; views are identity, hflip, scale<f> joined by '+'")
    return View(tuple(steps))
