"""Pretrained encoder weights: from the local cache, else downloaded, else a clear error at once.

smp's own encoders keep their weights on the HF hub (smp-hub/<encoder>.<weights> at a pinned
revision); 'tu-' encoders use timm's, mostly on the hub too (a few only at a URL). smp would
download them itself, but offline huggingface_hub retries for about half a minute before it
fails, on every trial of a search. So the file is fetched here with the documented switches:
hf_hub_download(local_files_only=True) for the cache, then one short probe of the hub before a
real download (none at all under HF_HUB_OFFLINE=1), and build_model loads the local file.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlparse

import huggingface_hub
import huggingface_hub.constants as hf_constants
import segmentation_models_pytorch as smp
import timm.models
import torch
from huggingface_hub.errors import LocalEntryNotFoundError

from configs.errors import ConfigError, FaceParseError
from configs.schema import RunConfig

PROBE_TIMEOUT_S = 3.0


class WeightsUnavailableError(FaceParseError, RuntimeError):
    """Pretrained encoder weights are neither cached nor downloadable from here."""


@dataclass(frozen=True)
class HubFile:
    """One weights file in an HF hub repo; revision None is the repo's main branch."""

    repo_id: str
    filename: str = "model.safetensors"
    revision: str | None = None


def timm_model_name(encoder: str) -> str | None:
    """The timm model smp builds for a 'tu-' (or deprecated 'timm-' alias) encoder; None for smp's own."""
    if encoder.startswith("tu-"):
        return encoder[3:]
    if smp.encoders.is_equivalent_to_timm_universal(encoder):
        # smp.encoders.get_encoder renames these aliases the same way before calling timm.
        name = encoder.replace("timm-", "", 1)
        return "tf_" + name if "mobilenetv3" in name else name
    return None


def weights_location(encoder: str, encoder_weights: str) -> HubFile | str:
    """Where the weights come from: a hub file, or (a few timm models) a plain URL."""
    timm_name = timm_model_name(encoder)
    if timm_name is None:
        if encoder not in smp.encoders.encoders:
            raise ConfigError(f"model.encoder {encoder!r} is not an smp encoder (or 'tu-<timm model name>')")
        settings = smp.encoders.encoders[encoder]["pretrained_settings"]
        if encoder_weights not in settings:
            raise ConfigError(
                f"model.encoder_weights {encoder_weights!r} does not exist for encoder "
                f"{encoder!r}; expected one of {list(settings)} or null"
            )
        return HubFile(settings[encoder_weights]["repo_id"], revision=settings[encoder_weights]["revision"])
    # For timm the variant is part of the name ('tu-resnet50.a1_in1k'); encoder_weights only says "yes".
    cfg = timm.models.get_pretrained_cfg(timm_name)
    if cfg is not None and cfg.hf_hub_id:
        return HubFile(cfg.hf_hub_id, filename=cfg.hf_hub_filename or "model.safetensors")
    if cfg is not None and cfg.url:
        return cfg.url
    raise ConfigError(
        f"model.encoder {encoder!r}: timm has no pretrained weights for {timm_name!r}; "
        "pick a tagged variant ('tu-<name>.<tag>', see timm.list_pretrained()) "
        "or set model.encoder_weights: null"
    )


def hub_cache_dir(weights_cache: str | Path | None) -> Path:
    """The HF hub cache folder: <weights_cache>/huggingface/hub, else huggingface_hub's default."""
    if weights_cache is None:
        return Path(hf_constants.HF_HUB_CACHE)
    return Path(weights_cache).expanduser().resolve() / "huggingface" / "hub"


def url_cache_dir(weights_cache: str | Path | None) -> Path:
    """Where URL weights are kept: <weights_cache>/torch/hub/checkpoints, else torch hub's default."""
    if weights_cache is None:
        return Path(torch.hub.get_dir()) / "checkpoints"
    return Path(weights_cache).expanduser().resolve() / "torch" / "hub" / "checkpoints"


def fetch_encoder_weights(
    encoder: str, encoder_weights: str, weights_cache: str | Path | None = None
) -> Path:
    """Local path of the encoder's pretrained weights file, downloading it only when not cached.

    Raises WeightsUnavailableError within seconds when it is neither cached nor downloadable.
    """
    location = weights_location(encoder, encoder_weights)
    if isinstance(location, str):
        return _fetch_url(location, url_cache_dir(weights_cache), encoder, encoder_weights)
    cache_dir = hub_cache_dir(weights_cache)
    args = dict(
        repo_id=location.repo_id, filename=location.filename, revision=location.revision, cache_dir=cache_dir
    )
    try:
        return Path(huggingface_hub.hf_hub_download(**args, local_files_only=True))
    except LocalEntryNotFoundError:
        pass
    endpoint = hf_constants.ENDPOINT
    if huggingface_hub.is_offline_mode():
        reason = "HF_HUB_OFFLINE is set"
    elif not hub_reachable(endpoint):
        reason = f"{endpoint} is unreachable from this machine"
    else:
        try:
            return Path(huggingface_hub.hf_hub_download(**args, endpoint=endpoint))
        except OSError as err:  # what hf_hub_download raises for HTTP, connection and disk errors
            reason = f"downloading from {endpoint} failed ({err})".replace("\n", " ")
    raise WeightsUnavailableError(_missing_weights_message(encoder, encoder_weights, cache_dir, reason))


def _fetch_url(url: str, folder: Path, encoder: str, encoder_weights: str) -> Path:
    # The same file name and folder timm's own download uses, so either finds the other's copy.
    path = folder / Path(urlparse(url).path).name
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(path))  # writes a temp file, then renames
        return path
    except OSError as err:  # urllib.error.URLError is an OSError
        reason = f"downloading {url} failed ({err})".replace("\n", " ")
    raise WeightsUnavailableError(_missing_weights_message(encoder, encoder_weights, folder, reason))


def _missing_weights_message(encoder: str, encoder_weights: str, cache_dir: Path, reason: str) -> str:
    return (
        f"pretrained weights {encoder_weights!r} for encoder {encoder!r} are not in the cache "
        f"({cache_dir}) and {reason}. "
        "Fix: run `python -m tuning prefetch-weights --config FILE` on a machine with internet "
        "and set model.weights_cache to that cache folder (shared by all nodes), "
        "or set model.encoder_weights: null to train from scratch."
    )


def hub_reachable(endpoint: str | None = None, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """One HEAD request to the HF endpoint (honours HTTPS_PROXY); any HTTP answer counts as reachable."""
    return _reachable(endpoint or hf_constants.ENDPOINT, timeout)


@cache
def _reachable(url: str, timeout: float) -> bool:
    # Once per process and endpoint: a search builds many models, the answer does not change.
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
        return True
    except urllib.error.HTTPError:
        return True  # the server answered
    except (urllib.error.URLError, OSError, ValueError):
        return False


def prefetch_weights(cfg: RunConfig) -> list[str]:
    """Download the pretrained weights of every encoder in cfg.search.archs into model.weights_cache."""
    if cfg.model.encoder_weights is None:
        return []
    names = [e for encs in cfg.search.archs.values() for e in encs]
    done = []
    for encoder in dict.fromkeys(names):
        path = fetch_encoder_weights(encoder, cfg.model.encoder_weights, cfg.model.weights_cache)
        done.append(f"{encoder} ({cfg.model.encoder_weights}) -> {path}")
    return done
