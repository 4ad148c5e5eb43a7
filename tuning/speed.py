"""Speed settings of one training run: memory format per encoder, torch.compile, warm-up clock."""

from __future__ import annotations

import math
import os
import statistics
import time

import torch

# Encoders built from depthwise (or MBConv/inverted-residual) convolutions. On one H100 (issue 10,
# torch 2.11 + CUDA 13, 512 px, batch 16) UNet++/efficientnet-b3 with bf16 + channels_last had not
# finished its first epoch after 60 s, while bf16 contiguous ran at 88.6 img/s: cuDNN's
# channels_last depthwise kernels are slow to autotune and slow to run. ResNet-style encoders
# (DeepLabV3+/resnet50, FPN/resnet34) trained normally with channels_last. MiT (Segformer) has a
# depthwise 3x3 conv in every Mix-FFN block, Xception is depthwise-separable, ConvNeXt uses 7x7
# depthwise: all counted here until a measurement says otherwise (benchmarks/gpu_check.sh).
DEPTHWISE_ENCODER_MARKS = (
    "efficientnet",
    "mobilenet",
    "mobileone",
    "mnasnet",
    "mixnet",
    "ghostnet",
    "lcnet",
    "fbnet",
    "convnext",
    "xception",
    "mit_",
)
# torch.compile backend: inductor generates kernels (on a CPU it compiles C++ for minutes: 223 s
# for a small Unet on the 2-core dev box); the tests set aot_eager and `gpu_check --smoke` on a CPU
# eager, which trace the same graphs without generating code.
COMPILE_BACKEND_ENV = "FACEPARSE_COMPILE_BACKEND"


def is_depthwise_encoder(encoder: str) -> bool:
    """True for encoders built mainly from depthwise convolutions (EfficientNet, MobileNet, MiT, ...)."""
    name = encoder.lower()
    return any(mark in name for mark in DEPTHWISE_ENCODER_MARKS)


def memory_format_for(channels_last: bool | str, encoder: str, device: torch.device) -> torch.memory_format:
    """train.channels_last (true | false | auto) -> the memory format for this encoder on this device.

    auto: contiguous for depthwise-conv encoders, channels_last for the rest. CPUs always get
    contiguous (no tensor cores to feed).
    """
    if device.type != "cuda":
        return torch.contiguous_format
    if channels_last == "auto":
        channels_last = not is_depthwise_encoder(encoder)
    return torch.channels_last if channels_last else torch.contiguous_format


def compile_backend() -> str:
    """The torch.compile backend: $FACEPARSE_COMPILE_BACKEND, default inductor."""
    return os.environ.get(COMPILE_BACKEND_ENV, "inductor")


def compile_model(model: torch.nn.Module) -> torch.nn.Module:
    """torch.compile the model in place (nn.Module.compile): its state_dict keys stay unprefixed."""
    model.compile(backend=compile_backend())
    return model


def sync(device: torch.device) -> None:
    """Wait for the device's queued work, so a wall-clock reading includes it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class WarmupClock:
    """Warm-up a run pays: seconds to its first optimizer step, its first epoch against steady ones."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.start = time.perf_counter()
        self.first_step_s = math.nan
        self.epochs: list[float] = []

    def first_step(self) -> None:
        """Call right after the run's first optimizer step (waits for the device)."""
        sync(self.device)
        self.first_step_s = time.perf_counter() - self.start

    def epoch_done(self, seconds: float) -> dict:
        """Record one epoch's seconds; returns first_step_s, first_epoch_s and epoch_s (steady: the
        median of the epochs after the first, NaN until there is one)."""
        self.epochs.append(seconds)
        steady = statistics.median(self.epochs[1:]) if len(self.epochs) > 1 else math.nan
        return {"first_step_s": self.first_step_s, "first_epoch_s": self.epochs[0], "epoch_s": steady}


def pad_batch(images: torch.Tensor, size: int) -> torch.Tensor:
    """images padded with zero images to size along the batch axis (no-op when already that large).

    A short last batch is a new input shape: cuDNN autotunes it again (benchmark mode) and a compiled
    model recompiles; padding keeps one shape and the caller slices the outputs back.
    """
    missing = size - images.shape[0]
    if missing <= 0:
        return images
    pad = images.new_zeros((missing, *images.shape[1:])).contiguous(memory_format=_format_of(images))
    return torch.cat([images, pad])


def _format_of(x: torch.Tensor) -> torch.memory_format:
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format
