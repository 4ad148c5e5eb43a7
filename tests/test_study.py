"""The search's Optuna study in sqlite beside the experiment: where it goes, and the export's
parameter importances and trials table from it (no Ray)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pandas as pd
import pytest

from configs.schema import parse_config
from tuning.__main__ import write_study_outputs
from tuning.space import define_space
from tuning.study import STUDY_FILE, open_storage, study_storage_url

SPACE = {
    "archs": {"Unet": ["resnet18"]},
    "params": {"train.lr": {"low": 1e-4, "high": 1e-1, "log": True}, "train.batch_size": {"choices": [2, 4]}},
}


def fake_study(exp: Path, completed: int, seed: int = 0) -> None:
    """A study as the search leaves it: named after the experiment, val_f1 driven by train.lr alone."""
    cfg = parse_config({"search": SPACE})
    study = optuna.create_study(
        storage=open_storage(study_storage_url("auto", str(exp))),
        study_name=exp.name,
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=seed),
    )
    space = define_space(cfg.search)
    for _ in range(completed):
        trial = study.ask()
        space(trial)
        study.tell(trial, 1.0 - abs(math.log10(trial.params["train.lr"]) + 2.5) / 2)
    study.tell(study.ask(), state=optuna.trial.TrialState.FAIL)  # an errored trial is listed too


def test_export_writes_importances_that_rank_the_parameter_that_matters_first(tmp_path):
    exp = tmp_path / "ray" / "demo"
    fake_study(exp, completed=24)
    assert (exp / STUDY_FILE).is_file()
    out = tmp_path / "models"
    report = write_study_outputs(parse_config({"search": SPACE}), str(exp), out)

    assert (out / "param_importance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((out / "param_importance.json").read_text())
    assert saved == report and saved["study"] == "demo" and saved["completed_trials"] == 24
    importances = saved["importances"]
    assert list(importances)[0] == "train.lr"  # val_f1 depends on lr only
    assert importances["train.lr"] > importances["train.batch_size"]
    assert sum(importances.values()) == pytest.approx(1.0)
    trials = pd.read_csv(out / "study_trials.csv")
    assert len(trials) == 25 and set(trials["state"]) == {"COMPLETE", "FAIL"}
    assert {"value", "params_train.lr", "params_arch"} <= set(trials.columns)


def test_with_one_completed_trial_the_export_says_why_there_is_no_plot(tmp_path):
    exp = tmp_path / "ray" / "one"
    fake_study(exp, completed=1)
    out = tmp_path / "models"
    (out).mkdir()
    (out / "param_importance.png").write_bytes(b"old")  # from an earlier export: must not survive
    report = write_study_outputs(parse_config({"search": SPACE}), str(exp), out)
    assert report["importances"] == {} and "1 completed trial(s)" in report["note"]
    assert not (out / "param_importance.png").exists()
    assert len(pd.read_csv(out / "study_trials.csv")) == 2


def test_export_while_the_first_trials_still_run_lists_them_without_durations(tmp_path):
    exp = tmp_path / "ray" / "early"
    cfg = parse_config({"search": SPACE})
    study = optuna.create_study(
        storage=open_storage(study_storage_url("auto", str(exp))), study_name=exp.name, direction="maximize"
    )
    for _ in range(2):
        define_space(cfg.search)(study.ask())  # running: no duration yet (an all-None column)
    out = tmp_path / "models"
    report = write_study_outputs(cfg, str(exp), out)
    assert report["importances"] == {}
    trials = pd.read_csv(out / "study_trials.csv")
    assert list(trials["state"]) == ["RUNNING", "RUNNING"] and trials["duration"].isna().all()


def test_study_storage_is_sqlite_beside_a_local_experiment_unless_set(tmp_path):
    exp = str(tmp_path / "ray" / "demo")
    assert study_storage_url("auto", exp) == f"sqlite:///{tmp_path}/ray/demo/optuna.db"
    assert study_storage_url("auto", "s3://bucket/runs/demo") is None  # no sqlite file on s3
    assert study_storage_url(None, exp) is None
    assert study_storage_url("postgresql://db/optuna", exp) == "postgresql://db/optuna"
    assert study_storage_url(str(tmp_path / "s.db"), exp) == f"sqlite:///{tmp_path}/s.db"
    # no stored study (disabled, or a search from before): nothing written, no error
    cfg = parse_config({"search": {**SPACE, "optuna_storage": None}})
    assert write_study_outputs(cfg, exp, tmp_path / "out") is None
    assert write_study_outputs(parse_config({}), exp, tmp_path / "out") is None
    assert not (tmp_path / "ray" / "demo" / STUDY_FILE).exists()  # looking did not create one
