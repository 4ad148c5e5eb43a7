"""Build any segmentation-models-pytorch architecture/encoder pair with 19 output classes.

Pretrained encoder weights are fetched by tuning.pretrained (cache first, fail fast offline);
the model is built here from the local file.
"""

from __future__ import annotations

from pathlib import Path

import segmentation_models_pytorch as smp
import timm
import torch
from safetensors.torch import load_file

from configs import NUM_CLASSES
from configs.errors import ConfigError, FaceParseError
from configs.schema import RunConfig
from tuning.pretrained import (
    WeightsUnavailableError,  # noqa: F401 (re-exported: callers catch it from here)
    fetch_encoder_weights,
    prefetch_weights,  # noqa: F401 (re-exported: `python -m tuning prefetch-weights` imports it from here)
    timm_model_name,
)


def architectures() -> list[str]:
    """smp architecture names (as the classes spell them: Unet, FPN, DeepLabV3Plus, ...)."""
    return sorted({cls.__name__ for cls in smp.MODEL_ARCHITECTURES_MAPPING.values()})


def encoders() -> list[str]:
    """smp's own encoder names; any timm model also works as 'tu-<timm name>'."""
    return sorted(smp.encoders.get_encoder_names())


def check_model_names(arch: str, encoder: str, encoder_weights: str | None = None) -> None:
    """Raise ConfigError listing the valid names when arch, encoder or weights are unknown."""
    if arch.lower() not in smp.MODEL_ARCHITECTURES_MAPPING:
        raise ConfigError(
            f"model.arch {arch!r} is not an smp architecture; expected one of {architectures()}"
        )
    if smp.encoders.is_equivalent_to_timm_universal(encoder):
        return  # deprecated 'timm-' names smp maps to 'tu-' itself
    if encoder.startswith("tu-"):
        base = encoder[3:].split(".")[0]
        if not timm.is_model(base):
            raise ConfigError(
                f"model.encoder {encoder!r}: {base!r} is not a timm model "
                "(see timm.list_models(); smp names need no 'tu-' prefix)"
            )
        return
    if encoder not in smp.encoders.encoders:
        raise ConfigError(
            f"model.encoder {encoder!r} is not an smp encoder; expected one of {encoders()} "
            "or 'tu-<timm model name>'"
        )
    if encoder_weights is not None:
        available = list(smp.encoders.encoders[encoder]["pretrained_settings"])
        if encoder_weights not in available:
            raise ConfigError(
                f"model.encoder_weights {encoder_weights!r} does not exist for encoder "
                f"{encoder!r}; expected one of {available} or null"
            )


def search_space_errors(cfg: RunConfig) -> list[str]:
    """One line per architecture, encoder or encoder_weights of search.archs that smp does not know."""
    errors = []
    for arch, encoder in ((a, e) for a, encs in cfg.search.archs.items() for e in encs):
        key = f"search.archs.{arch}"
        try:
            check_model_names(arch, encoder, cfg.model.encoder_weights)
        except ConfigError as err:
            errors.append(f"{key}: {err}")
    return list(dict.fromkeys(errors))  # an unknown arch is named once, not once per encoder


def build_model(
    arch: str,
    encoder: str,
    encoder_weights: str | None = None,
    num_classes: int = NUM_CLASSES,
    weights_cache: str | Path | None = None,
) -> torch.nn.Module:
    """smp.create_model(arch, encoder, classes=19); raises ConfigError naming a bad arch/encoder.

    With encoder_weights the weights come from the local cache (weights_cache, else the default
    HF cache), else from the hub; if neither works this fails within seconds with
    WeightsUnavailableError saying how to fix it.
    """
    check_model_names(arch, encoder, encoder_weights)
    if encoder_weights is None:
        return _create_checked(arch, encoder, num_classes)
    weights_file = fetch_encoder_weights(encoder, encoder_weights, weights_cache)
    if timm_model_name(encoder) is not None:
        # smp hands extra keywords to timm.create_model; timm's documented override for loading
        # pretrained weights from a local file is pretrained_cfg_overlay=dict(file=...).
        return _create_checked(
            arch,
            encoder,
            num_classes,
            encoder_weights=True,
            pretrained_cfg_overlay=dict(file=str(weights_file)),
        )
    model = _create_checked(arch, encoder, num_classes)
    # What smp.encoders.get_encoder does with the file it downloads (3 input channels: no conv patch).
    model.encoder.load_state_dict(load_file(weights_file, device="cpu"))
    return model


def _create_checked(
    arch: str, encoder: str, num_classes: int, encoder_weights: bool | None = None, **kwargs
) -> torch.nn.Module:
    # encoder_weights always passed: smp's own default ("imagenet") would download.
    try:
        return smp.create_model(
            arch, encoder_name=encoder, encoder_weights=encoder_weights, classes=num_classes, **kwargs
        )
    except (KeyError, AssertionError) as err:
        # smp rejects some pairs only when building (e.g. a decoder that needs a ViT encoder).
        raise ConfigError(f"smp cannot build arch {arch!r} with encoder {encoder!r}: {err}") from None


class DeviceError(FaceParseError):
    """A device that is not there (cuda asked for without one) or that torch does not know."""


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """'auto' -> cuda when available, else cpu; a device that is not here is a DeviceError."""
    if str(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:  # torch's own words for a malformed name, e.g. "Expected one of cpu, cuda..."
        raise DeviceError(f"device {str(name)!r}: {str(err).splitlines()[0]}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {str(name)!r} asked for, but torch sees no CUDA device here")
    return device
