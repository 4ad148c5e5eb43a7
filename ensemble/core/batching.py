"""Batches for the Ensemble (ensemble.core.inference): decoded, prepared inputs and timed forwards.

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

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from data_prep.layout import fit_pixels, read_rgb
from ensemble.core.inputs import ImageItem
from ensemble.core.members import Member
from ensemble.core.tta import View, resize_bilinear

InputSpec = tuple[int, tuple[float, ...], tuple[float, ...]]


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
    """Decodes each image once (or takes it as given: RGB uint8 arrays) and prepares the model input
    for every distinct member spec."""

    def __init__(
        self,
        items: Sequence[ImageItem | np.ndarray],
        specs: Sequence[InputSpec],
        max_pixels: int | None = None,
    ):
        self.items = list(items)
        self.specs = list(specs)
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        item = self.items[i]
        image = item if isinstance(item, np.ndarray) else read_rgb(item.path)
        image = fit_pixels(image, self.max_pixels)
        size = torch.tensor(image.shape[:2], dtype=torch.int64)
        return i, size, tuple(prepare_input(image, spec) for spec in self.specs)


def make_loader(
    items: Sequence[ImageItem | np.ndarray],
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


class ForwardTimer:
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
    member: Member, x: torch.Tensor, views: Sequence[View], timer: ForwardTimer
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


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    return x.to(device, non_blocking=True)


def labels_at(probs: torch.Tensor, sizes: list[list[int]]) -> Iterator[np.ndarray]:
    """Argmax label maps at each image's own size (probabilities resized first)."""
    for i, size in enumerate(sizes):
        yield resize_bilinear(probs[i : i + 1], size)[0].argmax(0).to(torch.uint8).cpu().numpy()
