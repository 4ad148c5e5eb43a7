"""Build any segmentation-models-pytorch architecture/encoder pair with 19 output classes.

Pretrained encoder weights: smp 0.6 downloads them with huggingface_hub.hf_hub_download
(repos smp-hub/<encoder>.<weights>; 'tu-' encoders go through timm, which also uses the HF
hub). Offline, hf_hub_download retries for about half a minute before failing, on every
trial of a search. So build_model looks in the local cache first (HF offline mode: no
network at all), and only when the weights are not cached probes the hub with one 3 s
connection attempt before letting smp download; unreachable means a clear error at once.
"""
from __future__ import annotations

import contextlib
import os
import urllib.error
import urllib.request
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import huggingface_hub.constants as hf_constants
import segmentation_models_pytorch as smp
import timm
import torch
from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

from configs import NUM_CLASSES
from configs.schema import RunConfig

PROBE_TIMEOUT_S = 3.0


class WeightsUnavailableError(RuntimeError):
    """Pretrained encoder weights are neither cached nor downloadable from here."""


def architectures() -> list[str]:
    """smp architecture names (as the classes spell them: Unet, FPN, DeepLabV3Plus, ...)."""
    return sorted({cls.__name__ for cls in smp.MODEL_ARCHITECTURES_MAPPING.values()})


def encoders() -> list[str]:
    """smp's own encoder names; any timm model also works as 'tu-<timm name>'."""
    return sorted(smp.encoders.get_encoder_names())


def check_model_names(arch: str, encoder: str, encoder_weights: str | None = None) -> None:
    """Raise ValueError listing the valid names when arch, encoder or weights are unknown."""
    if arch.lower() not in smp.MODEL_ARCHITECTURES_MAPPING:
        raise ValueError(f"model.arch {arch!r} is not an smp architecture; expected one of {architectures()}")
    if smp.encoders.is_equivalent_to_timm_universal(encoder):
        return  # deprecated 'timm-' names smp maps to 'tu-' itself
    if encoder.startswith("tu-"):
        base = encoder[3:].split(".")[0]
        if not timm.is_model(base):
            raise ValueError(f"model.encoder {encoder!r}: {base!r} is not a timm model "
                             "(see timm.list_models(); smp names need no 'tu-' prefix)")
        return
    if encoder not in smp.encoders.encoders:
        raise ValueError(f"model.encoder {encoder!r} is not an smp encoder; expected one of {encoders()} "
                         "or 'tu-<timm model name>'")
    if encoder_weights is not None:
        available = list(smp.encoders.encoders[encoder]["pretrained_settings"])
        if encoder_weights not in available:
            raise ValueError(f"model.encoder_weights {encoder_weights!r} does not exist for encoder "
                             f"{encoder!r}; expected one of {available} or null")


def build_model(arch: str, encoder: str, encoder_weights: str | None = None,
                num_classes: int = NUM_CLASSES) -> torch.nn.Module:
    """smp.create_model(arch, encoder, classes=19); raises ValueError naming a bad arch/encoder.

    With encoder_weights the weights come from the local cache, else from the hub; if neither
    works this fails within seconds with WeightsUnavailableError saying how to fix it.
    """
    check_model_names(arch, encoder, encoder_weights)
    # 'tu-' (timm) encoders take True for "pretrained"; the variant is part of the timm name.
    weights = True if encoder.startswith("tu-") and encoder_weights else encoder_weights

    def create() -> torch.nn.Module:
        return smp.create_model(arch, encoder_name=encoder, encoder_weights=weights, classes=num_classes)

    if encoder_weights is None:
        return _create_checked(create, arch, encoder)
    return _with_pretrained(lambda: _create_checked(create, arch, encoder), encoder, encoder_weights)


def build_encoder(encoder: str, encoder_weights: str | None) -> torch.nn.Module:
    """The encoder alone (weights are arch-independent): fills the weights cache."""
    check_model_names("Unet", encoder, encoder_weights)
    weights = True if encoder.startswith("tu-") and encoder_weights else encoder_weights
    return _with_pretrained(lambda: smp.encoders.get_encoder(encoder, weights=weights),
                            encoder, encoder_weights)


def _create_checked(create, arch: str, encoder: str) -> torch.nn.Module:
    try:
        return create()
    except (KeyError, AssertionError) as err:
        # smp rejects some pairs only when building (e.g. a decoder that needs a ViT encoder).
        raise ValueError(f"smp cannot build arch {arch!r} with encoder {encoder!r}: {err}") from None


def _with_pretrained(create, encoder: str, encoder_weights: str):
    try:
        with _hf_offline():
            return create()  # cached: no network at all
    except (LocalEntryNotFoundError, OfflineModeIsEnabled, FileNotFoundError):
        pass
    if not hub_reachable():
        raise WeightsUnavailableError(_missing_weights_message(
            encoder, encoder_weights, f"{hf_constants.ENDPOINT} is unreachable from this machine"))
    try:
        return create()
    except (OSError, urllib.error.URLError) as err:
        reason = f"downloading from {hf_constants.ENDPOINT} failed ({err})".replace("\n", " ")
        raise WeightsUnavailableError(_missing_weights_message(encoder, encoder_weights, reason)) from None


def _missing_weights_message(encoder: str, encoder_weights: str, reason: str) -> str:
    return (f"pretrained weights {encoder_weights!r} for encoder {encoder!r} are not in the cache "
            f"({hf_constants.HF_HUB_CACHE}) and {reason}. "
            "Fix: run `python -m tuning prefetch-weights --config FILE` on a machine with internet "
            "and set model.weights_cache to that cache folder (shared by all nodes), "
            "or set model.encoder_weights: null to train from scratch.")


@contextlib.contextmanager
def _hf_offline() -> Iterator[None]:
    # huggingface_hub reads HF_HUB_OFFLINE once at import; its download code checks the module
    # constant at call time, so flipping it here is how to ask for "cache only" now.
    before = hf_constants.HF_HUB_OFFLINE
    hf_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hf_constants.HF_HUB_OFFLINE = before


@lru_cache(maxsize=None)
def hub_reachable(endpoint: str | None = None, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """One HEAD request to the HF endpoint (honours HTTPS_PROXY); any HTTP answer counts as reachable."""
    if hf_constants.is_offline_mode():
        return False
    url = endpoint or hf_constants.ENDPOINT
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
        return True
    except urllib.error.HTTPError:
        return True  # the server answered
    except (urllib.error.URLError, OSError, ValueError):
        return False


def apply_weights_cache(path: str | Path | None) -> None:
    """Point torch hub and the HF hub (used by smp and timm) at a shared weights cache folder."""
    if path is None:
        return
    root = Path(path).expanduser().resolve()
    hf_home, torch_home = root / "huggingface", root / "torch"
    os.environ["HF_HOME"] = str(hf_home)
    os.environ["HF_HUB_CACHE"] = str(hf_home / "hub")
    os.environ["TORCH_HOME"] = str(torch_home)
    # huggingface_hub copied these from the environment at import; update the live values too.
    hf_constants.HF_HOME = str(hf_home)
    hf_constants.HF_HUB_CACHE = str(hf_home / "hub")
    hf_constants.HF_ASSETS_CACHE = str(hf_home / "assets")
    torch.hub.set_dir(str(torch_home / "hub"))


def prefetch_weights(cfg: RunConfig) -> list[str]:
    """Download the pretrained weights of every encoder in cfg.search.archs into the cache."""
    if cfg.model.encoder_weights is None:
        return []
    apply_weights_cache(cfg.model.weights_cache)
    names = [e for encs in cfg.search.archs.values() for e in encs]
    done = []
    for encoder in dict.fromkeys(names):
        build_encoder(encoder, cfg.model.encoder_weights)
        done.append(f"{encoder} ({cfg.model.encoder_weights}) -> {hf_constants.HF_HUB_CACHE}")
    return done


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """'auto' -> cuda when available, else cpu; asking for cuda without one is a ValueError."""
    if str(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(name)!r} asked for, but torch sees no CUDA device here")
    return device
