"""Ensemble members: read and check a manifest, load each model from its safetensors weights."""
from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from configs import CLASSES
from tuning import models
from tuning.models import build_model

MANIFEST_FORMAT = 1
REQUIRED_KEYS = ("name", "arch", "encoder", "image_size", "mean", "std", "weights")
# safetensors files start with a little-endian u64 header length, then that many bytes of JSON.
_MAX_HEADER = 100 * 1024 * 1024


class ManifestError(ValueError):
    """A manifest or weights file that is missing, malformed, tampered with or not safetensors."""


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

    @property
    def input_spec(self) -> tuple[int, tuple[float, ...], tuple[float, ...]]:
        """Members with the same spec share one prepared input tensor."""
        return (self.image_size, tuple(self.mean), tuple(self.std))


@dataclass
class Manifest:
    path: Path
    classes: list[str]
    members: list[Member]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' -> cuda when available, else cpu (tuning.models.resolve_device, as a ManifestError)."""
    try:
        return models.resolve_device(device)
    except ValueError as err:
        raise ManifestError(str(err)) from None


def load_manifest(path: str | Path, device: str | torch.device = "cpu") -> Manifest:
    """Check a manifest and every weights file, then build each member in eval mode on device."""
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.json"
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ManifestError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(raw, dict):
        raise ManifestError(f"{path}: expected a JSON object with format, classes and members")
    if raw.get("format") != MANIFEST_FORMAT:
        raise ManifestError(f"{path}: format {raw.get('format')!r} is not supported; expected {MANIFEST_FORMAT}")
    if list(raw.get("classes") or []) != list(CLASSES):
        raise ManifestError(f"{path}: classes {raw.get('classes')!r} differ from the class table; "
                            f"expected the {len(CLASSES)} names {list(CLASSES)}")
    entries = raw.get("members")
    if not isinstance(entries, list) or not entries:
        raise ManifestError(f"{path}: 'members' must be a non-empty list")
    names = [e.get("name") if isinstance(e, dict) else None for e in entries]
    dupes = sorted({n for n in names if n is not None and names.count(n) > 1})
    if dupes:
        raise ManifestError(f"{path}: member names must be unique; repeated: {dupes}")
    device = resolve_device(device)
    members = [_load_member(path, i, e, device) for i, e in enumerate(entries)]
    return Manifest(path=path, classes=list(raw["classes"]), members=members)


def _load_member(manifest: Path, index: int, entry: Any, device: torch.device) -> Member:
    where = f"{manifest}: members[{index}]"
    if not isinstance(entry, dict):
        raise ManifestError(f"{where}: expected an object")
    missing = [k for k in REQUIRED_KEYS if k not in entry]
    if missing:
        raise ManifestError(f"{where}: missing key(s) {missing}")
    name = str(entry["name"])
    where = f"{manifest}: member {name!r}"
    size = entry["image_size"]
    if not isinstance(size, int) or size < 32 or size % 32:
        raise ManifestError(f"{where}: image_size must be a multiple of 32 (>= 32), got {size!r}")
    mean, std = _triple(entry["mean"], where, "mean"), _triple(entry["std"], where, "std")
    if min(std) <= 0:
        raise ManifestError(f"{where}: std must be positive, got {std}")
    weights_path = manifest.parent / str(entry["weights"])
    state = read_safetensors(weights_path, name, expected_sha256=entry.get("sha256"))
    try:
        model = build_model(entry["arch"], entry["encoder"], None)
    except (ValueError, KeyError) as err:
        raise ManifestError(f"{where}: cannot build arch {entry['arch']!r} / encoder "
                            f"{entry['encoder']!r}: {err}") from None
    check_state_dict(model, state, f"{where} ({weights_path.name})")
    model.load_state_dict(state, strict=True)
    model.eval().to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    val_f1 = entry.get("val_f1")
    return Member(name=name, arch=entry["arch"], encoder=entry["encoder"], image_size=size,
                  mean=mean, std=std, model=model,
                  val_f1=float(val_f1) if isinstance(val_f1, (int, float)) else None,
                  trial_id=None if entry.get("trial_id") is None else str(entry["trial_id"]),
                  config=entry.get("config") or {}, weights_path=weights_path)


def _triple(value: Any, where: str, key: str) -> tuple[float, float, float]:
    if (not isinstance(value, (list, tuple)) or len(value) != 3
            or not all(isinstance(v, (int, float)) for v in value)):
        raise ManifestError(f"{where}: {key} must be 3 numbers (RGB), got {value!r}")
    return tuple(float(v) for v in value)  # type: ignore[return-value]


def read_safetensors(path: Path, member: str, expected_sha256: str | None = None) -> dict[str, torch.Tensor]:
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
        raise ManifestError(f"{where}: expected a .safetensors file (pickled .pt/.pth/.ckpt weights are refused)")
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(9)
    if head[:4] == b"PK\x03\x04":
        raise ManifestError(f"{where}: is a torch.save (zip/pickle) file, not safetensors; "
                            f"pickled weights are refused")
    if head[:1] == b"\x80":
        raise ManifestError(f"{where}: is a pickle, not safetensors; pickled weights are refused")
    if len(head) < 9:
        raise ManifestError(f"{where}: too short ({size} bytes) to be a safetensors file")
    header_len = struct.unpack("<Q", head[:8])[0]
    if header_len > min(_MAX_HEADER, size - 8) or head[8:9] != b"{":
        raise ManifestError(f"{where}: not a safetensors file (bad header: length {header_len}, "
                            f"file {size} bytes); it may be truncated or tampered with")
    if expected_sha256:
        digest = _sha256(path)
        if digest != expected_sha256:
            raise ManifestError(f"{where}: sha256 {digest[:12]}... does not match the manifest's "
                                f"{expected_sha256[:12]}...; the file was changed")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise ManifestError(f"{where}: unreadable safetensors file ({err}); "
                            f"it may be truncated or tampered with") from None
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ManifestError(f"{where}: non-finite values (NaN/inf) in {bad[:3]}")
    return state


def check_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Raise naming the first missing, unexpected and wrongly shaped keys (strict load)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
              for k, v in expected.items() if k in state and state[k].shape != v.shape]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s) e.g. {missing[:3]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s) e.g. {unexpected[:3]}")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatch(es) e.g. {shapes[:3]}")
    if problems:
        raise ManifestError(f"{where}: weights do not match the architecture: " + "; ".join(problems))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
