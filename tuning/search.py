"""The thin Ray layer: Tuner + OptunaSearch (TPE) + ASHA over the plain training function."""
from __future__ import annotations

import os
import socket
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch

from configs.schema import RunConfig, parse_config
from tuning.space import define_space, trial_overrides
from tuning.models import resolve_device
from tuning.train import train

METRIC, MODE = "val_f1", "max"


def is_uri(storage: str) -> bool:
    return "://" in storage


def experiment_path(cfg: RunConfig, name: str) -> str:
    storage = cfg.resources.storage
    # Ray reads a local path without a scheme only when it is absolute.
    return f"{storage.rstrip('/')}/{name}" if is_uri(storage) else str(Path(storage).resolve() / name)


def where() -> str:
    """This node, for error messages: hostname and IP."""
    host = socket.gethostname()
    try:
            ip = ray.util.get_node_ip_address()
    except Exception:  # outside Ray
        ip = "?"
    return f"{host} ({ip})"


def check_paths_visible(cfg: RunConfig) -> None:
    """Fail with the path and the node when data or local storage is not visible here."""
    for ref in cfg.data.datasets:
        if not (ref.path / "dataset.json").is_file():
            raise FileNotFoundError(
                f"prepared dataset {ref.path} not found on node {where()}: data paths must be "
                f"visible to every node (shared filesystem, same absolute path)")
    storage = cfg.resources.storage
    if not is_uri(storage) and not Path(storage).is_dir():
        raise FileNotFoundError(
            f"storage path {storage} not found on node {where()}: use a path every node "
            f"mounts (NFS) or a URI such as s3://bucket/runs")


def trainable(config: dict[str, Any], base: dict[str, Any]) -> None:
    """One Ray Tune trial: the sampled overrides on the base config, then tuning.train.train."""
    cfg = parse_config(base, source="base config").with_overrides(trial_overrides(config))
    check_paths_visible(cfg)
    node = f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:8]}"
    device = resolve_device(cfg.train.device).type
    started = time.perf_counter()
    reporting = 0.0  # time spent inside tune.report (copying checkpoints to storage)

    def on_epoch(metrics: dict, checkpoint_dir: Path) -> None:
        nonlocal reporting
        t0 = time.perf_counter()
        flat = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
        flat.update(node=node, device=device,
                    train_fn_seconds=t0 - started - reporting)
        tune.report(flat, checkpoint=tune.Checkpoint.from_directory(str(checkpoint_dir)))
        reporting += time.perf_counter() - t0

    with tempfile.TemporaryDirectory(prefix="faceparse-trial-") as work:
        resume_from = None
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            resume_from = Path(checkpoint.to_directory(os.path.join(work, "restored")))
        train(cfg, Path(work), resume_from=resume_from, on_epoch=on_epoch,
              cpus=max(1, int(cfg.resources.cpu)))


def connect(cfg: RunConfig, address: str | None) -> str | None:
    """Join a Ray cluster (address / RAY_ADDRESS) or start a local one; returns the dashboard URL."""
    address = address or os.environ.get("RAY_ADDRESS")
    res = cfg.resources
    if address:
        ctx = ray.init(address=address)
    else:
        # address="local" always starts a fresh Ray here; plain ray.init() would join whatever
        # cluster /tmp/ray/ray_current_cluster names, even a dead one.
        ctx = ray.init(address="local", include_dashboard=res.include_dashboard,
                       dashboard_host=res.dashboard_host, dashboard_port=res.dashboard_port)
    url = getattr(ctx, "dashboard_url", None)
    return f"http://{url}" if url and not url.startswith("http") else url


def build_tuner(cfg: RunConfig, name: str, *, callbacks: list | None = None):
    """A Tuner with OptunaSearch (TPE, multivariate, seeded), ASHA, checkpoint and failure config."""
    s = cfg.search
    with warnings.catch_warnings():
        # multivariate/group TPE are flagged experimental by Optuna but are its best fit for
        # a conditional (define-by-run) space.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=s.seed, multivariate=True, group=True)
    searcher = ConcurrencyLimiter(
        OptunaSearch(space=define_space(s), metric=METRIC, mode=MODE, sampler=sampler),
        max_concurrent=s.max_concurrent)
    scheduler = ASHAScheduler(time_attr="training_iteration", metric=METRIC, mode=MODE,
                              max_t=cfg.train.epochs, grace_period=min(s.asha.grace_period, cfg.train.epochs),
                              reduction_factor=s.asha.reduction_factor)
    storage = cfg.resources.storage
    return tune.Tuner(
        resourced_trainable(cfg),
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler,
                                    num_samples=s.num_samples),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage if is_uri(storage) else str(Path(storage).resolve()),
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=s.num_to_keep, checkpoint_score_attribute=METRIC,
                checkpoint_score_order=MODE),
            failure_config=tune.FailureConfig(max_failures=s.max_failures),
            callbacks=callbacks or [],
        ),
    )


def resourced_trainable(cfg: RunConfig):
    res = {"cpu": cfg.resources.cpu, "gpu": cfg.resources.gpu}
    return tune.with_resources(
        tune.with_parameters(trainable, base=cfg.model_dump(mode="json")), res)


def restore_tuner(cfg: RunConfig, path: str, *, callbacks: list | None = None):
    """Tuner.restore: finishes unfinished trials and resumes errored ones from their checkpoints."""
    tuner = tune.Tuner.restore(path, trainable=resourced_trainable(cfg),
                               resume_unfinished=True, resume_errored=True)
    if callbacks:
        # Callbacks are not part of the restored state; Tuner.restore takes no RunConfig.
        tuner._local_tuner.get_run_config().callbacks = list(callbacks)
    return tuner


class TrialTimer(tune.Callback):
    """Records each trial's wall time as the driver sees it (actor start to completion)."""

    def __init__(self):
        self.started: dict[str, float] = {}
        self.wall: dict[str, float] = {}

    def on_trial_start(self, iteration, trials, trial, **info):
        self.started.setdefault(trial.trial_id, time.time())

    def _end(self, trial):
        if trial.trial_id in self.started:
            self.wall[trial.trial_id] = time.time() - self.started.pop(trial.trial_id)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._end(trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._end(trial)
