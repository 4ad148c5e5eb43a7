"""provenance.json: what made an output folder, written beside the outputs (never inside them).

    {"format": 1, "created_utc", "hostname", "python", "platform",
     "git": {"commit", "dirty"} | null, "packages": {distribution: version | null},
     "command", "argv", "cwd", "config": the resolved config | null, "extra": {...}}

The lowest layer: no torch, Ray or cv2 import here (package versions come from importlib.metadata),
so any command can call it without importing more than it already has.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata as md
import json
import os
import platform
import shlex
import socket
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path, PurePath
from typing import Any

PROVENANCE_FORMAT = 1
PROVENANCE_FILE = "provenance.json"
PROJECT = "faceparse-ensemble"
REPO_ROOT = Path(__file__).resolve().parents[1]
# The distributions whose versions decide what a run computes (absent ones are recorded as null).
KEY_PACKAGES = (
    PROJECT,
    "torch",
    "torchvision",
    "segmentation-models-pytorch",
    "timm",
    "ray",
    "optuna",
    "albumentations",
    "numpy",
    "opencv-python-headless",
    "pydantic",
    "safetensors",
    "onnx",
    "onnxruntime",
)


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_read_umask()  # what open() would give the file (mkstemp makes 0600)


def package_versions(names: tuple[str, ...] = KEY_PACKAGES) -> dict[str, str | None]:
    versions = {}
    for name in names:
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    return versions


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=10, check=True
    ).stdout.strip()


def git_state() -> dict[str, Any] | None:
    """The commit of the checkout this code runs from and whether tracked files differ from it.

    None when the code is not in a git checkout of its own (an installed wheel: site-packages may
    sit inside some other repository, so the top level must be this code's folder) or git is absent.
    """
    try:
        if Path(_git("rev-parse", "--show-toplevel")).resolve() != REPO_ROOT:
            return None
        commit = _git("rev-parse", "HEAD")
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def command_line(argv: list[str] | None = None) -> str:
    """sys.argv as a shell command; `python -m PKG` for a package's __main__.py."""
    argv = list(sys.argv if argv is None else argv)
    if argv and Path(argv[0]).name == "__main__.py":
        argv[0:1] = ["python", "-m", Path(argv[0]).parent.name]
    return shlex.join(argv)


def _jsonable(obj: Any) -> Any:
    """json.dumps default: configs (pydantic), option dataclasses, argparse namespaces, paths."""
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, argparse.Namespace):
        return vars(obj)
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return repr(obj)  # anything else: readable, never a failed write


def collect(*, config: Any = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The provenance record (see the module docstring); config: a pydantic model or a dict."""
    return {
        "format": PROVENANCE_FORMAT,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "hostname": socket.gethostname(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git": git_state(),
        "packages": package_versions(),
        "command": command_line(),
        "argv": list(sys.argv),
        "cwd": os.getcwd(),
        "config": config,
        "extra": extra or {},
    }


def write_provenance(
    folder: str | Path,
    *,
    config: Any = None,
    extra: dict[str, Any] | None = None,
    name: str = PROVENANCE_FILE,
) -> Path:
    """Write folder/name (default provenance.json) atomically; returns its path."""
    path = Path(folder) / name
    text = json.dumps(collect(config=config, extra=extra), indent=2, default=_jsonable) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_provenance_beside(
    path: str | Path, *, config: Any = None, extra: dict[str, Any] | None = None
) -> Path:
    """The provenance of one file among others in its folder: recipe.json -> recipe.provenance.json."""
    path = Path(path)
    return write_provenance(path.parent, config=config, extra=extra, name=f"{path.stem}.provenance.json")
