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
from configs.errors import ConfigError, FaceParseError
from configs.schema import RunConfig, load_config, parse_config

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
    "FaceParseError",
    "RunConfig",
    "load_config",
    "parse_config",
]
