"""Ensemble members: build each model of a checked manifest (tuning.manifest) from its safetensors weights."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ensemble.core.bags import BagModel, check_bag_inputs
from tuning.manifest import ManifestEntry, ManifestError, ManifestFile, check_sha256, read_manifest
from tuning.models import build_model, resolve_device
from tuning.speed import memory_format_for

# safetensors files start with a little-endian u64 header length, then that many bytes of JSON.
_MAX_HEADER = 100 * 1024 * 1024


@dataclass
class Member:
    """One trained model of the ensemble and how its inputs are prepared."""

    name: str
    arch: str
    encoder: str
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    model: torch.nn.Module
    val_f1: float | None = None
    trial_id: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    weights_path: Path | None = None
    # A refit bag (ensemble.core.bags): the names of the fold or seed models model averages.
    bag_members: list[str] = field(default_factory=list)

    @property
    def memory_format(self) -> torch.memory_format:
        """Inference layout: training's `auto` rule (contiguous for depthwise encoders, on CPUs)."""
        weight = next(self.model.parameters(), None)  # test doubles may have none
        return memory_format_for(
            "auto", self.encoder, weight.device if weight is not None else torch.device("cpu")
        )

    @property
    def input_spec(self) -> tuple[int, tuple[float, ...], tuple[float, ...]]:
        """Members with the same spec share one prepared input tensor."""
        return (self.image_size, tuple(self.mean), tuple(self.std))


@dataclass
class Manifest:
    path: Path
    classes: list[str]
    members: list[Member]


def load_manifest(path: str | Path, device: str | torch.device = "cpu", *, bags: bool = True) -> Manifest:
    """Check a manifest and every weights file, then build each member in eval mode on device.

    A refit manifest's bags are members (the mean of their models, ensemble.core.bags) unless
    bags=False (each fold or seed model alone: `ensemble fit --oof` runs fold models apart).
    """
    manifest = read_manifest(path)
    device = resolve_device(device)
    members = [_load_member(manifest, entry, device) for entry in manifest.members]
    if bags and manifest.bags:
        members = _bag_members(manifest, members)
    return Manifest(path=manifest.path, classes=list(manifest.classes), members=members)


def _bag_members(manifest: ManifestFile, models: list[Member]) -> list[Member]:
    check_bag_inputs(manifest)
    by_name = {m.name: m for m in models}
    out = []
    for bag in manifest.bags:
        first = by_name[bag.members[0]]
        out.append(
            Member(
                name=bag.name,
                arch=first.arch,
                encoder=first.encoder,
                image_size=first.image_size,
                mean=first.mean,
                std=first.std,
                model=BagModel([by_name[n].model for n in bag.members]).eval(),
                val_f1=bag.val_f1,
                config=first.config,
                bag_members=list(bag.members),
            )
        )
    return out


def _load_member(manifest: ManifestFile, entry: ManifestEntry, device: torch.device) -> Member:
    where = f"{manifest.path}: member {entry.name!r}"
    weights_path = manifest.weights_path(entry)
    state = read_safetensors(weights_path, entry.name)
    try:
        model = build_model(entry.arch, entry.encoder, None)
    except (ValueError, KeyError) as err:
        raise ManifestError(
            f"{where}: cannot build arch {entry.arch!r} / encoder {entry.encoder!r}: {err}"
        ) from None
    check_state_dict(model, state, f"{where} ({weights_path.name})")
    # Last: a file that is truncated or of another model gets the more telling error above.
    check_sha256(weights_path, entry, manifest.path)
    model.load_state_dict(state, strict=True)
    # channels_last stalled UNet++/EfficientNet on an H100 (issue 10): the same per-encoder rule as training.
    model.eval().to(device, memory_format=memory_format_for("auto", entry.encoder, device))
    return Member(
        name=entry.name,
        arch=entry.arch,
        encoder=entry.encoder,
        image_size=entry.image_size,
        mean=entry.mean,
        std=entry.std,
        model=model,
        val_f1=entry.val_f1,
        trial_id=entry.trial_id,
        config=dict(entry.config),
        weights_path=weights_path,
    )


def read_safetensors(path: Path, member: str) -> dict[str, torch.Tensor]:
    """Load a state dict from a safetensors file; anything else (pickles, torch.save zips) is refused.

    The format is sniffed before loading so a pickle renamed .safetensors gets a clear error; a
    pickle is never unpickled (unpickling runs arbitrary code).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    where = f"member {member!r}: weights {path}"
    if not path.is_file():
        raise ManifestError(f"{where}: file not found")
    if path.suffix != ".safetensors":
        raise ManifestError(
            f"{where}: expected a .safetensors file (pickled .pt/.pth/.ckpt weights are refused)"
        )
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(9)
    if head[:4] == b"PK\x03\x04":
        raise ManifestError(
            f"{where}: is a torch.save (zip/pickle) file, not safetensors; pickled weights are refused"
        )
    if head[:1] == b"\x80":
        raise ManifestError(f"{where}: is a pickle, not safetensors; pickled weights are refused")
    if len(head) < 9:
        raise ManifestError(f"{where}: too short ({size} bytes) to be a safetensors file")
    header_len = struct.unpack("<Q", head[:8])[0]
    if header_len > min(_MAX_HEADER, size - 8) or head[8:9] != b"{":
        raise ManifestError(
            f"{where}: not a safetensors file (bad header: length {header_len}, "
            f"file {size} bytes); it may be truncated or tampered with"
        )
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise ManifestError(
            f"{where}: unreadable safetensors file ({err}); it may be truncated or tampered with"
        ) from None
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ManifestError(f"{where}: non-finite values (NaN/inf) in {bad[:3]}")
    return state


def check_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Raise naming the first missing, unexpected and wrongly shaped keys (strict load)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s) e.g. {missing[:3]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s) e.g. {unexpected[:3]}")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatch(es) e.g. {shapes[:3]}")
    if problems:
        raise ManifestError(f"{where}: weights do not match the architecture: " + "; ".join(problems))
