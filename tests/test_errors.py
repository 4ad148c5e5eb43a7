"""One error type: every exception class of the project is a FaceParseError, and every command prints
it as `error: ...` lines on stderr and exits 2 (anything else keeps its traceback)."""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import data_prep.__main__ as data_prep_cli
import ensemble.__main__ as ensemble_cli
import run_ensemble
import tuning.__main__ as tuning_cli
from configs.errors import ConfigError, FaceParseError, MissingPathError, report_error, run_cli

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("configs", "data_prep", "tuning", "ensemble")
# Project code outside the packages: scanned as source (they are scripts, not importable packages).
SCRIPT_SOURCES = (ROOT / "scripts", ROOT / "benchmarks", ROOT / "run_ensemble.py")


def _project_modules():
    for package in PACKAGES:
        root = importlib.import_module(package)
        yield root
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            yield importlib.import_module(info.name)


def _exception_classes() -> dict[str, type[BaseException]]:
    """Every exception class defined (not merely imported) in a module of the project packages."""
    found = {}
    for module in _project_modules():
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                found[f"{module.__name__}.{name}"] = obj
    return found


def test_every_exception_class_of_the_packages_is_a_face_parse_error():
    classes = _exception_classes()
    assert len(classes) >= 18  # the walk found the packages' errors (17 before they were unified)
    stray = sorted(name for name, cls in classes.items() if not issubclass(cls, FaceParseError))
    assert not stray, f"exception classes not derived from configs.errors.FaceParseError: {stray}"


def test_every_exception_class_in_scripts_and_benchmarks_is_a_face_parse_error():
    """Classes of scripts/, benchmarks/ and run_ensemble.py, read as source: a class with a built-in
    exception among its bases must also name one of the project's errors."""
    project = {cls.__name__ for cls in _exception_classes().values()}
    builtin = {n for n, v in vars(builtins).items() if inspect.isclass(v) and issubclass(v, BaseException)}
    files = [p for src in SCRIPT_SOURCES for p in ([src] if src.is_file() else sorted(src.rglob("*.py")))]
    assert files
    stray = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                bases = {b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "") for b in node.bases}
                if bases & builtin and not bases & project:
                    stray.append(f"{path.relative_to(ROOT)}: {node.name}")
    assert not stray, stray


def test_kept_intermediate_semantics():
    from tuning.oom import OutOfMemoryAtBatchOne
    from tuning.pretrained import WeightsUnavailableError

    assert issubclass(FaceParseError, ValueError)
    assert issubclass(OutOfMemoryAtBatchOne, RuntimeError) and issubclass(
        WeightsUnavailableError, RuntimeError
    )
    assert issubclass(MissingPathError, FileNotFoundError)
    assert str(MissingPathError("x: not found")) == "x: not found"


def test_resolve_device_raises_a_device_error():
    import torch

    from tuning.models import DeviceError, resolve_device

    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(DeviceError, match="'gpu'"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA device"):
            resolve_device("cuda")


def test_run_cli_prints_each_line_and_exits_2_but_lets_bugs_through(capsys):
    def bad_input():
        raise ConfigError("first problem\nsecond problem")

    def fine():
        print("done")

    assert run_cli(bad_input) == 2
    captured = capsys.readouterr()
    assert captured.err == "error: first problem\nerror: second problem\n" and captured.out == ""
    assert run_cli(fine) == 0 and run_cli(lambda: 1) == 1

    def bug():
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        run_cli(bug)
    with pytest.raises(TypeError):  # not a FaceParseError: a traceback, not `error: ...`
        run_cli(lambda: int([]))


def test_report_error_of_an_empty_message_names_the_type(capsys):
    report_error(ConfigError())
    assert capsys.readouterr().err == "error: ConfigError\n"


def _assert_bad_input(capsys, rc: int, expected: str) -> None:
    captured = capsys.readouterr()
    assert rc == 2, captured.err
    lines = captured.err.strip().splitlines()
    assert lines and all(line.startswith("error: ") for line in lines), captured.err
    assert expected in captured.err
    assert "Traceback" not in captured.err


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["synth", "--out", "{tmp}/s", "--num", "0"], "--num must be >= 1"),
        (["celebamask", "--root", "{tmp}/missing", "--out", "{tmp}/p"], "raw dataset root not found"),
        (
            ["facesynthetics", "--root", "{tmp}/missing", "--out", "{tmp}/p"],
            "FaceSynthetics folder not found",
        ),
        (["lapa", "--root", "{tmp}/missing", "--out", "{tmp}/p"], "LaPa folder not found"),
    ],
)
def test_data_prep_commands_print_error_and_exit_2(tmp_path, capsys, argv, expected):
    rc = data_prep_cli.main([a.format(tmp=tmp_path) for a in argv])
    _assert_bad_input(capsys, rc, expected)


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", "{tmp}/missing.yaml"],  # search, the default command
        ["search", "--config", "{tmp}/missing.yaml"],
        ["prefetch-weights", "--config", "{tmp}/missing.yaml"],
        ["export", "--config", "{tmp}/missing.yaml", "--experiment", "e", "--out", "{tmp}/o"],
    ],
)
def test_tuning_commands_print_error_and_exit_2(tmp_path, capsys, argv):
    rc = tuning_cli.main([a.format(tmp=tmp_path) for a in argv])
    _assert_bad_input(capsys, rc, "missing.yaml: config file not found")


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["run", "--manifest", "{tmp}/m.json", "--images", "{tmp}/none", "--out", "{tmp}/o"], "none"),
        (["fit", "--manifest", "{tmp}/m.json", "--data", "{tmp}/none", "--device", "cpu"], "none"),
        (
            [
                "distill",
                "--recipe",
                "{tmp}/r.json",
                "--data",
                "{tmp}/d",
                "--out",
                "{tmp}/o",
                "--device",
                "cpu",
            ],
            "r.json",
        ),
        (["predict", "{tmp}/none", "--manifest", "{tmp}/m.json", "--out", "{tmp}/o"], "none"),
        (["export", "--manifest", "{tmp}/m.json", "--format", "smp", "--out", "{tmp}/o"], "m.json"),
        (["run", "--manifest", "m", "--images", "i", "--out", "o", "--set", "ensemble.tta=sideways"], "tta"),
    ],
)
def test_ensemble_commands_print_error_and_exit_2(tmp_path, capsys, argv, expected):
    rc = ensemble_cli.main([a.format(tmp=tmp_path) for a in argv])
    _assert_bad_input(capsys, rc, expected)


def test_run_ensemble_py_prints_error_and_exits_2(tmp_path, capsys):
    argv = [
        "--manifest",
        str(tmp_path / "m.json"),
        "--images",
        str(tmp_path / "none"),
        "--out",
        str(tmp_path),
    ]
    _assert_bad_input(capsys, run_ensemble.main(argv), str(tmp_path / "none"))
