"""Post-processing of averaged probabilities and label maps: a registry of steps, each switchable.

Probability steps (smoothing, dense CRF) run first, as torch ops where the probabilities are (a
GPU keeps them), then argmax; only uint8 maps (and a float map for GrabCut) go to the CPU, where
the label steps (GrabCut, stray-component removal, hole filling) run, always in STEPS order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from configs import CLASS_ID, NUM_CLASSES
from configs.errors import FaceParseError
from configs.schema import PostprocessConfig
from data_prep.layout import read_rgb
from ensemble.postprocess.face_steps import FACE_STEPS


class PostprocessError(FaceParseError):
    """A post-processing step that cannot run (e.g. a missing optional package)."""


# Parts a face has exactly one of: anything beyond the largest blob (and blobs of similar size,
# e.g. a lip cut in two) is a stray prediction.
SINGLE_INSTANCE = tuple(
    CLASS_ID[n]
    for n in ("nose", "mouth", "u_lip", "l_lip", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear")
)
# Parts that contain nothing else: any region they enclose is theirs. Ears are left out (an
# earring sits inside an ear), and so are skin and hair (eyes sit inside skin, ears in hair).
SOLID_PARTS = tuple(
    CLASS_ID[n] for n in ("nose", "l_eye", "r_eye", "l_brow", "r_brow", "mouth", "u_lip", "l_lip")
)
# ...except these pairs, which do sit inside one another (a mouth between lips drawn as one).
MAY_ENCLOSE = {
    CLASS_ID["u_lip"]: (CLASS_ID["mouth"], CLASS_ID["l_lip"]),
    CLASS_ID["l_lip"]: (CLASS_ID["mouth"], CLASS_ID["u_lip"]),
    CLASS_ID["mouth"]: (CLASS_ID["u_lip"], CLASS_ID["l_lip"]),
}


@dataclass
class Context:
    """What the label steps work on: the label map and, computed once on the probabilities'
    device, only the per-pixel facts the enabled steps need (never the (C, H, W) tensor)."""

    labels: np.ndarray  # (H, W) uint8, edited in place by the label steps
    top2: np.ndarray | None = None  # (2, H, W) uint8: best and second-best class per pixel
    foreground: np.ndarray | None = None  # (H, W) float32: 1 - p(background)
    face_best: np.ndarray | None = None  # (H, W) uint8: the most likely face class (1..18)
    image_path: Path | None = None
    faces: list | None = None  # detected faces (ensemble.faces.detect.Face) for the face steps
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


def argmax_labels(probs: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(probs, torch.Tensor):
        return probs.argmax(0).to(torch.uint8).cpu().numpy()
    return probs.argmax(0).astype(np.uint8)


class Step:
    name = "step"
    stage = (
        "labels"  # "probs": maps (C, H, W) probabilities (a tensor) before argmax; "labels": edits ctx.labels
    )
    needs: tuple[str, ...] = ()  # Context fields a label step reads: "top2", "foreground", "face_best"

    @property
    def label(self) -> str:
        return self.name

    def __call__(self, ctx: Context) -> None:
        raise NotImplementedError

    def apply(self, probs: torch.Tensor, image_path: Path | None) -> torch.Tensor:
        """A probability step: new (C, H, W) probabilities on probs' device."""
        raise NotImplementedError


class GaussianSmooth(Step):
    """Gaussian blur of every class's probability map (sigma in output pixels).

    A separable depthwise convolution in torch, on whatever device holds the probabilities:
    on a GPU the (C, H, W) maps never leave it. Borders reflect (without repeating the edge).
    """

    name = "gaussian"
    stage = "probs"

    def __init__(self, sigma: float = 1.0):
        self.sigma = float(sigma)

    @property
    def label(self) -> str:
        return f"gaussian(sigma={self.sigma:g})"

    def apply(self, probs: torch.Tensor, image_path: Path | None = None) -> torch.Tensor:
        if self.sigma <= 0:
            return probs
        c, h, w = probs.shape
        radius = max(1, math.ceil(4 * self.sigma))
        x = torch.arange(-radius, radius + 1, dtype=probs.dtype, device=probs.device)
        kernel = torch.exp(-0.5 * (x / self.sigma) ** 2)
        kernel = kernel / kernel.sum()
        out = probs.unsqueeze(0)
        # Reflect needs the pad to be smaller than the side; tiny maps fall back to replicate.
        mode = "reflect" if radius < min(h, w) else "replicate"
        out = F.pad(out, (radius, radius, 0, 0), mode=mode)
        out = F.conv2d(out, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
        out = F.pad(out, (0, 0, radius, radius), mode=mode)
        out = F.conv2d(out, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
        return out[0]


class DenseCRF(Step):
    """Fully connected CRF (Kraehenbuehl & Koltun) on the probabilities; optional extra (CPU only)."""

    name = "crf"
    stage = "probs"

    def __init__(self, iterations: int = 5):
        try:
            import pydensecrf.densecrf as dcrf
            from pydensecrf.utils import unary_from_softmax
        except ImportError:
            raise PostprocessError(
                "dense CRF needs the optional package pydensecrf2: pip install '.[crf]' (or turn crf off)"
            ) from None
        self.dcrf, self.unary_from_softmax, self.iterations = dcrf, unary_from_softmax, iterations

    def apply(self, probs: torch.Tensor, image_path: Path | None = None) -> torch.Tensor:
        c, h, w = probs.shape
        image = Context(labels=np.zeros((h, w), np.uint8), image_path=image_path).image()
        p = probs.float().cpu().numpy()
        crf = self.dcrf.DenseCRF2D(w, h, c)
        crf.setUnaryEnergy(np.ascontiguousarray(self.unary_from_softmax(p)))
        crf.addPairwiseGaussian(sxy=3, compat=3)
        crf.addPairwiseBilateral(sxy=50, srgb=13, rgbim=np.ascontiguousarray(image), compat=5)
        out = np.asarray(crf.inference(self.iterations), dtype=np.float32).reshape(c, h, w)
        return torch.from_numpy(out).to(probs.device)


class GrabCut(Step):
    """OpenCV GrabCut on the face-vs-background boundary, seeded from the probabilities."""

    name = "grabcut"
    needs = ("foreground", "face_best")

    def __init__(self, iterations: int = 3, sure: float = 0.95):
        self.iterations, self.sure = iterations, sure

    def __call__(self, ctx: Context) -> None:
        fg = ctx.foreground
        mask = np.where(fg >= 0.5, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
        mask[fg > self.sure] = cv2.GC_FGD
        mask[fg < 1.0 - self.sure] = cv2.GC_BGD
        is_fg = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
        if is_fg.all() or not is_fg.any():
            return  # GrabCut needs samples of both sides
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        bgr = cv2.cvtColor(ctx.image(), cv2.COLOR_RGB2BGR)
        try:
            cv2.grabCut(bgr, mask, None, bgd, fgd, self.iterations, cv2.GC_INIT_WITH_MASK)
        except cv2.error:
            return  # too few samples for its colour models: keep the labels as they are
        is_fg = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
        labels = ctx.labels
        labels[~is_fg] = 0
        grown = is_fg & (labels == 0)
        if grown.any():
            labels[grown] = ctx.face_best[grown]  # the most likely face class there


class RemoveSmall(Step):
    """Keep the largest blob of each single-instance part; relabel blobs under a fraction of it."""

    name = "remove_small"
    needs = ("top2",)

    def __init__(self, min_fraction: float = 0.2):
        self.min_fraction = float(min_fraction)

    def __call__(self, ctx: Context) -> None:
        labels = ctx.labels
        for c in SINGLE_INSTANCE:
            mask = (labels == c).view(np.uint8)
            if not mask.any():
                continue
            n, cc, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
            if n <= 2:
                continue
            areas = stats[1:, cv2.CC_STAT_AREA]
            drop_ids = 1 + np.flatnonzero(areas < self.min_fraction * areas.max())
            if not drop_ids.size:
                continue
            drop = np.isin(cc, drop_ids)
            best, second = ctx.top2[0][drop], ctx.top2[1][drop]
            labels[drop] = np.where(best == c, second, best)  # the best other class there


class FillHoles(Step):
    """Fill regions enclosed by one class: background holes (small) and anything in solid parts.

    A region is enclosed by class e when it does not touch the image border and every pixel
    around it is e (4-connected). Enclosed background is a hole in e when it is at most
    max_fraction of e's area (a large enclosed background can be real, e.g. a loop of hair).
    Solid parts (nose, eyes, brows, lips, mouth) contain nothing else, so any region they
    enclose is filled, except lips/mouth inside one another.
    """

    name = "fill_holes"

    def __init__(self, max_fraction: float = 0.1):
        self.max_fraction = float(max_fraction)

    def __call__(self, ctx: Context) -> None:
        labels = ctx.labels
        for e in range(1, NUM_CLASSES):
            mask = labels == e
            rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
            if rows.size < 3 or cols.size < 3:
                continue
            crop = labels[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]  # a view: edits land in labels
            inside = crop == e
            # Pad with "not e" so every region that reaches the crop's edge joins one outer region.
            other = np.pad(~inside, 1, constant_values=True).view(np.uint8)
            n, cc, stats, _ = cv2.connectedComponentsWithStats(other, connectivity=4)
            if n <= 2:
                continue
            inner = cc[1:-1, 1:-1]
            fill = np.ones(n, dtype=bool)
            fill[0] = False  # label 0 is e itself
            fill[cc[0, 0]] = False  # the outer region
            if e in SOLID_PARTS:
                kept = np.isin(crop, MAY_ENCLOSE.get(e, ()))
                fill &= np.bincount(inner.ravel(), weights=kept.ravel(), minlength=n) == 0
            else:
                area = stats[:, cv2.CC_STAT_AREA]
                bg = np.bincount(inner.ravel(), weights=(crop == 0).ravel(), minlength=n)
                fill &= (bg == area) & (area <= self.max_fraction * inside.sum())
            if fill.any():
                crop[fill[inner]] = e


# Probability smoothers, picked by PostprocessConfig.smooth ("none" = no smoothing).
SMOOTHERS: dict[str, Callable[[PostprocessConfig], Step]] = {
    "gaussian": lambda cfg: GaussianSmooth(cfg.sigma),
}

# Every step, in the order they run; each is switched on by its own config field.
STEPS: dict[str, Callable[[PostprocessConfig], Step | None]] = {
    "smooth": lambda cfg: SMOOTHERS[cfg.smooth](cfg) if cfg.smooth != "none" and cfg.sigma > 0 else None,
    "crf": lambda cfg: DenseCRF() if cfg.crf else None,
    "grabcut": lambda cfg: GrabCut() if cfg.grabcut else None,
    "remove_small": lambda cfg: RemoveSmall(cfg.min_component_fraction) if cfg.remove_small else None,
    "fill_holes": lambda cfg: FillHoles() if cfg.fill_holes else None,
    **FACE_STEPS,  # detection-based: face_clip, glasses_to_skin, eye_repair (ensemble.postprocess.face_steps)
}


def build_steps(cfg: PostprocessConfig) -> list[Step]:
    """The enabled steps in run order (raises PostprocessError early, e.g. CRF without its package)."""
    steps = [make(cfg) for make in STEPS.values()]
    steps = [s for s in steps if s is not None]
    # Probability steps must precede the argmax; keep the registry order within each stage.
    return [s for s in steps if s.stage == "probs"] + [s for s in steps if s.stage == "labels"]


@dataclass
class ProbabilityResult:
    """What leaves the probabilities' device: the label map and the facts the label steps need."""

    context: Context
    stage_labels: list[tuple[Step, np.ndarray]]  # labels after each probability step


def probability_stage(
    probs: torch.Tensor, steps: list[Step], image_path: Path | None = None, track: bool = False
) -> ProbabilityResult:
    """Run the probability steps where probs live (GPU or CPU); return small CPU arrays only."""
    seen = []
    for step in steps:
        if step.stage == "probs":
            probs = step.apply(probs, image_path)
            if track:
                seen.append((step, argmax_labels(probs)))
    needs = {n for step in steps if step.stage == "labels" for n in step.needs}
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
    """Run the label steps (CPU: components, holes, GrabCut) on ctx.labels; returns them."""
    for step in steps:
        if step.stage == "labels":
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
    result = probability_stage(torch.as_tensor(probs), steps, image_path, track=on_step is not None)
    for step, labels in result.stage_labels:
        on_step(step, labels)
    return label_stage(result.context, steps, on_step)
