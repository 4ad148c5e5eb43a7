"""`--set key=value` on the command line: dotted config keys, values in YAML syntax, checked by the schema."""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from configs.schema import ConfigError, RunConfig, load_config

_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
SET_HELP = (
    "override a config key by its dotted path, value in YAML syntax (repeatable), e.g. "
    "--set train.lr=1e-3 --set search.archs='{Unet: [resnet18]}'; checked by the schema"
)


def add_set_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=SET_HELP)


def parse_sets(items: Sequence[str]) -> dict[str, Any]:
    """['train.lr=1e-3', ...] -> {'train.lr': 0.001, ...}; a malformed item is a ConfigError."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(
                f"--set {item!r}: expected KEY=VALUE with a dotted config key, e.g. train.lr=1e-3"
            )
        try:
            value = yaml.safe_load(text) if text.strip() else text
        except yaml.YAMLError as err:
            raise ConfigError(
                f"--set {key}: value {text!r} is not valid YAML ({str(err).splitlines()[0]})"
            ) from None
        # YAML 1.1 reads 1e-3 (no dot) as a string; on a command line it means the number.
        parsed[key] = float(value) if isinstance(value, str) and _FLOAT.fullmatch(value.strip()) else value
    return parsed


def apply_sets(cfg: RunConfig, items: Sequence[str]) -> RunConfig:
    """cfg with the --set overrides applied and re-validated (errors name '--set KEY')."""
    return cfg.with_overrides(parse_sets(items), source="--set") if items else cfg


def load_with_sets(path: str | Path | None, items: Sequence[str]) -> RunConfig:
    """The config file (or the defaults when path is None) with the --set overrides applied."""
    return apply_sets(load_config(path) if path is not None else RunConfig(), items)
