"""pyproject.toml declares every distribution the code imports, and nothing it does not import.

An AST walk over every .py file collects the top-level module names of absolute imports;
importlib.metadata.packages_distributions() maps them to distributions. The project's own
packages and the scripts/tests/benchmarks modules that import each other are skipped.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ["configs", "data_prep", "tuning", "ensemble", "run_ensemble.py", "scripts"]
DEV_ONLY = ["tests", "benchmarks"]  # what only the tests and benchmarks import belongs in the dev extra
FIRST_PARTY = {"configs", "data_prep", "tuning", "ensemble", "run_ensemble", "benchmarks"}
# Optional imports whose wheels are not always installed (or whose RECORD does not name the module).
KNOWN = {
    "dlib": "dlib-bin",
    "pydensecrf": "pydensecrf2",
    "skimage": "scikit-image",
    "yaml": "pyyaml",
    "mlflow": "mlflow",
    "wandb": "wandb",
}
# Declared but never imported: tools (the test runner's plugin, the linter, the viewers).
TOOLS = {"pytest-timeout", "ruff", "optuna-dashboard", "tensorboard"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(req: str) -> str:
    return _norm(re.match(r"[A-Za-z0-9._-]+", req).group(0))


def _local_modules() -> set[str]:
    return {p.stem for folder in ("tests", "benchmarks", "scripts") for p in (ROOT / folder).rglob("*.py")}


def _imports_by_name(node: ast.AST, functions: tuple[str, ...]) -> bool:
    """pytest.importorskip("m"), importlib.import_module("m"), importlib.util.find_spec("m"), and
    (outside tests, which ask for missing modules on purpose) configs.optional's require("m", ...)
    and installed("m")."""
    return (
        isinstance(node, ast.Call)
        and getattr(node.func, "attr", getattr(node.func, "id", None)) in functions
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    )


@cache
def imported_modules_of(entry: str) -> frozenset[str]:
    names: set[str] = set()
    path = ROOT / entry
    functions = ("importorskip", "import_module", "find_spec")
    if not entry.startswith("tests"):
        functions += ("require", "installed")
    for file in [path] if path.is_file() else sorted(path.rglob("*.py")):
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
            elif _imports_by_name(node, functions):
                names.add(node.args[0].value.split(".")[0])
    return frozenset(names)


def imported_modules(paths: list[str]) -> set[str]:
    """Third-party top-level modules imported by the files under paths."""
    names = set().union(*(imported_modules_of(entry) for entry in paths))
    return {n for n in names if n not in sys.stdlib_module_names and n not in FIRST_PARTY | _local_modules()}


@cache
def _packages_distributions() -> dict[str, list[str]]:
    return md.packages_distributions()


def distributions(modules: set[str]) -> dict[str, str]:
    mapping = _packages_distributions()
    found = {}
    for module in sorted(modules):
        dists = mapping.get(module) or [KNOWN.get(module)]
        assert dists[0], f"import {module}: no installed distribution provides it and KNOWN has no entry"
        found[module] = _norm(dists[0])
    return found


@pytest.fixture(scope="module")
def declared():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = [_requirement_name(r) for r in project["dependencies"]]
    extras = {k: [_requirement_name(r) for r in v] for k, v in project["optional-dependencies"].items()}
    return core, extras


def test_every_runtime_import_is_a_declared_dependency(declared):
    core, extras = declared
    optional = {name for extra, names in extras.items() if extra != "dev" for name in names}
    needed = distributions(imported_modules(RUNTIME))
    missing = {m: d for m, d in needed.items() if d not in set(core) | optional}
    assert not missing, f"imported but not in [project] dependencies or an extra: {missing}"


def test_test_and_benchmark_imports_are_declared_at_least_in_dev(declared):
    core, extras = declared
    available = set(core) | {name for names in extras.values() for name in names}
    needed = distributions(imported_modules(DEV_ONLY))
    missing = {m: d for m, d in needed.items() if d not in available}
    assert not missing, f"imported by tests/benchmarks but declared nowhere: {missing}"
    runtime = set(distributions(imported_modules(RUNTIME)).values())
    dev_only = set(distributions(imported_modules(DEV_ONLY)).values()) - runtime
    misplaced = dev_only & set(core)
    assert not misplaced, f"only tests/benchmarks import these; they belong in the dev extra: {misplaced}"


def test_nothing_is_declared_that_nothing_imports(declared):
    core, extras = declared
    used = set(distributions(imported_modules(RUNTIME + DEV_ONLY)).values())
    unused = {d for d in [*core, *(n for names in extras.values() for n in names)] if d not in used | TOOLS}
    assert not unused, f"declared but imported nowhere: {unused}"
    assert len(core) == len(set(core)), "a dependency is listed twice"
    for name, names in extras.items():
        assert not set(names) & set(core), f"[{name}] repeats a core dependency"
