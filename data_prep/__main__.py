"""python -m data_prep {synth,celebamask,facesynthetics,lapa} ...: make raw datasets and prepared datasets."""

from __future__ import annotations

import argparse
import importlib
import sys

from configs.command_line import add_version_argument
from configs.errors import run_cli

# subcommand -> module exposing add_arguments(parser) and main(args) -> int
COMMANDS = {
    "synth": ("data_prep.synth", "generate a synthetic face dataset in the raw CelebAMask-HQ layout"),
    "celebamask": ("data_prep.celebamask", "raw CelebAMask-HQ tree -> prepared dataset"),
    "facesynthetics": ("data_prep.facesynthetics", "FaceSynthetics -> prepared dataset"),
    "lapa": ("data_prep.lapa", "LaPa (train/val/test images + labels) -> prepared dataset"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_prep", description=__doc__)
    add_version_argument(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        module.add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    # Bad input (a FaceParseError): `error: ...` and exit 2; anything else keeps its traceback.
    return run_cli(importlib.import_module(COMMANDS[args.command][0]).main, args)


if __name__ == "__main__":
    sys.exit(main())
