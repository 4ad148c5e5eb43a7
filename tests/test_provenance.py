"""provenance.json (configs.provenance): what made an output folder, beside the outputs, never in them."""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from test_export import checkpoint, trial

from configs import RunConfig
from configs import provenance as prov
from configs.provenance import PROVENANCE_FILE, command_line, git_state, write_provenance
from tuning.__main__ import export_and_summarise
from tuning.library_export import export_members, rank

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Options:
    out: Path
    seed: int = 0


def _git_head() -> str | None:
    if shutil.which("git") is None:
        return None
    done = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def test_write_provenance_records_code_packages_command_config_time_and_host(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(REPO / "ensemble" / "__main__.py"), "run", "--out", "my out"])
    cfg = RunConfig().with_overrides({"train.lr": 0.0123})
    path = write_provenance(tmp_path / "out", config=cfg, extra={"options": Options(tmp_path / "o")})
    assert path == tmp_path / "out" / PROVENANCE_FILE
    record = json.loads(path.read_text())
    assert record["format"] == 1
    assert record["command"] == "python -m ensemble run --out 'my out'"
    assert record["argv"][1:] == ["run", "--out", "my out"]
    assert record["config"] == cfg.model_dump(mode="json") and record["config"]["train"]["lr"] == 0.0123
    assert record["extra"] == {"options": {"out": str(tmp_path / "o"), "seed": 0}}
    packages = record["packages"]
    assert packages["torch"] == md.version("torch") and packages["numpy"] == md.version("numpy")
    for name in ("torchvision", "segmentation-models-pytorch", "ray", "optuna", "albumentations"):
        assert packages[name] == md.version(name)
    assert {"opencv-python-headless", "pydantic", "faceparse-ensemble"} <= set(packages)
    assert record["python"] == ".".join(map(str, sys.version_info[:3]))
    assert datetime.fromisoformat(record["created_utc"]).utcoffset().total_seconds() == 0
    assert record["hostname"] and record["cwd"] == os.getcwd()
    head = _git_head()
    if head is None:
        assert record["git"] is None
    else:
        assert record["git"]["commit"] == head and isinstance(record["git"]["dirty"], bool)
    # Written atomically: nothing but the file itself is left, and a rewrite replaces it.
    write_provenance(tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == [PROVENANCE_FILE]
    assert json.loads(path.read_text())["config"] is None


def test_git_state_is_none_unless_this_code_is_the_checkouts_top(tmp_path, monkeypatch):
    monkeypatch.setattr(prov, "REPO_ROOT", tmp_path)  # not a git checkout
    assert git_state() is None
    if shutil.which("git") is None:
        return
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "site-packages").mkdir()
    # An installed copy inside some other repository must not report that repository's commit.
    monkeypatch.setattr(prov, "REPO_ROOT", tmp_path / "site-packages")
    assert git_state() is None


def test_command_line_names_a_package_run_with_dash_m():
    assert (
        command_line(["/x/tuning/__main__.py", "--config", "a b.yaml"])
        == "python -m tuning --config 'a b.yaml'"
    )
    assert command_line(["run_ensemble.py", "--out", "o"]) == "run_ensemble.py --out o"


def test_provenance_module_imports_no_torch():
    code = "import sys, configs.provenance; sys.exit('torch' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    assert subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO).returncode == 0


def test_tuning_export_writes_provenance_beside_an_unchanged_manifest(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/x/tuning/__main__.py", "export", "--out", str(tmp_path / "models")])
    trials = [
        trial(0, "Unet", [0.4, 0.6], checkpoint(tmp_path / "c0", "Unet", "resnet18", 0.6, 2, seed=0)),
        trial(1, "FPN", [0.5, 0.7], checkpoint(tmp_path / "c1", "FPN", "resnet18", 0.7, 2, seed=1)),
    ]
    cfg = RunConfig().with_overrides({"search.top_k": 2, "search.optuna_storage": None})
    out = tmp_path / "models"
    assert export_and_summarise(cfg, trials, out, 1.0, str(tmp_path / "exp")) == 0
    record = json.loads((out / PROVENANCE_FILE).read_text())
    assert record["command"].startswith("python -m tuning export --out")
    assert record["config"]["search"]["top_k"] == 2 and record["extra"] == {
        "experiment": str(tmp_path / "exp")
    }
    # manifest.json is byte for byte what the export wrote before provenance existed.
    again = tmp_path / "again"
    export_members(rank(trials, cfg.search.library_size, cfg.search.max_per_arch), again)
    assert (out / "manifest.json").read_bytes() == (again / "manifest.json").read_bytes()


@pytest.mark.parametrize("name", ["recipe.json", "other.json"])
def test_write_provenance_beside_names_the_file_it_belongs_to(tmp_path, name):
    path = prov.write_provenance_beside(tmp_path / name, config={"k": 1})
    assert path == tmp_path / f"{Path(name).stem}.provenance.json"
    assert json.loads(path.read_text())["config"] == {"k": 1}
