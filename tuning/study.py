"""The search's Optuna study in persistent storage, and what the export reads from it (no Ray here).

By default the study lives in sqlite beside the Ray experiment (STORAGE/NAME/optuna.db), so
`optuna-dashboard sqlite:///STORAGE/NAME/optuna.db` shows it live, a resumed search keeps adding
to the same study, and the export writes parameter importances and the study's trials table.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from data_prep.atomic import write_json, write_text
from data_prep.figures import horizontal_bars, save_figure

STUDY_FILE = "optuna.db"
SQLITE = "sqlite:///"


def study_storage_url(setting: str | None, exp_path: str) -> str | None:
    """search.optuna_storage -> an SQLAlchemy URL, or None for an in-memory study.

    "auto": sqlite at EXPERIMENT/optuna.db when the experiment is a local path (sqlite cannot live
    on s3://...: None there); a URL (sqlite:///..., postgresql://...) as given; any other string
    is a path for a sqlite file.
    """
    if setting is None or (setting == "auto" and "://" in exp_path):
        return None
    if setting == "auto":
        return SQLITE + str(Path(exp_path).resolve() / STUDY_FILE)
    return setting if "://" in setting else SQLITE + str(Path(setting).resolve())


def study_name(exp_path: str) -> str:
    """The study's name in its storage: the experiment's (one database may hold several searches)."""
    return exp_path.rstrip("/").rsplit("/", 1)[-1]


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """The storage the searcher writes to (a sqlite file's folder is created first)."""
    if url.startswith(SQLITE):
        Path(url[len(SQLITE) :]).parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.RDBStorage(url)


def load_study(url: str | None, name: str) -> optuna.Study | None:
    """The stored study, or None when there is none (in-memory search, file or study missing)."""
    if url is None or (url.startswith(SQLITE) and not Path(url[len(SQLITE) :]).is_file()):
        return None
    try:
        return optuna.load_study(study_name=name, storage=url)
    except KeyError:  # the database holds no study of that name
        return None


def param_importances(study: optuna.Study) -> tuple[dict[str, float], str]:
    """(importance per parameter, best first; why there are none, else "").

    PED-ANOVA: Optuna's default evaluator, and the one that needs no scikit-learn (fANOVA and
    mean decrease impurity fit random forests). Conditional parameters (each architecture's
    encoder) are scored over the trials that sampled them; one with a single choice scores 0.
    """
    completed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(completed) < 2:
        return {}, f"{len(completed)} completed trial(s): importances need at least 2"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "fewer than 2 trials in a regime" on every small study
            values = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.PedAnovaImportanceEvaluator()
            )
    except (ValueError, RuntimeError) as err:
        return {}, f"optuna could not compute importances: {err}"
    if not values:
        return {}, "the study has no sampled parameters"
    return {k: float(v) for k, v in values.items()}, ""


def plot_importances(importances: dict[str, float], path: Path, title: str) -> None:
    """Horizontal bars, the most important parameter on top."""
    save_figure(horizontal_bars(importances, title, "importance (PED-ANOVA, sums to 1)"), path, dpi=110)


def write_study_report(study: optuna.Study, url: str, out: Path) -> dict[str, Any]:
    """param_importance.json (+ .png when there are importances) and study_trials.csv in out.

    Returns what param_importance.json holds.
    """
    out.mkdir(parents=True, exist_ok=True)
    importances, why_none = param_importances(study)
    completed = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    report = {
        "study": study.study_name,
        "storage": url,
        "evaluator": "PedAnovaImportanceEvaluator",
        "trials": len(study.trials),
        "completed_trials": completed,
        "importances": importances,
        "note": why_none,
    }
    plot = out / "param_importance.png"
    if importances:
        plot_importances(importances, plot, f"parameter importance ({completed} completed trials)")
    else:
        plot.unlink(missing_ok=True)  # an old plot would contradict the note
    write_json(out / "param_importance.json", report)
    write_text(out / "study_trials.csv", _trials_table(study).to_csv(index=False))
    return report


def _trials_table(study: optuna.Study) -> pd.DataFrame:
    df = study.trials_dataframe(attrs=("number", "value", "state", "params", "duration"))
    if "duration" in df:  # all None (object dtype) while every trial still runs: to_timedelta copes
        df["duration"] = pd.to_timedelta(df["duration"]).dt.total_seconds()
    return df


def importance_line(report: dict[str, Any]) -> str:
    """One line for the terminal: the top parameters, or why there are none."""
    if not report["importances"]:
        return f"param importance: none ({report['note']})"
    top = ", ".join(f"{k} {v:.2f}" for k, v in list(report["importances"].items())[:4])
    return f"param importance ({report['completed_trials']} trials, PED-ANOVA): {top}"
