"""The ensemble manifest (models/NAME/manifest.json): its one schema, its writer and its reader.

    {"format": 1, "classes": [19 names], "members": [
       {"name", "arch", "encoder", "image_size", "mean", "std", "weights": "m0.safetensors",
        "val_f1", "trial_id", "config", "sha256", "epoch",
        "bag", "fold", "oof"}, ...],                 # refit only (tuning.refit_command)
     "bags": [{"name", "members", "val_f1", "score_split", "source", "oof"}, ...]}   # refit only

Weights are named relative to the manifest's folder. A refit manifest groups its members into
bags (one config trained on each of K folds, or S times with different seeds); the ensemble
predicts a bag as the mean of its members (ensemble.core.members). The tuning export writes it, the ensemble
reads it (ensemble.core.members builds the models); nothing else declares these keys.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from configs import CLASSES
from configs.errors import FaceParseError
from configs.schema import error_message
from data_prep.atomic import write_json

MANIFEST_FORMAT = 1
MANIFEST_FILE = "manifest.json"
# Every member is a model in memory at once; far above any useful library (2 x top_k), far below
# the count where building them exhausts memory and mmap with an unreadable error.
MAX_MEMBERS = 256
MAX_BYTES = 64 << 20  # ~100x what MAX_MEMBERS members with their full configs take


class ManifestError(FaceParseError):
    """A manifest or weights file that is missing, malformed, tampered with or not safetensors."""


class _Strict(BaseModel):
    # Unknown keys are errors: a typo must not pass as a member without its checksum.
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


class ManifestEntry(_Strict):
    """One member: how to build it, how to prepare its inputs, where its weights are."""

    name: str = Field(min_length=1)
    arch: str
    encoder: str
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    weights: str = Field(min_length=1)  # file name beside the manifest
    val_f1: float | None = None
    trial_id: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)  # the trial's full RunConfig
    sha256: str | None = None  # hex digest of the weights file; checked when present
    epoch: int | None = None  # the epoch the weights come from
    bag: str | None = None  # refit: the bag (config) this model belongs to
    fold: int | None = None  # refit with K folds: the fold it did not train on
    seed: int | None = None  # refit: its training seed
    oof: str | None = None  # refit with K folds: its held-out fold's probabilities (tuning.oof)

    @field_validator("weights", "oof")
    @classmethod
    def _inside_folder(cls, v: str | None) -> str | None:
        if v is None:
            return v
        # A manifest names files of its own folder: a shared or downloaded manifest must not make
        # the ensemble read (and report on) files elsewhere.
        if PurePosixPath(v).is_absolute() or PureWindowsPath(v).is_absolute() or PureWindowsPath(v).drive:
            raise ValueError(
                f"{v!r} is an absolute path; weights must be a file name inside the manifest's folder"
            )
        if ".." in PureWindowsPath(v).parts:
            raise ValueError(f"{v!r} leaves the manifest's folder ('..'); weights must stay inside it")
        return v

    @field_validator("mean", "std", mode="before")
    @classmethod
    def _rgb(cls, v: Any) -> Any:
        # pydantic would name one tuple position ("mean.2: missing"); say what the key needs.
        if (
            not isinstance(v, (list, tuple))
            or len(v) != 3
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
        ):
            raise ValueError(f"must be 3 numbers (RGB), got {v!r}")
        return v

    @field_validator("image_size")
    @classmethod
    def _multiple_of_32(cls, v: int) -> int:
        if v < 32 or v % 32:
            raise ValueError(f"must be a multiple of 32 (>= 32), got {v}")
        return v

    @field_validator("std")
    @classmethod
    def _positive(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if min(v) <= 0:
            raise ValueError(f"must be positive, got {list(v)}")
        return v


class BagEntry(_Strict):
    """A refit bag: its members (one per fold or seed) and its score."""

    name: str = Field(min_length=1)
    members: list[str] = Field(min_length=1)
    val_f1: float | None = None  # K folds: over the out-of-fold predictions of every train + val image
    score_split: str = "oof"  # "oof" (K folds) or "val" (seeds: the bag's mean on the val split)
    source: str | None = None  # the candidate whose config it refits
    oof: list[str] = []  # the members' out-of-fold files


class ManifestFile(_Strict):
    """The whole of manifest.json."""

    format: int
    classes: list[str]
    members: list[ManifestEntry] = Field(min_length=1)
    bags: list[BagEntry] = []
    _path: Path | None = PrivateAttr(default=None)

    @field_validator("format")
    @classmethod
    def _known_format(cls, v: int) -> int:
        if v != MANIFEST_FORMAT:
            raise ValueError(f"{v!r} is not supported; expected {MANIFEST_FORMAT}")
        return v

    @field_validator("classes")
    @classmethod
    def _class_table(cls, v: list[str]) -> list[str]:
        if list(v) != list(CLASSES):
            raise ValueError(
                f"{v!r} differ from the class table; expected the {len(CLASSES)} names {list(CLASSES)}"
            )
        return v

    @field_validator("members", mode="before")
    @classmethod
    def _not_too_many(cls, v: Any) -> Any:
        # Before the entries are validated one by one: a huge list fails at once.
        if isinstance(v, list) and len(v) > MAX_MEMBERS:
            raise ValueError(
                f"{len(v)} members, more than the {MAX_MEMBERS} an ensemble may load; "
                f"export fewer candidates (search.candidates)"
            )
        return v

    @field_validator("members")
    @classmethod
    def _unique_names(cls, v: list[ManifestEntry]) -> list[ManifestEntry]:
        repeated = repeated_names(m.name for m in v)
        if repeated:
            raise ValueError(f"names must be unique; repeated: {repeated}")
        return v

    @model_validator(mode="after")
    def _bags_match_members(self) -> ManifestFile:
        tagged = {m.name: m.bag for m in self.members}
        grouped = {name for bag in self.bags for name in bag.members}
        for bag in self.bags:
            wrong = [n for n in bag.members if tagged.get(n, "?") != bag.name]
            if wrong:
                raise ValueError(f"bag {bag.name!r}: members {wrong} are not members with bag {bag.name!r}")
        loose = [n for n, b in tagged.items() if b is not None and n not in grouped]
        if loose or (self.bags and len(grouped) != len(self.members)):
            raise ValueError(f"members {loose or sorted(set(tagged) - grouped)} belong to no bag")
        return self

    @property
    def path(self) -> Path:
        """Where this manifest was read from or written to."""
        if self._path is None:
            raise ManifestError("this manifest was neither read from nor written to a file")
        return self._path

    def weights_path(self, entry: ManifestEntry) -> Path:
        return self.path.parent / entry.weights


def repeated_names(names: Iterable[str]) -> list[str]:
    """Names that occur more than once, sorted (one counting pass: linear in the member count)."""
    return sorted(n for n, k in Counter(names).items() if k > 1)


def write_manifest(
    folder: str | Path,
    entries: Iterable[ManifestEntry | dict[str, Any]],
    bags: Iterable[BagEntry | dict[str, Any]] = (),
) -> ManifestFile:
    """Write folder/manifest.json for weights already in folder, with each file's sha256.

    Call it last: the manifest is written atomically, so it only ever names finished files.
    """
    folder = Path(folder)
    path = folder / MANIFEST_FILE
    members = []
    for i, entry in enumerate(entries):
        raw = entry.model_dump() if isinstance(entry, ManifestEntry) else dict(entry)
        weights = folder / str(raw.get("weights", ""))
        if not weights.is_file():
            raise ManifestError(f"{path}: members[{i}]: weights {weights}: file not found")
        members.append({**raw, "sha256": sha256_of(weights)})
    raw_bags = [b.model_dump() if isinstance(b, BagEntry) else dict(b) for b in bags]
    raw = {"format": MANIFEST_FORMAT, "classes": list(CLASSES), "members": members}
    manifest = _validate({**raw, "bags": raw_bags} if raw_bags else raw, path)
    dumped = manifest.model_dump(mode="json", exclude_none=True)
    if not raw_bags:
        dumped.pop("bags")  # a search's manifest stays as it was
    write_json(path, dumped)
    manifest._path = path
    return manifest


def read_manifest(path: str | Path) -> ManifestFile:
    """Read and check a manifest (a file, or a folder holding manifest.json): format, classes,
    keys, unique names, and that every weights file exists. Raises ManifestError."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_FILE
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise ManifestError(
            f"{path}: {size / 2**20:.0f} MiB, more than a manifest of at most {MAX_MEMBERS} "
            f"members can be ({MAX_BYTES >> 20} MiB)"
        )
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ManifestError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(raw, dict):
        raise ManifestError(f"{path}: expected a JSON object with format, classes and members")
    manifest = _validate(raw, path)
    manifest._path = path
    for entry in manifest.members:
        weights = manifest.weights_path(entry)
        if not weights.is_file():
            raise ManifestError(f"{path}: member {entry.name!r}: weights {weights}: file not found")
    return manifest


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_sha256(path: Path, entry: ManifestEntry, manifest: Path) -> None:
    """Raise when the entry records a sha256 and the weights file no longer has it."""
    if not entry.sha256:
        return
    digest = sha256_of(path)
    if digest != entry.sha256:
        raise ManifestError(
            f"{manifest}: member {entry.name!r}: weights {path}: sha256 {digest[:12]}... "
            f"does not match the manifest's {entry.sha256[:12]}...; the file was changed"
        )


def _validate(raw: dict[str, Any], path: Path) -> ManifestFile:
    try:
        return ManifestFile.model_validate(raw)
    except ValidationError as err:
        raise ManifestError("\n".join(_error_line(e, raw, path) for e in err.errors())) from None


def _error_line(e: dict[str, Any], raw: dict[str, Any], path: Path) -> str:
    """One pydantic error -> 'FILE: member 'NAME': KEY: what was expected'."""
    loc = list(e["loc"])
    where = str(path)
    if len(loc) >= 2 and loc[0] == "members" and isinstance(loc[1], int):
        entry = raw["members"][loc[1]]
        name = entry.get("name") if isinstance(entry, dict) else None
        where += f": member {name!r}" if isinstance(name, str) else f": members[{loc[1]}]"
        loc = loc[2:]
    key = ".".join(str(p) for p in loc)
    msg = error_message(e)
    return f"{where}: {key}: {msg}" if key else f"{where}: {msg}"
