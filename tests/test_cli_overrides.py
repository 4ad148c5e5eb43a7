"""`--set key=value` on every command that reads a config, and a free dashboard port."""

from __future__ import annotations

import json
import socket

import pytest
import yaml

from configs import ConfigError, RunConfig
from configs.overrides import apply_sets, parse_sets
from ensemble.__main__ import COMMANDS as ENSEMBLE_COMMANDS
from ensemble.__main__ import build_parser as ensemble_parser
from run_ensemble import main as run_main
from tuning import search
from tuning.__main__ import COMMANDS as TUNING_COMMANDS
from tuning.__main__ import build_parser as tuning_parser
from tuning.__main__ import main as tuning_main

from ensemble_fixtures import make_image_folder, write_manifest


def test_set_values_are_yaml_and_checked_by_the_schema():
    assert parse_sets(
        [
            "train.lr=1e-3",
            "train.amp=none",
            "model.encoder_weights=null",
            "ensemble.scales=[1.0, 1.5]",
            "data.num_workers=0",
        ]
    ) == {
        "train.lr": 1e-3,
        "train.amp": "none",
        "model.encoder_weights": None,
        "ensemble.scales": [1.0, 1.5],
        "data.num_workers": 0,
    }
    cfg = apply_sets(RunConfig(), ["train.lr=0.01", "search.archs={FPN: [resnet34]}"])
    assert cfg.train.lr == 0.01 and cfg.search.archs == {"FPN": ["resnet34"]}
    with pytest.raises(ConfigError, match=r"^--set: train\.lr: Input should be greater than 0"):
        apply_sets(RunConfig(), ["train.lr=-1"])
    with pytest.raises(ConfigError, match=r"^--set: train\.nope: no such config key"):
        apply_sets(RunConfig(), ["train.nope=1"])
    with pytest.raises(ConfigError, match=r"--set 'train\.lr': expected KEY=VALUE"):
        apply_sets(RunConfig(), ["train.lr"])


REFIT_REQUIRED = ["--from", "m/manifest.json", "--data", "d", "--out", "o"]  # refit reads no --config


@pytest.mark.parametrize("command", list(TUNING_COMMANDS))
def test_every_tuning_command_takes_set(command):
    if command == "refit":
        args = tuning_parser().parse_args([command, *REFIT_REQUIRED, "--set", "train.lr=0.1"])
        assert args.overrides == ["train.lr=0.1"]
        return
    args = tuning_parser().parse_args(
        [
            command,
            "--config",
            "c.yaml",
            "--experiment",
            "e",
            "--out",
            "o",
            "--set",
            "train.lr=0.1",
            "--set",
            "search.top_k=2",
        ]
        if command == "export"
        else [command, "--config", "c.yaml", "--set", "train.lr=0.1"]
    )
    assert args.overrides[0] == "train.lr=0.1"


# export converts a member's weights and reads no config: nothing for --set to change.
@pytest.mark.parametrize("command", [c for c in ENSEMBLE_COMMANDS if c != "export"])
def test_every_ensemble_command_that_reads_a_config_takes_set(command):
    required = {
        "run": ["--manifest", "m", "--images", "i", "--out", "o"],
        "fit": ["--manifest", "m", "--data", "d"],
        "distill": ["--recipe", "r", "--data", "d", "--out", "o"],
        "predict": ["photo.jpg", "--manifest", "m", "--out", "o"],
    }
    args = ensemble_parser().parse_args([command, *required.get(command, []), "--set", "ensemble.viz=1"])
    assert args.overrides == ["ensemble.viz=1"]


def test_set_reaches_the_search_and_is_validated_before_ray(tmp_path, tiny_prepared, monkeypatch, capsys):
    monkeypatch.setattr(search, "ray_session", lambda *a, **k: (_ for _ in ()).throw(AssertionError("Ray")))
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"resources": {"storage": str(tmp_path / "ray")}}))
    base = ["--config", str(config), "--data", str(tiny_prepared)]
    assert tuning_main([*base, "--set", "search.archs={Unetto: [resnet18]}"]) == 2
    assert "search.archs.Unetto: model.arch 'Unetto' is not an smp architecture" in capsys.readouterr().err
    assert tuning_main([*base, "--set", "search.params={train.lr: {low: -1, high: 1}}"]) == 2
    assert "search.params.train.lr: -1.0 is not a valid train.lr" in capsys.readouterr().err


def test_set_reaches_run_ensemble(tmp_path):
    manifest = write_manifest(tmp_path / "models")
    images, out = tmp_path / "images", tmp_path / "out"
    make_image_folder(images, [(96, 64)], stems=["a"])
    assert (
        run_main(
            [
                "--manifest",
                str(manifest),
                "--images",
                str(images),
                "--out",
                str(out),
                "--workers",
                "0",
                "--quiet",
                "--device",
                "cpu",
                "--no-postprocess",
                "--set",
                "ensemble.tta=none",
                "--set",
                "ensemble.max_pixels=2048",
            ]
        )
        == 0
    )
    report = json.loads((out / "report.json").read_text())
    assert report["views"] == ["identity"] and report["downscaled"][0]["predicted_at"] == [55, 36]
    assert (
        run_main(
            [
                "--manifest",
                str(manifest),
                "--images",
                str(images),
                "--out",
                str(tmp_path / "o2"),
                "--set",
                "ensemble.tta=sideways",
            ]
        )
        == 2
    )


def test_a_taken_dashboard_port_is_replaced_by_a_free_one():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert not search.port_is_free("127.0.0.1", port)
        other = search.free_port("127.0.0.1", port)
        assert other > port and search.port_is_free("127.0.0.1", other)
    assert search.free_port("127.0.0.1", other) == other  # a free preferred port is kept


def test_address_comes_from_the_flag_then_ray_address_then_the_config(monkeypatch):
    cfg = RunConfig().with_overrides({"resources.address": "10.0.0.9:6379"})
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert search.resolve_address(RunConfig(), None) is None  # a fresh local Ray
    assert search.resolve_address(cfg, None) == "10.0.0.9:6379"
    assert search.resolve_address(cfg, "10.0.0.1:6379") == "10.0.0.1:6379"
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.2:6379")
    assert search.resolve_address(cfg, None) == "10.0.0.2:6379"
    assert search.resolve_address(cfg, "10.0.0.1:6379") == "10.0.0.1:6379"


def test_config_address_reaches_ray_init(monkeypatch):
    calls = []
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(search.ray, "init", lambda **kw: calls.append(kw))
    monkeypatch.setattr(search, "reap_orphans", lambda: pytest.fail("a local Ray was being started"))
    search.connect(RunConfig().with_overrides({"resources.address": "10.0.0.9:6379"}), None)
    assert calls == [{"address": "10.0.0.9:6379"}]


def test_search_joins_the_config_address_as_it_joins_address(tmp_path, tiny_prepared, monkeypatch):
    """python -m tuning with resources.address: the search goes where --address sends it."""
    joined = []

    class Joined(Exception):
        pass

    def ray_session(cfg, address):
        joined.append(address)
        raise Joined

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(search, "ray_session", ray_session)
    # On a cluster the driver need not see the data: no check of its paths before joining.
    monkeypatch.setattr(search, "check_paths_visible", lambda cfg: pytest.fail("checked like a local run"))
    config = tmp_path / "c.yaml"
    resources = {"storage": str(tmp_path / "ray"), "address": "10.0.0.9:6379"}
    config.write_text(yaml.safe_dump({"resources": resources}))
    base = ["--config", str(config), "--data", str(tiny_prepared)]
    for extra, expected in [([], "10.0.0.9:6379"), (["--address", "10.0.0.1:6379"], "10.0.0.1:6379")]:
        with pytest.raises(Joined):
            tuning_main([*base, *extra])
        assert joined.pop() == expected
