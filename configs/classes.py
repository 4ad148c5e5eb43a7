"""The one class table: official CelebAMask-HQ IDs, names, flip partners, palette, paint order."""

from __future__ import annotations

import numpy as np

from configs.errors import ConfigError

# Official CelebAMask-HQ order. Masks on disk, model channels, metrics and the CSV all use it.
CLASSES: tuple[str, ...] = (
    "background",
    "skin",
    "nose",
    "eye_g",
    "l_eye",
    "r_eye",
    "l_brow",
    "r_brow",
    "l_ear",
    "r_ear",
    "mouth",
    "u_lip",
    "l_lip",
    "hair",
    "hat",
    "ear_r",
    "neck_l",
    "neck",
    "cloth",
)
NUM_CLASSES = len(CLASSES)
CLASS_ID: dict[str, int] = {name: i for i, name in enumerate(CLASSES)}
BACKGROUND = 0
IGNORE_INDEX = 255

# Face classes: every class but background (the face-parsing papers report mean F1 over these).
FACE_CLASS_IDS: tuple[int, ...] = tuple(range(1, NUM_CLASSES))

# A horizontal flip turns the subject's left part into a right one.
_PARTNERS = {"l_eye": "r_eye", "l_brow": "r_brow", "l_ear": "r_ear"}
FLIP_PARTNER: dict[int, int] = {}
for _left, _right in _PARTNERS.items():
    FLIP_PARTNER[CLASS_ID[_left]] = CLASS_ID[_right]
    FLIP_PARTNER[CLASS_ID[_right]] = CLASS_ID[_left]

# FLIP_PERMUTATION[c] = the class c becomes after a horizontal flip. Used as a lookup table on
# label maps (uint8, 256 entries so ignore_index 255 maps to itself) and as a channel index on
# probability maps.
FLIP_PERMUTATION: np.ndarray = np.array([FLIP_PARTNER.get(c, c) for c in range(NUM_CLASSES)], dtype=np.int64)
FLIP_LUT: np.ndarray = np.arange(256, dtype=np.uint8)
FLIP_LUT[:NUM_CLASSES] = FLIP_PERMUTATION.astype(np.uint8)

# Default paint order for stacking part masks: later wins. Thin accessories over what they sit
# on; hair and hat last.
DEFAULT_PAINT_ORDER: tuple[str, ...] = (
    "skin",
    "l_brow",
    "r_brow",
    "l_eye",
    "r_eye",
    "eye_g",
    "l_ear",
    "r_ear",
    "ear_r",
    "nose",
    "mouth",
    "u_lip",
    "l_lip",
    "neck",
    "neck_l",
    "cloth",
    "hair",
    "hat",
)

# RGB palette for colourised masks and legends (the palette commonly used for CelebAMask-HQ).
PALETTE: np.ndarray = np.array(
    [
        [0, 0, 0],
        [204, 0, 0],
        [76, 153, 0],
        [204, 204, 0],
        [51, 51, 255],
        [204, 0, 204],
        [0, 255, 255],
        [255, 204, 204],
        [102, 51, 0],
        [255, 0, 0],
        [102, 204, 0],
        [255, 255, 0],
        [0, 0, 153],
        [0, 0, 204],
        [255, 51, 153],
        [0, 204, 204],
        [0, 51, 0],
        [255, 153, 51],
        [0, 204, 0],
    ],
    dtype=np.uint8,
)


def validate_paint_order(order: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Check a paint order names each non-background class exactly once (ConfigError otherwise)."""
    names = tuple(order)
    unknown = [n for n in names if n not in CLASS_ID or n == "background"]
    if unknown:
        raise ConfigError(f"paint order names unknown part(s) {unknown}; expected names from {CLASSES[1:]}")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"paint order repeats {dupes}")
    missing = [n for n in CLASSES[1:] if n not in names]
    if missing:
        raise ConfigError(f"paint order is missing {missing}")
    return names


def colorize(label_map: np.ndarray) -> np.ndarray:
    """uint8 label map (H, W) -> RGB image (H, W, 3); unknown IDs (e.g. 255) are white."""
    lut = np.full((256, 3), 255, dtype=np.uint8)
    lut[:NUM_CLASSES] = PALETTE
    return lut[label_map]
