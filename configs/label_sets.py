"""Label sets other than the 19-class table (configs.classes), defined by class names.

A label set lists its classes in its own ID order and says which of our 19 classes each one takes.
Every set class that means what one of ours means carries our name (LaPa's "left eyebrow" is
`l_brow`): that class is its *representative*, so a set's label map can live in the 19-class ID
space (only representative IDs used) wherever the rest of the code expects 19-class IDs.

lapa11: LaPa (Liu et al., AAAI 2020) labels 0 background, 1 skin, 2 left eyebrow, 3 right
eyebrow, 4 left eye, 5 right eye, 6 nose, 7 upper lip, 8 inner mouth, 9 lower lip, 10 hair.
Left/right: LaPa's "left" is the subject's left, as CelebAMask-HQ's l_* (face-parsing code that
names both in image terms, e.g. facer's, calls LaPa's label 2 and CelebAMask-HQ's l_brow the same).
LaPa's skin takes the ears (FaRL calls it "face_lr_rr": face + both ears); the neck, clothes and
anything worn are background there. Glasses have no class in LaPa: the frame lies on the face, so
eye_g goes to skin (as the seed's unseen-set code merges glasses into skin). Earrings, necklaces
and hats are objects, not the person: background.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from configs.classes import CLASS_ID, CLASSES, IGNORE_INDEX, NUM_CLASSES
from configs.errors import ConfigError


@dataclass(frozen=True)
class LabelSet:
    """A label set: its classes (our names where they mean the same) and where each of ours goes."""

    name: str
    classes: tuple[str, ...]  # in the set's ID order
    display_names: tuple[str, ...]  # the dataset's own names, same order
    merge: dict[str, str]  # each of our 19 class names -> the set class it becomes

    def __post_init__(self) -> None:
        if set(self.merge) != set(CLASSES):
            raise ValueError(f"label set {self.name}: merge must name each of the 19 classes once")
        unknown = sorted(set(self.merge.values()) - set(self.classes))
        if unknown:
            raise ValueError(f"label set {self.name}: merge targets {unknown} are not among its classes")
        for c in self.classes:
            if c not in CLASS_ID:
                raise ValueError(f"label set {self.name}: class {c!r} names none of the 19 classes")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @cached_property
    def target(self) -> np.ndarray:
        """(19,) int64: the set ID each of our classes becomes."""
        index = {c: i for i, c in enumerate(self.classes)}
        return np.array([index[self.merge[c]] for c in CLASSES], np.int64)

    @cached_property
    def representative(self) -> np.ndarray:
        """(set size,) int64: the 19-class ID of each set class (the class of the same name)."""
        return np.array([CLASS_ID[c] for c in self.classes], np.int64)

    @cached_property
    def to_set_lut(self) -> np.ndarray:
        """256-entry uint8 table: 19-class ID -> set ID (IGNORE_INDEX and unknown values -> IGNORE_INDEX)."""
        lut = np.full(256, IGNORE_INDEX, np.uint8)
        lut[:NUM_CLASSES] = self.target
        return lut

    @cached_property
    def from_set_lut(self) -> np.ndarray:
        """256-entry uint8 table: set ID -> its representative 19-class ID (others -> IGNORE_INDEX)."""
        lut = np.full(256, IGNORE_INDEX, np.uint8)
        lut[: self.num_classes] = self.representative
        return lut

    def merged_into(self) -> dict[str, list[str]]:
        """Set class -> our classes it takes (the report's table)."""
        return {c: [k for k in CLASSES if self.merge[k] == c] for c in self.classes}


def merge_probabilities(probs: np.ndarray, label_set: LabelSet, axis: int = 0) -> np.ndarray:
    """(.., 19, ..) probabilities -> (.., set size, ..): each set class gets the SUM of its classes."""
    probs = np.moveaxis(np.asarray(probs), axis, 0)
    out = np.zeros((label_set.num_classes, *probs.shape[1:]), np.result_type(probs, np.float32))
    np.add.at(out, label_set.target, probs)
    return np.moveaxis(out, 0, axis)


_SAME = {c: c for c in ("background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "nose")}
LAPA11 = LabelSet(
    name="lapa11",
    classes=(
        "background",
        "skin",
        "l_brow",
        "r_brow",
        "l_eye",
        "r_eye",
        "nose",
        "u_lip",
        "mouth",
        "l_lip",
        "hair",
    ),
    display_names=(
        "background",
        "skin",
        "left eyebrow",
        "right eyebrow",
        "left eye",
        "right eye",
        "nose",
        "upper lip",
        "inner mouth",
        "lower lip",
        "hair",
    ),
    merge={
        **_SAME,
        "u_lip": "u_lip",
        "mouth": "mouth",
        "l_lip": "l_lip",
        "hair": "hair",
        "l_ear": "skin",
        "r_ear": "skin",
        "eye_g": "skin",
        "neck": "background",
        "cloth": "background",
        "neck_l": "background",
        "ear_r": "background",
        "hat": "background",
    },
)
CELEBAMASK19 = LabelSet(
    name="celebamask19", classes=CLASSES, display_names=CLASSES, merge={c: c for c in CLASSES}
)
LABEL_SETS: dict[str, LabelSet] = {s.name: s for s in (CELEBAMASK19, LAPA11)}


def get_label_set(name: str) -> LabelSet:
    """The label set of that name (a ConfigError naming the known ones otherwise)."""
    if name not in LABEL_SETS:
        raise ConfigError(f"unknown label set {name!r}; expected one of {sorted(LABEL_SETS)}")
    return LABEL_SETS[name]
