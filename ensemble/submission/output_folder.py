"""The run's output folder: fresh per run, or cleared of what an earlier run wrote (--overwrite)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from configs.errors import FaceParseError

# What ensemble.submission.run_pipeline.run writes; --overwrite removes exactly these (and their temp files),
# never anything else a user keeps in the folder.
OWN_FOLDERS = ("masks", "color", "viz", "gallery")
OWN_FILES = (
    "submission.csv",
    "submission_ids.csv",
    "report.md",
    "report.json",
    "report.html",
    "confusion.png",
    "member_weights.json",
    "provenance.json",
)


class OutputFolderError(FaceParseError):
    """An output folder that would mix a previous run's files with this run's."""


def check_out_folder(out: Path, overwrite: bool) -> None:
    """Refuse a non-empty output folder unless overwrite (a file in its place is always refused)."""
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"{out}: exists and is not a folder")
    if not overwrite and out.is_dir() and any(out.iterdir()):
        raise OutputFolderError(
            f"{out}: output folder is not empty (an earlier run's masks and report would "
            f"mix with this run's); choose a new --out, or pass --overwrite to "
            f"replace what a previous run wrote there"
        )


def clear_previous(
    out: Path, folders: Sequence[str] = OWN_FOLDERS, files: Sequence[str] = OWN_FILES
) -> list[Path]:
    """Remove a previous run's outputs (folders, files and their atomic-write leftovers) from out."""
    if not out.is_dir():
        return []
    removed = []
    for name in folders:
        if (out / name).is_dir():
            shutil.rmtree(out / name)
            removed.append(out / name)
    for name in files:
        for path in [out / name, *out.glob(f".{name}.*.tmp")]:
            if path.is_file():
                path.unlink()
                removed.append(path)
    return removed
