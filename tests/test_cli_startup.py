"""Fast command lines: every `--help` (each CLI, each subcommand, the console scripts) imports no torch,
Ray, Optuna, smp, albumentations or matplotlib; `--version` prints the distribution's version; the
flag choices kept apart for this (ensemble.core.choices) match the registries they name."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import ensemble
from configs import command_line as configs_cli
from data_prep.__main__ import COMMANDS as DATA_PREP_COMMANDS
from ensemble.__main__ import COMMANDS as ENSEMBLE_COMMANDS
from ensemble.core import choices
from tuning.__main__ import COMMANDS as TUNING_COMMANDS

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = (ROOT / "pyproject.toml").read_text()
VERSION_LINE = f"faceparse-ensemble {configs_cli.pyproject_version(ROOT / 'pyproject.toml')}"
# [project.scripts]: name -> "module:function" (read without tomllib, which Python 3.10 lacks)
SCRIPTS = dict(re.findall(r'^(faceparse-[\w-]+)\s*=\s*"([\w.]+:\w+)"', PYPROJECT, re.M))
# Top-level packages a `--help` must not import (torch alone takes seconds to import).
HEAVY = {"torch", "ray", "optuna", "segmentation_models_pytorch", "timm", "albumentations", "matplotlib"}

CLIS = [
    ["-m", "data_prep"],
    *[["-m", "data_prep", name] for name in DATA_PREP_COMMANDS],
    ["-m", "tuning"],
    *[["-m", "tuning", name] for name in TUNING_COMMANDS],
    ["-m", "ensemble"],
    *[["-m", "ensemble", name] for name in ENSEMBLE_COMMANDS],
    ["run_ensemble.py"],
]


def _console_script(name: str) -> list[str]:
    """The installed console script (run by this interpreter), else what it runs: its entry point."""
    script = Path(sys.executable).parent / name
    if script.is_file():
        return [str(script)]
    module, func = SCRIPTS[name].split(":")
    return ["-c", f"import sys; from {module} import {func}; sys.argv[0] = {name!r}; sys.exit({func}())"]


def _python(args: list[str], *, importtime: bool = False) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    # This checkout's packages, also for a console script installed from another one.
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.pop("PYTHONWARNINGS", None)
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def _imported(importtime_stderr: str) -> set[str]:
    """Top-level packages named by `python -X importtime` (lines 'import time: self | cumulative | name')."""
    return {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in importtime_stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


@pytest.mark.parametrize(
    "args",
    CLIS + [_console_script(n) for n in SCRIPTS],
    ids=lambda a: " ".join(Path(x).name if x.startswith("/") else x for x in a if x != "-m")[:60],
)
def test_help_imports_no_torch(args):
    done = _python([*args, "--help"], importtime=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout
    imported = _imported(done.stderr)
    assert "configs" in imported  # the importtime lines were read
    assert not imported & HEAVY, f"{' '.join(args)} --help imports {sorted(imported & HEAVY)}"


@pytest.mark.parametrize(
    "args", [["-m", "data_prep"], ["-m", "tuning"], ["-m", "ensemble"], ["run_ensemble.py"]]
)
def test_version_prints_the_distribution_version(args):
    done = _python([*args, "--version"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == VERSION_LINE


def test_console_scripts_are_the_three_entries():
    assert SCRIPTS == {
        "faceparse-prepare": "data_prep.__main__:main",
        "faceparse-tune": "tuning.__main__:main",
        "faceparse-ensemble": "ensemble.__main__:main",
    }
    assert VERSION_LINE != "faceparse-ensemble unknown"


def test_version_falls_back_to_pyproject_when_not_installed(monkeypatch):
    import importlib.metadata

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert configs_cli.version_line() == VERSION_LINE


def test_flag_choices_match_the_registries():
    from ensemble.core.member_weights import WEIGHT_MODES
    from ensemble.core.tta import TTA_MODES
    from ensemble.distill.student import TEACHER_MODES
    from ensemble.export.model_export import FORMATS, OPSET
    from ensemble.faces.detect import DETECTORS

    assert tuple(TTA_MODES) == choices.TTA_MODES
    assert tuple(WEIGHT_MODES) == choices.WEIGHT_MODES
    assert tuple(DETECTORS) == choices.DETECTORS
    assert tuple(TEACHER_MODES) == choices.TEACHER_MODES
    assert tuple(FORMATS) == choices.EXPORT_FORMATS and OPSET == choices.ONNX_OPSET


def test_ensemble_package_names_resolve_lazily_to_their_homes():
    assert len(set(ensemble.__all__)) == len(ensemble.__all__)
    assert set(ensemble.__all__) <= set(dir(ensemble))
    for name in ensemble.__all__:
        home = ensemble._HOME_OF[name]
        # __getattr__ itself: `ensemble.postprocess` may already be the subpackage of that name.
        assert ensemble.__getattr__(name) is getattr(importlib.import_module(home), name), name
    assert ensemble.resolve_device("cpu").type == "cpu"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ensemble.nope  # noqa: B018
