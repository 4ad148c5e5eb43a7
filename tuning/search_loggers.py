"""search.loggers: Ray Tune's own MLflow and Weights & Biases logger callbacks, off by default.

Each is an optional extra (`pip install '.[mlflow]'`, `'.[wandb]'`) imported only when the config
names it, so a search without loggers needs neither; a missing one stops the search before Ray
starts with a line naming the extra. Both callbacks log every trial's reported metrics (val_f1,
val_f1_<class>, losses, lr) and its sampled config under the trial's name (arch-encoder-id).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from configs.errors import ConfigError
from configs.optional import require


def _mlflow(experiment: str) -> Any:
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    # tracking_uri None: MLflow's own MLFLOW_TRACKING_URI, else ./mlruns
    return MLflowLoggerCallback(experiment_name=experiment, save_artifact=False)


def _wandb(experiment: str) -> Any:
    from ray.air.integrations.wandb import WandbLoggerCallback

    # The API key comes from WANDB_API_KEY or ~/.netrc (wandb login); WANDB_MODE=offline works too.
    return WandbLoggerCallback(project=experiment, log_config=True)


LOGGERS: dict[str, Callable[[str], Any]] = {"mlflow": _mlflow, "wandb": _wandb}


def check_loggers(names: list[str]) -> None:
    """Raise a ConfigError naming the extra for each logger whose package is not installed."""
    unknown = [n for n in names if n not in LOGGERS]
    if unknown:
        raise ConfigError(f"search.loggers: unknown {unknown}; expected some of {sorted(LOGGERS)}")
    if "mlflow" in names:
        require("mlflow", "mlflow", "search.loggers: mlflow", ConfigError)
    if "wandb" in names:
        require("wandb", "wandb", "search.loggers: wandb", ConfigError)


def logger_callbacks(names: list[str], experiment: str) -> list[Any]:
    """One Ray Tune callback per name, in order (none for an empty list)."""
    check_loggers(names)
    return [LOGGERS[n](experiment) for n in names]
