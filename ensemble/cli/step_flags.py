"""`--step NAME[=on|off]` for run and predict: any registered post-processing step turned on or off
by its registry name (ensemble.postprocess.registry.STEPS), so a new step needs no flag of its own.
Like the other post-processing flags it beats the recipe; its settings stay the config's (or the
recipe's), e.g. --step smooth=on --sigma 1.5, or --set ensemble.postprocess.FIELD=VALUE."""

from __future__ import annotations

import argparse
from collections.abc import Iterable

# The registry and its step modules import no torch at module level (tests/test_postprocess_registry.py),
# so every --help can list the registered steps.
from ensemble.postprocess.registry import STEPS, step_switch


def step_choice(text: str) -> tuple[str, bool]:
    """'NAME', 'NAME=on' or 'NAME=off' -> (NAME, on)."""
    name, sep, state = text.partition("=")
    if name not in STEPS:
        raise argparse.ArgumentTypeError(f"unknown step {name!r} (known: {', '.join(STEPS)})")
    if sep and state not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected {name}, {name}=on or {name}=off")
    return name, state != "off"


def add_step_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--step",
        dest="steps",
        action="append",
        default=[],
        type=step_choice,
        metavar="NAME[=on|off]",
        help=f"turn a post-processing step on (or off), beating the recipe (repeatable): {', '.join(STEPS)}",
    )


def step_settings(steps: Iterable[tuple[str, bool]]) -> dict[str, object]:
    """The explicit settings ({"postprocess.FIELD": value}) that --step choices make, in order."""
    given: dict[str, object] = {}
    for name, on in steps:
        given.update({f"postprocess.{k}": v for k, v in step_switch(name, on).items()})
    return given
