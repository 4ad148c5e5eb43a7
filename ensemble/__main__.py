"""python -m ensemble COMMAND ...: ensemble trained face parsers into a leaderboard submission."""

from __future__ import annotations

import argparse
import importlib
import sys

from configs.command_line import add_version_argument
from configs.errors import run_cli

# subcommand -> module exposing add_arguments(parser) and main(args) -> int
COMMANDS = {
    "run": (
        "ensemble.cli.run_command",
        "make a leaderboard submission (CSV, masks, report) with an ensemble",
    ),
    "fit": (
        "ensemble.cli.fit_command",
        "choose members, weights, views and post-processing on validation data",
    ),
    "distill": (
        "ensemble.cli.distill_command",
        "train one fast student on a fitted ensemble's probabilities",
    ),
    "predict": (
        "ensemble.cli.predict_command",
        "parse one's own photos: faces found, aligned, parsed, pasted back",
    ),
    "export": ("ensemble.cli.export_command", "export one member as ONNX or an smp save_pretrained folder"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ensemble", description=__doc__)
    add_version_argument(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        module.add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Bad input (a FaceParseError): `error: ...` and exit 2; anything else keeps its traceback.
    return run_cli(importlib.import_module(COMMANDS[args.command][0]).main, args)


if __name__ == "__main__":
    sys.exit(main())
