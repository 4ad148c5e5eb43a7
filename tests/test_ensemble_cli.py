"""The ensemble's command line: python -m ensemble lists its subcommands, and `run` is run_ensemble.py."""

from __future__ import annotations

import argparse
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import run_ensemble
from ensemble.__main__ import COMMANDS, build_parser
from ensemble.cli import run_command as cli_run

ROOT = Path(__file__).resolve().parents[1]
# Every flag of `run`, with a value where it takes one.
ALL_RUN_FLAGS = [
    "--manifest",
    "m.json",
    "--images",
    "imgs",
    "--out",
    "out",
    "--split",
    "val",
    "--gt",
    "gt",
    "--config",
    "c.yaml",
    "--tta",
    "flip+scale",
    "--scales",
    "1",
    "1.5",
    "--recipe",
    "r.json",
    "--no-recipe",
    "--baseline",
    "search/manifest.json",
    "--weights",
    "score",
    "--csv-resize",
    "nearest_exact",
    "--csv-background",
    "zero",
    "--smooth",
    "none",
    "--sigma",
    "2",
    "--min-component-fraction",
    "0.3",
    "--no-remove-small",
    "--no-fill-holes",
    "--grabcut",
    "--crf",
    "--no-postprocess",
    "--step",
    "face_clip",
    "--detector",
    "mtcnn",
    "--detector-threshold",
    "0.5",
    "--context",
    "1.5",
    "--framing",
    "prep",
    "--no-second-pass",
    "--max-faces",
    "2",
    "--viz",
    "3",
    "--label-set",
    "lapa11",
    "--gt-label-set",
    "celebamask19",
    "--device",
    "cpu",
    "--batch-size",
    "2",
    "--workers",
    "0",
    "--skip-bad",
    "--quiet",
    "--overwrite",
    "--set",
    "ensemble.viz=2",
]


def _cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _flags(help_text: str) -> set[str]:
    # --help and --version belong to the program (run_ensemble.py, python -m ensemble), not to `run`.
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", help_text)) - {"--help", "--version"}


def test_python_m_ensemble_help_lists_every_subcommand_with_its_help():
    out = _cli("-m", "ensemble", "--help")
    assert "python -m ensemble" in out
    for name, (_, help_text) in COMMANDS.items():
        assert re.search(rf"^\s+{name}\s+{re.escape(help_text[:30])}", out, re.MULTILINE), name


def test_run_subcommand_and_run_ensemble_py_accept_the_same_flags():
    module_flags = _flags(_cli("-m", "ensemble", "run", "--help"))
    script_flags = _flags(run_ensemble.build_parser().format_help())
    assert {"--manifest", "--images", "--out", "--tta", "--weights", "--skip-bad"} <= module_flags
    assert module_flags == script_flags
    given = {a for a in ALL_RUN_FLAGS if a.startswith("--")}
    assert given == module_flags  # ALL_RUN_FLAGS names every flag
    via_module = vars(build_parser().parse_args(["run", *ALL_RUN_FLAGS]))
    assert via_module.pop("command") == "run"
    assert via_module == vars(run_ensemble.build_parser().parse_args(ALL_RUN_FLAGS))


class _RecordingParser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        self.recorded: list[tuple[tuple, dict]] = []
        super().__init__(*args, add_help=False, **kwargs)

    def add_argument(self, *args, **kwargs):
        self.recorded.append((args, kwargs))
        return super().add_argument(*args, **kwargs)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_flag_of_every_subcommand_has_help(command):
    parser = _RecordingParser()
    importlib.import_module(COMMANDS[command][0]).add_arguments(parser)
    assert parser.recorded
    missing = [args[0] for args, kwargs in parser.recorded if not kwargs.get("help")]
    assert not missing, f"{command}: flags without help: {missing}"


def test_flags_given_are_recorded_as_explicit_so_they_beat_a_recipe():
    parser = run_ensemble.build_parser()
    base = ["--manifest", "m.json", "--images", "imgs", "--out", "out"]
    args = parser.parse_args(base)
    opts = cli_run.run_options(args, cli_run.ensemble_config(args))
    assert opts.explicit == {} and opts.use_recipe and opts.recipe is None
    args = parser.parse_args(
        base
        + [
            "--weights",
            "score",
            "--tta",
            "none",
            "--sigma",
            "2",
            "--no-fill-holes",
            "--csv-background",
            "zero",
        ]
    )
    opts = cli_run.run_options(args, cli_run.ensemble_config(args))
    assert opts.explicit == {
        "weights": "score",
        "views": True,
        "postprocess.sigma": 2.0,
        "postprocess.fill_holes": False,
    }
    assert opts.ensemble.member_weights == "score" and opts.ensemble.csv.background == "zero"
