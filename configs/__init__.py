"""Typed config schema, YAML loading and the class table."""

from configs.classes import (
    BACKGROUND,
    CLASS_ID,
    CLASSES,
    DEFAULT_PAINT_ORDER,
    FACE_CLASS_IDS,
    FLIP_LUT,
    FLIP_PARTNER,
    FLIP_PERMUTATION,
    IGNORE_INDEX,
    NUM_CLASSES,
    PALETTE,
    colorize,
)
from configs.schema import ConfigError, RunConfig, load_config, parse_config

__all__ = [
    "BACKGROUND",
    "CLASS_ID",
    "CLASSES",
    "DEFAULT_PAINT_ORDER",
    "FACE_CLASS_IDS",
    "FLIP_LUT",
    "FLIP_PARTNER",
    "FLIP_PERMUTATION",
    "IGNORE_INDEX",
    "NUM_CLASSES",
    "PALETTE",
    "colorize",
    "ConfigError",
    "RunConfig",
    "load_config",
    "parse_config",
]
