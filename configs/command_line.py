"""What the command lines share: `--version` (the installed distribution's version), argparse types."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

DISTRIBUTION = "faceparse-ensemble"
_PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def version() -> str:
    """The installed distribution's version; from pyproject.toml beside the packages when not installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version(DISTRIBUTION)
    except PackageNotFoundError:
        return pyproject_version()


def pyproject_version(path: Path = _PYPROJECT) -> str:
    """`version = "..."` of the [project] table of pyproject.toml ("unknown" when there is none)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return "unknown"
    project = re.search(r"^\[project\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    found = re.search(r'^version\s*=\s*"([^"]+)"', project.group(1) if project else "", re.M)
    return found.group(1) if found else "unknown"


def version_line() -> str:
    """`faceparse-ensemble 0.1.0`: what --version prints."""
    return f"{DISTRIBUTION} {version()}"


class _VersionAction(argparse.Action):
    """argparse's own version action, but the version is looked up only when the flag is given."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_line(), file=sys.stdout)
        parser.exit()


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def add_version_argument(parser: argparse.ArgumentParser) -> None:
    """--version: print `faceparse-ensemble VERSION` and exit 0."""
    parser.add_argument("--version", action=_VersionAction, help="print the version and exit")
