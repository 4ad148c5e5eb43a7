"""The project's one error type, and the command-line entry that reports it.

Every exception class of configs, data_prep, tuning and ensemble derives from FaceParseError
(tests/test_errors.py checks it). A command catches it once, at its entry (run_cli): the message
is printed as `error: ...` lines on stderr and the command exits 2. Any other exception is a bug
and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

# A command's exit code when it stops on bad input (FaceParseError), as argparse uses for bad flags.
EXIT_BAD_INPUT = 2


class FaceParseError(ValueError):
    """Bad input, or a run that cannot proceed: a missing or malformed file, a config value out of
    range, a device that is not there. The message says what is wrong and where (one line per
    problem); command-line entries print each line as `error: LINE` and exit 2.

    A ValueError: code that catches ValueError for bad input keeps catching it.
    """


class ConfigError(FaceParseError):
    """A config file, override or option that does not match the schema (one line per problem)."""


class MissingPathError(FaceParseError, FileNotFoundError):
    """A file or folder named by the input does not exist (also a FileNotFoundError)."""


def report_error(err: FaceParseError, file: TextIO | None = None) -> None:
    """Print err as `error: LINE`, one per line of its message (stderr by default)."""
    out = sys.stderr if file is None else file
    for line in str(err).splitlines() or [type(err).__name__]:
        print(f"error: {line}", file=out)


def run_cli(command: Callable[..., int | None], *args, **kwargs) -> int:
    """command(*args, **kwargs) as a command-line entry: its exit code (None -> 0), or 2 with the
    message on stderr when it raises FaceParseError. Other exceptions propagate with their traceback."""
    try:
        return command(*args, **kwargs) or 0
    except FaceParseError as err:
        sys.stdout.flush()  # what the command printed before the error comes first
        report_error(err)
        return EXIT_BAD_INPUT
