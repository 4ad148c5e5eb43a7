"""The package layout a newcomer walks: small modules with unique names, imports that flow one way.

configs <- data_prep <- tuning <- ensemble (DESIGN.md); inside ensemble/ the subpackages form a
graph without cycles with `core` at the bottom (it imports no other ensemble subpackage).
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("configs", "data_prep", "tuning", "ensemble")
LAYER = {name: i for i, name in enumerate(PACKAGES)}
MAX_LINES = 400


def project_modules(*folders: str, root: Path = ROOT) -> list[Path]:
    return sorted(
        p for folder in folders for p in (root / folder).rglob("*.py") if "__pycache__" not in p.parts
    )


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """Absolute names of the project modules a file imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    here = module_name(path, root).split(".")
    if path.name != "__init__.py":
        here = here[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] in LAYER}


def ensemble_subpackage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "ensemble" and len(parts) > 1 else None


def subpackage_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """ensemble subpackage (or top-level module) -> the ensemble subpackages it imports."""
    graph: dict[str, set[str]] = {}
    known = {p.stem for p in (root / "ensemble").iterdir()}
    for path in project_modules("ensemble", root=root):
        src = ensemble_subpackage(module_name(path, root))
        if src is None:
            continue
        targets = {ensemble_subpackage(m) for m in imported_modules(path, root)} - {None, src}
        graph.setdefault(src, set()).update(t for t in targets if t in known)
    return graph


def test_no_module_is_longer_than_400_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in project_modules(*PACKAGES, "benchmarks", "scripts")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, long


def test_module_names_are_unique_in_the_project():
    names = Counter(
        p.stem
        for p in project_modules(*PACKAGES, "benchmarks", "scripts")
        if p.stem not in ("__init__", "__main__")
    )
    assert not {n: c for n, c in names.items() if c > 1}


def test_every_ensemble_subpackage_says_what_it_holds():
    for init in sorted((ROOT / "ensemble").glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc) > 40, init
        # ...and the package docstring maps it
        assert f"    {init.parent.name} " in (ROOT / "ensemble" / "__init__.py").read_text(), init.parent.name


def test_imports_flow_configs_data_prep_tuning_ensemble():
    upward = []
    for path in project_modules(*PACKAGES):
        mine = LAYER[module_name(path).split(".")[0]]
        for name in imported_modules(path):
            if LAYER[name.split(".")[0]] > mine:
                upward.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not upward, upward


def test_core_imports_no_other_ensemble_subpackage():
    assert subpackage_graph().get("core", set()) == set()


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str, trail: list[str]) -> list[str] | None:
        if state.get(node) == 1:
            return trail + [node]
        if state.get(node) == 2:
            return None
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if found := visit(nxt, trail + [node]):
                return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if found := visit(node, []):
            return found
    return None


def test_ensemble_subpackages_import_each_other_without_cycles():
    cycle = find_cycle(subpackage_graph())
    assert cycle is None, " -> ".join(cycle)


def test_the_layout_checks_see_an_upward_import_and_a_cycle(tmp_path):
    """The checks above can fail: core importing fit, and fit importing core, is a cycle."""
    for name, text in {
        "ensemble/__init__.py": "",
        "ensemble/core/__init__.py": "",
        "ensemble/core/bad.py": "from ensemble.fit.selection import Scorer\n",
        "ensemble/fit/__init__.py": "",
        "ensemble/fit/selection.py": "from ..core import bad\nimport torch\n",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = subpackage_graph(tmp_path)
    assert graph["core"] == {"fit"} and graph["fit"] == {"core"}
    assert find_cycle(graph) in (["core", "fit", "core"], ["fit", "core", "fit"])
