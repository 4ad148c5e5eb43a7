"""The Ray layer: search space, top-k export, checkpoint retention, resume, cluster, dashboard."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import optuna
import pandas as pd
import psutil
import pytest
import ray
import torch
import yaml

from configs import load_config, parse_config
from configs.schema import SearchConfig
from data_prep.dataset import FaceParsingDataset
from data_prep.transforms import build_val_transform
from tuning.__main__ import COMMANDS, apply_cli, build_parser
from tuning.__main__ import main as tuning_main
from tuning.manifest import read_manifest
from tuning.models import build_model
from tuning.search import can_restore, check_paths_visible, connect, experiment_path
from tuning.space import define_space, each_arch_first, trial_overrides
from tuning.train import evaluate

from interrupted_run import interrupt_after, result_lines

REPO = Path(__file__).resolve().parents[1]


def tiny_config(tmp_path: Path, prepared: Path, **search) -> Path:
    """A CPU config small enough for a few trials in seconds."""
    raw = {
        "seed": 0,
        "data": {"datasets": [{"path": str(prepared)}], "image_size": 64, "num_workers": 0},
        "model": {"encoder_weights": None},
        "train": {"epochs": 2, "batch_size": 8, "lr": 3e-3, "amp": "none"},
        "search": {
            "archs": {"Unet": ["resnet18"], "FPN": ["resnet18"]},
            "params": {"train.lr": {"low": 1e-3, "high": 5e-3, "log": True}},
            "num_samples": 3,
            "max_concurrent": 2,
            "num_to_keep": 1,
            "top_k": 1,
            "candidates": 2,
            "asha": {"grace_period": 2, "reduction_factor": 2},
            **search,
        },
        "resources": {"cpu": 1, "gpu": 0, "storage": str(tmp_path / "ray"), "include_dashboard": False},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_space_gives_each_architecture_its_own_encoder_choices():
    search = SearchConfig(
        archs={"Unet": ["resnet18", "mobilenet_v2"], "FPN": ["resnet34"]},
        params={
            "train.lr": {"low": 1e-4, "high": 1e-2, "log": True},
            "train.batch_size": {"choices": [8, 16]},
        },
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    space, seen = define_space(search), set()
    for _ in range(40):
        trial = study.ask()
        space(trial)
        over = trial_overrides(trial.params)
        assert over["model.encoder"] in search.archs[over["model.arch"]]
        assert 1e-4 <= over["train.lr"] <= 1e-2 and over["train.batch_size"] in (8, 16)
        seen.add((over["model.arch"], over["model.encoder"]))
        study.tell(trial, 0.5)
    assert seen == {("Unet", "resnet18"), ("Unet", "mobilenet_v2"), ("FPN", "resnet34")}
    # the overrides land in a valid config
    cfg = parse_config({}).with_overrides(over)
    assert cfg.model.arch == over["model.arch"]


def test_the_first_trials_try_every_architecture_once():
    search = SearchConfig(
        archs={"Unet": ["resnet18"], "FPN": ["resnet18"], "DeepLabV3Plus": ["resnet18"]}, num_samples=6
    )
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    for point in each_arch_first(search):  # what OptunaSearch(points_to_evaluate=...) enqueues
        study.enqueue_trial(point)
    space, archs = define_space(search), []
    for _ in range(3):
        trial = study.ask()
        space(trial)
        archs.append(trial.params["arch"])
        study.tell(trial, 0.5)
    assert archs == ["Unet", "FPN", "DeepLabV3Plus"]
    assert len(each_arch_first(search.model_copy(update={"num_samples": 2}))) == 2


@pytest.mark.slow  # starts Ray
def test_missing_data_path_names_path_and_node(tmp_path):
    cfg = parse_config(
        {"data": {"datasets": [{"path": str(tmp_path / "nowhere")}]}, "resources": {"storage": str(tmp_path)}}
    )
    with pytest.raises(FileNotFoundError, match=r"nowhere.*node .*\("):
        check_paths_visible(cfg)


def _trial_dirs(storage: Path) -> list[Path]:
    return sorted(p.parent for p in storage.glob("*/*/result.json"))


@pytest.mark.slow  # starts Ray
def test_three_trial_search_exports_two_member_manifest(tmp_path, tiny_prepared, monkeypatch):
    config = tiny_config(tmp_path, tiny_prepared)
    out = tmp_path / "models"
    assert tuning_main(["--config", str(config), "--out", str(out), "--name", "t3"]) == 0

    manifest = json.loads((out / "manifest.json").read_text())
    members = manifest["members"]
    assert manifest["format"] == 1 and len(manifest["classes"]) == 19
    assert len(members) == 2
    assert [m["val_f1"] for m in members] == sorted((m["val_f1"] for m in members), reverse=True)
    assert [m.sha256 for m in read_manifest(out).members] == [m["sha256"] for m in members]
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 3 and set(trials["status"]) <= {"completed", "stopped early"}
    assert members[0]["val_f1"] == pytest.approx(trials["best_val_f1"].max())
    # Ray's time_total_s covers the training function plus reporting: both measured, in order
    assert (trials["train_s"] > 0).all() and (trials["wall_s"] >= trials["train_s"]).all()
    assert (out / "trials.png").stat().st_size > 5000
    # the Optuna study is kept in sqlite beside the experiment: one finished trial per Ray trial
    study = optuna.load_study(study_name="t3", storage=f"sqlite:///{tmp_path / 'ray' / 't3' / 'optuna.db'}")
    assert len(study.trials) == 3 and all(t.state.is_finished() for t in study.trials)
    assert json.loads((out / "param_importance.json").read_text())["trials"] == 3
    assert len(pd.read_csv(out / "per_class_f1.csv")) == 3
    # per-class F1 reached Ray's loggers: result.json and the TensorBoard events file
    trial_dir = _trial_dirs(tmp_path / "ray")[0]
    assert "val_f1_skin" in result_lines(trial_dir)[-1] and list(trial_dir.glob("events.out.tfevents*"))
    # trial folders (and names in the dashboard/TensorBoard) say which model they train
    for d in _trial_dirs(tmp_path / "ray"):
        assert re.fullmatch(r"(Unet|FPN)-resnet18-\w+", d.name), d.name
    page = (out / "search_report.html").read_text()
    assert all(t in page for t in trials["trial_id"]) and "Optimisation history" in page

    # the export subcommand takes a relative experiment path too
    monkeypatch.chdir(tmp_path)
    assert tuning_main(["export", "--config", str(config), "--experiment", "ray/t3", "--out", "rel"]) == 0
    assert (tmp_path / "rel" / "manifest.json").is_file()

    # the export subcommand re-reads the finished search from storage alone (no running Ray)
    again = tmp_path / "again"
    assert (
        tuning_main(
            [
                "export",
                "--config",
                str(config),
                "--experiment",
                str(tmp_path / "ray" / "t3"),
                "--out",
                str(again),
                "--candidates",
                "1",
            ]
        )
        == 0
    )
    assert [m.trial_id for m in read_manifest(again).members] == [members[0]["trial_id"]]
    assert (again / "m0.safetensors").read_bytes() == (out / "m0.safetensors").read_bytes()

    # weights load into fresh models and reproduce the reported val_f1
    from safetensors.torch import load_file

    cfg = load_config(config)
    val = FaceParsingDataset(tiny_prepared, "val", build_val_transform(cfg.data))
    loader = torch.utils.data.DataLoader(val, batch_size=8)
    for m in members:
        model = build_model(m["arch"], m["encoder"], None)
        model.load_state_dict(load_file(out / m["weights"]), strict=True)
        assert evaluate(model, loader, torch.device("cpu"))["f1"] == pytest.approx(m["val_f1"], abs=1e-6)

    # no trial keeps more than num_to_keep (1) best checkpoints, plus the latest one that Tune
    # always keeps (train/_internal/checkpoint_manager.py: resume needs it)
    dirs = _trial_dirs(tmp_path / "ray")
    assert len(dirs) == 3
    for d in dirs:
        scores = [row["val_f1"] for row in result_lines(d)]
        best, latest = scores.index(max(scores)), len(scores) - 1
        kept = {p.name for p in d.glob("checkpoint_*")}
        assert kept and kept <= {f"checkpoint_{best:06d}", f"checkpoint_{latest:06d}"}


@pytest.mark.slow  # starts Ray
def test_interrupted_search_resumes_without_retraining_finished_trials(tmp_path, tiny_prepared):
    config = tiny_config(
        tmp_path,
        tiny_prepared,
        num_samples=3,
        max_concurrent=1,
        asha={"grace_period": 3, "reduction_factor": 2},
    )
    cmd = [
        sys.executable,
        "-m",
        "tuning",
        "--config",
        str(config),
        "--out",
        str(tmp_path / "m"),
        "--name",
        "resume",
        "--max-epochs",
        "3",
    ]
    storage = tmp_path / "ray"
    before = interrupt_after(cmd, lambda: _trial_dirs(storage), 3, 240)
    assert not (tmp_path / "m" / "manifest.json").exists()

    assert subprocess.run(cmd + ["--resume"], cwd=REPO, timeout=400).returncode == 0
    for d, lines in before.items():
        assert result_lines(d) == lines  # finished trials were not trained again
    dirs = _trial_dirs(storage)
    assert len(dirs) == 3
    for d in dirs:
        epochs = [r["epoch"] for r in result_lines(d)]
        assert epochs == sorted(set(epochs)) and epochs[-1] == 3  # resumed, not restarted
    assert len(json.loads((tmp_path / "m" / "manifest.json").read_text())["members"]) == 2
    # the resumed search kept telling the same Optuna study: 3 trials, none left running
    study = optuna.load_study(study_name="resume", storage=f"sqlite:///{storage / 'resume' / 'optuna.db'}")
    assert sorted(t.state.name for t in study.trials) == ["COMPLETE"] * 3


@pytest.mark.slow  # starts Ray
def test_trials_run_on_both_nodes_of_a_two_node_cluster_with_fake_gpus(tmp_path, tiny_prepared):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 1})
    cluster.add_node(num_cpus=1, num_gpus=1)
    try:
        config = tiny_config(tmp_path, tiny_prepared, num_samples=2, max_concurrent=2)
        out = tmp_path / "models"
        code = tuning_main(
            [
                "--config",
                str(config),
                "--out",
                str(out),
                "--name",
                "cluster",
                "--address",
                cluster.address,
                "--gpus-per-trial",
                "1",
                "--max-epochs",
                "1",
                "--top-k",
                "2",
            ]
        )
        assert code == 0
        trials = pd.read_csv(out / "trials.csv")
        assert len(trials) == 2
        assert trials["node"].nunique() == 2  # one fake GPU per node, one GPU per trial
        assert set(trials["device"]) == {"cpu"}  # CUDA absent: trials fall back to the CPU
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.mark.slow  # starts Ray
def test_dashboard_listens_on_loopback_only_with_token_auth(tmp_path):
    port = 18265
    cfg = parse_config({"resources": {"dashboard_port": port, "include_dashboard": True}})
    url = connect(cfg, address=None)
    try:
        assert url == f"http://127.0.0.1:{port}"
        listening = [
            c
            for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port
        ]
        assert listening and {c.laddr.ip for c in listening} == {"127.0.0.1"}
        deadline = time.time() + 30
        while True:  # the dashboard may take a moment to answer
            try:
                urllib.request.urlopen(f"{url}/api/version", timeout=2)
                status = 200
            except urllib.error.HTTPError as err:
                status = err.code
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
                continue
            break
        assert status == 401  # token auth is on: no token, no access
        token = (Path.home() / ".ray" / "auth_token").read_text().strip()
        req = urllib.request.Request(f"{url}/api/version", headers={"Authorization": f"Bearer {token}"})
        assert urllib.request.urlopen(req, timeout=5).status == 200
    finally:
        ray.shutdown()


def test_relative_storage_becomes_an_absolute_experiment_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = parse_config({"resources": {"storage": "runs/ray"}})
    assert experiment_path(cfg, "demo") == str(tmp_path / "runs" / "ray" / "demo")
    assert can_restore(experiment_path(cfg, "demo")) is False
    cfg = parse_config({"resources": {"storage": "s3://bucket/runs/"}})
    assert experiment_path(cfg, "demo") == "s3://bucket/runs/demo"


def test_cli_makes_local_paths_absolute_for_trials_in_their_own_directories(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parser = build_parser()
    args = parser.parse_args(["search", "--config", "x.yaml", "--data", "prep", "--storage", "runs/ray"])
    cfg = apply_cli(parse_config({}), args)
    assert cfg.resources.storage == str(tmp_path / "runs" / "ray")
    assert [d.path for d in cfg.data.datasets] == [tmp_path / "prep"]
    args = parser.parse_args(["search", "--config", "x.yaml", "--storage", "s3://b/runs"])
    assert apply_cli(parse_config({}), args).resources.storage == "s3://b/runs"


def test_cli_runs_search_by_default_and_every_flag_has_help(tmp_path, capsys):
    missing = str(tmp_path / "missing.yaml")
    assert tuning_main(["--config", missing]) == 2  # no subcommand: search, as DESIGN.md shows
    assert tuning_main(["search", "--config", missing]) == 2
    assert f"error: {missing}: config file not found" in capsys.readouterr().err
    assert tuning_main(["export", "--config", missing, "--experiment", "x", "--out", "y"]) == 2
    assert "config file not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tuning_main(["--help"])
    usage = capsys.readouterr().out
    assert all(name in usage for name in COMMANDS)
    for name, (add_arguments, _, _) in COMMANDS.items():
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        assert [a.dest for a in parser._actions if not a.help] == [], name
