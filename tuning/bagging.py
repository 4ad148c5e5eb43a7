"""Which configs a refit trains again: the N best distinct configs of a candidate library.

Each manifest member carries the full RunConfig it was trained with; two members whose model,
train and data sections agree are one config (the same recipe found twice), kept once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from configs.errors import ConfigError
from tuning.manifest import ManifestFile, read_manifest

# The sections that make a model what it is (resources, search and ensemble do not).
RECIPE_SECTIONS = ("model", "train", "data")


@dataclass(frozen=True)
class BagSpec:
    """One config to refit: its name in the bagged manifest, the candidate it came from, its config."""

    name: str
    source: str  # the candidate member's name
    source_val_f1: float | None
    config: dict[str, Any]

    @property
    def arch(self) -> str:
        return str(self.config["model"]["arch"])

    @property
    def encoder(self) -> str:
        return str(self.config["model"]["encoder"])


def recipe_key(config: dict[str, Any]) -> str:
    return json.dumps({k: config.get(k) for k in RECIPE_SECTIONS}, sort_keys=True, default=str)


def choose_bags(manifest: ManifestFile, top: int, max_per_arch: int | None = None) -> list[BagSpec]:
    """The top best distinct configs by val_f1, at most max_per_arch of one architecture."""
    members = sorted(manifest.members, key=lambda m: -(m.val_f1 if m.val_f1 is not None else -1.0))
    chosen: list[BagSpec] = []
    seen: set[str] = set()
    per_arch: dict[str, int] = {}
    for m in members:
        if not m.config:
            raise ConfigError(
                f"{manifest.path}: member {m.name!r} records no config; refit needs the config each "
                f"candidate was trained with (a manifest written by python -m tuning)"
            )
        if m.config.get("model", {}).get("arch") != m.arch or m.fold is not None or m.bag is not None:
            raise ConfigError(f"{manifest.path}: member {m.name!r} is not a search candidate")
        key = recipe_key(m.config)
        if key in seen or (max_per_arch is not None and per_arch.get(m.arch, 0) >= max_per_arch):
            continue
        seen.add(key)
        per_arch[m.arch] = per_arch.get(m.arch, 0) + 1
        chosen.append(BagSpec(f"b{len(chosen)}-{m.arch}-{m.encoder}", m.name, m.val_f1, dict(m.config)))
        if len(chosen) == top:
            break
    return chosen


def bags_from(path: Path, top: int, max_per_arch: int | None = None) -> list[BagSpec]:
    """choose_bags over the manifest at path (a file or its folder)."""
    bags = choose_bags(read_manifest(path), top, max_per_arch)
    if not bags:
        raise ConfigError(f"{path}: no candidate to refit")
    return bags
