"""search.loggers: Ray Tune's MLflow / W&B callbacks, off by default, a clear line when missing."""

from __future__ import annotations

import builtins
import sys
import types

import pytest
from ray.air.integrations import wandb as ray_wandb
from ray.air.integrations.mlflow import MLflowLoggerCallback
from ray.air.integrations.wandb import WandbLoggerCallback

from configs.errors import ConfigError
from configs.schema import RunConfig, parse_config
from tuning.search_loggers import check_loggers, logger_callbacks


def test_no_loggers_by_default():
    assert RunConfig().search.loggers == []
    assert logger_callbacks(RunConfig().search.loggers, "exp") == []


def test_an_unknown_logger_is_a_config_error():
    with pytest.raises(ConfigError, match="loggers"):
        parse_config({"search": {"loggers": ["tensorboardx"]}}, source="cfg.yaml")


@pytest.mark.parametrize("name", ["mlflow", "wandb"])
def test_a_missing_logger_package_names_its_extra(name, monkeypatch):
    real = builtins.__import__

    def without(module, *args, **kwargs):
        if module.split(".")[0] == name:
            raise ImportError(f"No module named {name!r}")
        return real(module, *args, **kwargs)

    monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(builtins, "__import__", without)
    with pytest.raises(
        ConfigError,
        match=rf"search.loggers: {name} needs the optional package {name}: pip install '\.\[{name}\]'",
    ):
        check_loggers([name])


def test_installed_loggers_become_rays_callbacks_named_for_the_experiment(monkeypatch):
    # Stand-ins for the packages: the callbacks only import them when they are made.
    for name in ("mlflow", "wandb"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setattr(ray_wandb, "wandb", sys.modules["wandb"])  # Ray imported it (or None) at import
    mlflow_cb, wandb_cb = logger_callbacks(["mlflow", "wandb"], "demo")
    assert isinstance(mlflow_cb, MLflowLoggerCallback) and mlflow_cb.experiment_name == "demo"
    assert isinstance(wandb_cb, WandbLoggerCallback) and wandb_cb.project == "demo"
