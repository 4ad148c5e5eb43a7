"""Make a leaderboard submission with an ensemble of trained face parsers (same as `python -m ensemble run`).

python run_ensemble.py --manifest models/NAME/manifest.json --images DIR_or_PREP --out OUT
"""

from __future__ import annotations

import argparse
import sys

from configs.command_line import add_version_argument
from configs.errors import run_cli
from ensemble.cli import run_command as cli_run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_version_argument(parser)
    cli_run.add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_cli(cli_run.main, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
