"""Weighted softmax averaging of every member over every TTA view, one accumulator per batch.

Members may differ in image_size/mean/std. Each image is decoded once in a DataLoader worker and
prepared once per distinct (image_size, mean, std) spec there (resizing and normalising are
CPU work that parallelises across workers); members sharing a spec share that tensor. Each
member's probabilities are resized to the largest member size (the "model resolution") before
they are added, so one float32 accumulator holds the ensemble. At the end the averaged
probabilities (not labels) are resized to each image's own size, so argmax sees smooth
boundaries instead of blocky upsampled labels.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from configs import NUM_CLASSES
from data_prep.layout import fit_pixels, read_rgb
from ensemble.core.inputs import ImageItem
from ensemble.core.members import Member
from ensemble.core.tta import View, resize_bilinear

InputSpec = tuple[int, tuple[float, ...], tuple[float, ...]]


@dataclass
class Prediction:
    """The ensemble's output for one image."""

    index: int  # position in the list of items given to predict()
    stem: str
    path: Path
    size: tuple[int, int]  # (H, W) of the original image
    # (C, H, W) float32 on the device that ran the members: weighted average over members and
    # views at the image's own size. It stays there: post-processing starts on that device.
    probs: torch.Tensor
    # With track_stages: label maps (H, W) uint8 for "member:NAME" (each alone, no TTA) and
    # "ensemble" (members averaged, no TTA).
    stage_labels: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Timings:
    """Seconds spent in the members' bare forward passes (per member) and images seen."""

    forward_s: dict[str, float] = field(default_factory=dict)
    images: int = 0

    @property
    def forward_total_s(self) -> float:
        return float(sum(self.forward_s.values()))


def prepare_input(image: np.ndarray, spec: InputSpec) -> torch.Tensor:
    """RGB uint8 (H, W, 3) -> normalised float32 (3, S, S) for one member spec."""
    size, mean, std = spec
    h, w = image.shape[:2]
    if (h, w) != (size, size):
        # INTER_AREA when shrinking: averaging keeps thin parts that linear sampling skips.
        interp = cv2.INTER_AREA if size < h or size < w else cv2.INTER_LINEAR
        image = cv2.resize(image, (size, size), interpolation=interp)
    x = image.astype(np.float32) / 255.0
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


class _ModelInputDataset(Dataset):
    """Decodes each image once and prepares the model input for every distinct member spec."""

    def __init__(self, items: Sequence[ImageItem], specs: Sequence[InputSpec], max_pixels: int | None = None):
        self.items = list(items)
        self.specs = list(specs)
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        image = fit_pixels(read_rgb(self.items[i].path), self.max_pixels)
        size = torch.tensor(image.shape[:2], dtype=torch.int64)
        return i, size, tuple(prepare_input(image, spec) for spec in self.specs)


def make_loader(
    items: Sequence[ImageItem],
    specs: Sequence[InputSpec],
    batch_size: int,
    num_workers: int,
    device: torch.device,
    max_pixels: int | None = None,
) -> DataLoader:
    # No cv2.setNumThreads in the workers: after a fork it waits forever on the parent's pool.
    return DataLoader(
        _ModelInputDataset(items, specs, max_pixels),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
    )


def distinct_specs(members: Sequence[Member]) -> tuple[list[InputSpec], list[int]]:
    """Distinct input specs and, per member, the index of its spec."""
    specs: list[InputSpec] = []
    index = []
    for m in members:
        if m.input_spec not in specs:
            specs.append(m.input_spec)
        index.append(specs.index(m.input_spec))
    return specs, index


class _ForwardTimer:
    """Times bare forward passes: CUDA events on GPU (no sync per call), wall clock on CPU."""

    def __init__(self, device: torch.device, timings: Timings):
        self.cuda = device.type == "cuda"
        self.timings = timings
        self.pending: list[tuple[str, torch.cuda.Event, torch.cuda.Event]] = []

    def run(self, name: str, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            with torch.autocast("cuda", dtype=torch.bfloat16):
                out = model(x)
            end.record()
            self.pending.append((name, start, end))
            return out
        t0 = time.perf_counter()
        out = model(x)
        self._add(name, time.perf_counter() - t0)
        return out

    def flush(self) -> None:
        if self.pending:
            torch.cuda.synchronize()
            for name, start, end in self.pending:
                self._add(name, start.elapsed_time(end) / 1000.0)
            self.pending.clear()

    def _add(self, name: str, seconds: float) -> None:
        self.timings.forward_s[name] = self.timings.forward_s.get(name, 0.0) + seconds


def grouped_view_probs(
    member: Member, x: torch.Tensor, views: Sequence[View], timer: _ForwardTimer
) -> Iterator[tuple[int, torch.Tensor]]:
    """(view index, probabilities mapped back to x's geometry) for every view.

    Views whose inputs have one shape (identity and flip; each scale with its flip) are
    stacked into one forward pass: fewer, larger batches keep the accelerator busy.
    """
    inputs = [view.forward(x) for view in views]
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, t in enumerate(inputs):
        groups.setdefault(tuple(t.shape[-2:]), []).append(i)
    size = tuple(x.shape[-2:])
    for members_of_group in groups.values():
        stacked = (
            torch.cat([inputs[i] for i in members_of_group])
            if len(members_of_group) > 1
            else inputs[members_of_group[0]]
        )
        stacked = stacked.contiguous(memory_format=member.memory_format)  # the layout its weights are in
        probs = torch.softmax(timer.run(member.name, member.model, stacked).float(), dim=1)
        for i, chunk in zip(members_of_group, probs.split(x.shape[0])):
            yield i, views[i].inverse(chunk, size)


def _to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    return x.to(device, non_blocking=True)


def predict(
    members: Sequence[Member],
    weights: Sequence[float],
    items: Sequence[ImageItem],
    views: Sequence[View],
    device: torch.device | str = "cpu",
    batch_size: int = 4,
    num_workers: int = 0,
    track_stages: bool = False,
    timings: Timings | None = None,
    progress: bool = True,
    max_pixels: int | None = None,
) -> Iterator[Prediction]:
    """Yield one Prediction per item, in order: probabilities averaged over members and views.

    weights: one per member (normalised here). track_stages adds each member's and the
    no-TTA ensemble's label maps (for the report), computed in the same pass. Images above
    max_pixels are predicted shrunk (data_prep.layout.fit_pixels): size is then the shrunk size.
    """
    device = torch.device(device)
    w, timings, timer, specs, spec_of, res = _setup(members, weights, views, device, timings)
    # The stages need every member's plain (identity) prediction; run it even when the TTA
    # views leave it out (flip+scale without 1.0) but keep it out of the TTA average.
    has_identity = any(v.is_identity for v in views)
    run_views = list(views) + ([View()] if track_stages and not has_identity else [])
    loader = make_loader(items, specs, batch_size, num_workers, device, max_pixels)
    for index, sizes, inputs in tqdm(loader, desc="ensemble", unit="batch", disable=not progress):
        # Compute the batch under inference_mode, yield outside it: a generator suspended inside
        # the context would leave inference mode switched on in the caller's code.
        with torch.inference_mode():
            batch = _predict_batch(
                members,
                w,
                views,
                run_views,
                spec_of,
                res,
                track_stages,
                timer,
                index.tolist(),
                sizes.tolist(),
                inputs,
                items,
                device,
            )
        timings.images += len(batch)
        yield from batch


def _setup(members, weights, views, device, timings):
    """Normalised weights, timings, forward timer, distinct input specs, model resolution."""
    timings = timings if timings is not None else Timings()
    specs, spec_of = distinct_specs(members)
    res = max(m.image_size for m in members)
    return (
        _normalised_weights(members, weights, views),
        timings,
        _ForwardTimer(device, timings),
        specs,
        spec_of,
        res,
    )


def _normalised_weights(
    members: Sequence[Member], weights: Sequence[float], views: Sequence[View]
) -> np.ndarray:
    if len(weights) != len(members):
        raise ValueError(f"{len(weights)} weights for {len(members)} members")
    w = np.asarray(weights, dtype=np.float64)
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"member weights must be >= 0 with a positive sum, got {list(weights)}")
    if not views:
        raise ValueError("no TTA views given")
    return w / w.sum()


def predict_arrays(
    members: Sequence[Member],
    weights: Sequence[float],
    images: Sequence[np.ndarray],
    views: Sequence[View],
    device: torch.device | str = "cpu",
    batch_size: int = 4,
    timings: Timings | None = None,
) -> list[torch.Tensor]:
    """predict() for in-memory RGB uint8 images: (C, H, W) probabilities at each image's size."""
    device = torch.device(device)
    w, timings, timer, specs, spec_of, res = _setup(members, weights, views, device, timings)
    out: list[torch.Tensor] = []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        inputs = [torch.stack([prepare_input(image, spec) for image in chunk]) for spec in specs]
        items = [ImageItem(f"array{start + i}", Path(f"array{start + i}")) for i in range(len(chunk))]
        sizes = [list(image.shape[:2]) for image in chunk]
        with torch.inference_mode():
            batch = _predict_batch(
                members,
                w,
                views,
                views,
                spec_of,
                res,
                False,
                timer,
                list(range(len(chunk))),
                sizes,
                inputs,
                items,
                device,
            )
        timings.images += len(batch)
        out += [pred.probs for pred in batch]
    return out


def _predict_batch(
    members, w, views, run_views, spec_of, res, track_stages, timer, index, sizes, inputs, items, device
) -> list[Prediction]:
    """Every member on every view of one batch, summed into one float32 accumulator."""
    n = len(index)
    inputs = [_to_device(x, device) for x in inputs]
    acc = torch.zeros(n, NUM_CLASSES, res, res, dtype=torch.float32, device=device)
    plain = torch.zeros_like(acc) if track_stages else None
    stage_labels: list[dict[str, np.ndarray]] = [{} for _ in range(n)]
    for m, member in enumerate(members):
        x = inputs[spec_of[m]]
        for vi, p in grouped_view_probs(member, x, run_views, timer):
            view = run_views[vi]
            p = resize_bilinear(p, (res, res))
            if vi < len(views):
                acc.add_(p, alpha=float(w[m]) / len(views))
            if track_stages and view.is_identity:
                plain.add_(p, alpha=float(w[m]))
                for i, labels in enumerate(_labels_at(p, sizes)):
                    stage_labels[i][f"member:{member.name}"] = labels
            del p
    timer.flush()
    if track_stages:
        for i, labels in enumerate(_labels_at(plain, sizes)):
            stage_labels[i]["ensemble"] = labels
    out = []
    for i, k in enumerate(index):
        probs = resize_bilinear(acc[i : i + 1], sizes[i])[0]
        out.append(
            Prediction(
                index=k,
                stem=items[k].stem,
                path=items[k].path,
                size=(int(sizes[i][0]), int(sizes[i][1])),
                probs=probs,
                stage_labels=stage_labels[i],
            )
        )
    return out


def _labels_at(probs: torch.Tensor, sizes: list[list[int]]) -> Iterator[np.ndarray]:
    """Argmax label maps at each image's own size (probabilities resized first)."""
    for i, size in enumerate(sizes):
        yield resize_bilinear(probs[i : i + 1], size)[0].argmax(0).to(torch.uint8).cpu().numpy()


def predict_probs(
    members: Sequence[Member],
    weights: Sequence[float],
    items: Sequence[ImageItem],
    views: Sequence[View],
    device: torch.device | str = "cpu",
    batch_size: int = 4,
    num_workers: int = 0,
    progress: bool = True,
) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (stem, probabilities (C, H, W) float32 at the image's own size) per item, in order."""
    for pred in predict(members, weights, items, views, device, batch_size, num_workers, progress=progress):
        yield pred.stem, pred.probs.cpu().numpy()


def candidate_view_probs(
    members: Sequence[Member],
    items: Sequence[ImageItem],
    views: Sequence[View],
    resolution: int,
    device: torch.device | str = "cpu",
    batch_size: int = 4,
    num_workers: int = 0,
    progress: bool = True,
) -> torch.Tensor:
    """Every member's probabilities under every view at resolution r: (M, V, N, C, r, r) float16, CPU.

    One pass over a labelled split; selection then scores combinations without running models
    (ensemble.fit.candidate_cache states the memory this takes).
    """
    device = torch.device(device)
    r = resolution
    specs, spec_of = distinct_specs(members)
    timer = _ForwardTimer(device, Timings())
    out = torch.zeros(len(members), len(views), len(items), NUM_CLASSES, r, r, dtype=torch.float16)
    loader = make_loader(items, specs, batch_size, num_workers, device)
    with torch.inference_mode():
        for index, _, inputs in tqdm(
            loader, desc="candidates' probabilities", unit="batch", disable=not progress
        ):
            inputs = [_to_device(x, device) for x in inputs]
            for m, member in enumerate(members):
                for v, p in grouped_view_probs(member, inputs[spec_of[m]], views, timer):
                    out[m, v, index] = resize_bilinear(p, (r, r)).half().cpu()
            timer.flush()
    return out
