"""The thin Ray layer: Tuner + OptunaSearch (TPE) + ASHA over the plain training function.

The only module that imports Ray (with tuning.search_loggers, its optional callbacks): it starts
or joins the cluster, runs or resumes the search and turns Ray's results into plain TrialSummary
records (tuning.library_export), so nothing after it needs Ray.
"""

from __future__ import annotations

import math
import os
import socket
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pyarrow.fs
import ray
from ray import tune
from ray._private import ray_constants
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch

from configs.errors import MissingPathError
from configs.schema import RunConfig, parse_config
from tuning.library_export import TrialSummary, error_message
from tuning.models import resolve_device
from tuning.orphans import reap_orphans
from tuning.search_loggers import logger_callbacks
from tuning.space import ARCH, define_space, each_arch_first, encoder_param, trial_overrides
from tuning.study import open_storage, study_name, study_storage_url
from tuning.train import train

MODE = "max"  # every search.metric is a score: higher is better
# Reported each epoch: seconds inside the training function since the previous report. Summed
# over a trial's rows it survives a resume, like Ray's own time_total_s it is compared with.
TRAIN_TIME = "train_fn_time_this_iter_s"
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": a local Ray binds to 127.0.0.1 only
_CLUSTER_FLAG = (os.environ.get(LOOPBACK_ENV), ray_constants.ENABLE_RAY_CLUSTER)  # as imported


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
            raise MissingPathError(
                f"prepared dataset {ref.path} not found on node {where()}: data paths must be "
                f"visible to every node (shared filesystem, same absolute path)"
            )
    storage = cfg.resources.storage
    if not is_uri(storage) and not Path(storage).is_dir():
        raise MissingPathError(
            f"storage path {storage} not found on node {where()}: use a path every node "
            f"mounts (NFS) or a URI such as s3://bucket/runs"
        )


def trainable(config: dict[str, Any], base: dict[str, Any]) -> None:
    """One Ray Tune trial: the sampled overrides on the base config, then tuning.train.train."""
    cfg = parse_config(base, source="base config").with_overrides(trial_overrides(config))
    check_paths_visible(cfg)
    node = f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:8]}"
    device = resolve_device(cfg.train.device).type
    since = time.perf_counter()  # trial start, then the end of each tune.report (it copies checkpoints)

    def on_epoch(metrics: dict, checkpoint_dir: Path) -> None:
        nonlocal since
        flat = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
        flat.update(node=node, device=device, **{TRAIN_TIME: time.perf_counter() - since})
        tune.report(flat, checkpoint=tune.Checkpoint.from_directory(str(checkpoint_dir)))
        since = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="faceparse-trial-") as work:
        resume_from = None
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            resume_from = Path(checkpoint.to_directory(os.path.join(work, "restored")))
        train(
            cfg, Path(work), resume_from=resume_from, on_epoch=on_epoch, cpus=max(1, int(cfg.resources.cpu))
        )


def port_is_free(host: str, port: int) -> bool:
    """Whether a TCP server could listen on host:port now."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str, preferred: int, tries: int = 100) -> int:
    """preferred when free, else the next free port above it (a second search on one machine)."""
    for port in range(preferred, min(preferred + tries, 65536)):
        if port_is_free(host, port):
            return port
    raise OSError(f"no free port for the Ray dashboard on {host} in {preferred}..{preferred + tries - 1}")


def resolve_address(cfg: RunConfig, address: str | None) -> str | None:
    """The Ray cluster to join: address (--address), else RAY_ADDRESS, else resources.address.

    None: start a fresh local Ray.
    """
    return address or os.environ.get("RAY_ADDRESS") or cfg.resources.address


def connect(cfg: RunConfig, address: str | None) -> str | None:
    """Join a Ray cluster (resolve_address) or start a local one; returns the dashboard URL."""
    address = resolve_address(cfg, address)
    res = cfg.resources
    if address:
        # Ray 2.60 sends the token to a cluster given by address only with RAY_AUTH_MODE=token set
        # (a client in token mode breaks a cluster without auth: its workers cannot call back).
        ctx = ray.init(address=address)
    else:
        reap_orphans()
        # address="local" always starts a fresh Ray here; plain ray.init() would join whatever
        # cluster /tmp/ray/ray_current_cluster names, even a dead one.
        port = res.dashboard_port
        if res.include_dashboard:
            port = free_port(res.dashboard_host, res.dashboard_port)
            if port != res.dashboard_port:
                print(
                    f"dashboard port {res.dashboard_port} is taken (another Ray on this machine?): "
                    f"using {port}",
                    flush=True,
                )
        # Ray reads the flag while starting its processes; restored at once so that nothing
        # later in this process (a cluster joined by address) sees it.
        loopback_only(is_loopback(res.dashboard_host))
        try:
            ctx = ray.init(
                address="local",
                include_dashboard=res.include_dashboard,
                dashboard_host=res.dashboard_host,
                dashboard_port=port,
            )
        finally:
            loopback_only(False)
    url = getattr(ctx, "dashboard_url", None)
    return f"http://{url}" if url and not url.startswith("http") else url


def is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def loopback_only(on: bool) -> None:
    """Whether a local Ray started from this process binds every port to 127.0.0.1 (False: Ray's default).

    Ray swaps 127.0.0.1 for this machine's routable IP (services.resolve_ip_for_localhost) unless
    its "cluster" flag is off; with the flag off, the GCS, raylet, agents and the dashboard's and
    autoscaler's Prometheus servers all bind to loopback instead of 0.0.0.0. A single-node run
    needs nothing else; `ray start --address` (joining a cluster) refuses to run with it.
    """
    env, flag = ("0", False) if on else _CLUSTER_FLAG
    if env is None:
        os.environ.pop(LOOPBACK_ENV, None)
    else:
        os.environ[LOOPBACK_ENV] = env  # what the processes Ray starts read
    ray_constants.ENABLE_RAY_CLUSTER = flag  # read once, at import, in this process


def build_tuner(cfg: RunConfig, name: str):
    """A Tuner with OptunaSearch (TPE, multivariate, seeded), ASHA, checkpoint and failure config."""
    s = cfg.search
    with warnings.catch_warnings():
        # multivariate/group TPE are flagged experimental by Optuna but are its best fit for
        # a conditional (define-by-run) space.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=s.seed, multivariate=True, group=True)
    # The study goes to persistent storage (optuna-dashboard, importances in the export). Tune
    # pickles the searcher, storage URL included, into the experiment state: --resume reopens
    # the same study.
    url = study_storage_url(s.optuna_storage, experiment_path(cfg, name))
    study = {"storage": open_storage(url), "study_name": study_name(name)} if url else {}
    searcher = ConcurrencyLimiter(
        OptunaSearch(
            space=define_space(s),
            metric=s.metric,
            mode=MODE,
            sampler=sampler,
            points_to_evaluate=each_arch_first(s),
            **study,
        ),
        max_concurrent=s.max_concurrent,
    )
    scheduler = ASHAScheduler(
        time_attr="training_iteration",
        metric=s.metric,
        mode=MODE,
        max_t=cfg.train.epochs,
        grace_period=min(s.asha.grace_period, cfg.train.epochs),
        reduction_factor=s.asha.reduction_factor,
    )
    storage = cfg.resources.storage
    return tune.Tuner(
        resourced_trainable(cfg),
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=s.num_samples,
            trial_name_creator=trial_name,
            trial_dirname_creator=trial_name,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage if is_uri(storage) else str(Path(storage).resolve()),
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=s.num_to_keep, checkpoint_score_attribute=s.metric, checkpoint_score_order=MODE
            ),
            failure_config=tune.FailureConfig(max_failures=s.max_failures),
            callbacks=logger_callbacks(s.loggers, name),
        ),
    )


def trial_name(trial) -> str:
    """What the dashboard, TensorBoard and the storage folder call a trial: arch, encoder and the
    trial id, e.g. DeepLabV3Plus-resnet18-34ffa8d1 (Ray's default says only trainable_34ffa8d1)."""
    return f"{model_label(trial.config)}-{trial.trial_id}"


def model_label(config: dict[str, Any]) -> str:
    """ARCH-ENCODER from a trial's sampled config ("trial" before the searcher filled it)."""
    arch = config.get(ARCH)
    encoder = config.get(encoder_param(arch)) if arch else None
    return f"{arch}-{encoder}" if arch and encoder else "trial"


def resourced_trainable(cfg: RunConfig):
    res = {"cpu": cfg.resources.cpu, "gpu": cfg.resources.gpu}
    return tune.with_resources(tune.with_parameters(trainable, base=cfg.model_dump(mode="json")), res)


def restore_tuner(cfg: RunConfig, path: str, trainable=None):
    """Tuner.restore: finishes unfinished trials and resumes errored ones from their checkpoints.

    trainable: the experiment's (default the search's; the refit passes its own)."""
    return tune.Tuner.restore(
        path,
        trainable=trainable or resourced_trainable(cfg),
        resume_unfinished=True,
        resume_errored=True,
    )


def can_restore(path: str) -> bool:
    """Whether path already holds a search (one Tuner.restore can continue)."""
    return tune.Tuner.can_restore(path)


@contextmanager
def ray_session(cfg: RunConfig, address: str | None) -> Iterator[str | None]:
    """connect() for the duration of a with-block (yields the dashboard URL), then shut Ray down."""
    try:
        yield connect(cfg, address)
    finally:
        ray.shutdown()


@dataclass
class SearchOutcome:
    trials: list[TrialSummary]
    finished: bool  # False: interrupted (Ctrl-C, lost driver); Tune saved its state for --resume


def run_search(cfg: RunConfig, name: str, *, resume: bool, staging: Path) -> SearchOutcome:
    """Run (or resume) the search; inside ray_session. staging: see summarize()."""
    path = experiment_path(cfg, name)
    tuner = restore_tuner(cfg, path) if resume else build_tuner(cfg, name)
    results = tuner.fit()
    finished = len(results) >= cfg.search.num_samples and all_trials_ended(path)
    return SearchOutcome(summarize(results, cfg, staging) if finished else [], finished)


def all_trials_ended(path: str) -> bool:
    """Whether the experiment state Tune saved says every trial ended (terminated or errored).

    On Ctrl-C Tune saves the state with the running trials unfinished and then stops them: the
    ResultGrid it returns counts them as terminated, like trials that ran to the end.
    """
    trials = tune.ExperimentAnalysis(path).trials
    return bool(trials) and all(t.status in ("TERMINATED", "ERROR") for t in trials)


def load_trials(cfg: RunConfig, path: str, staging: Path) -> list[TrialSummary]:
    """The trials of a finished search from its experiment path (no running Ray needed)."""
    analysis = tune.ExperimentAnalysis(path, default_metric=cfg.search.metric, default_mode=MODE)
    return summarize(tune.ResultGrid(analysis), cfg, staging)


def summarize(results: tune.ResultGrid, cfg: RunConfig, staging: Path) -> list[TrialSummary]:
    """One TrialSummary per trial. Best checkpoints on remote storage (s3://...) are downloaded
    to staging/TRIAL_ID, so every best_checkpoint is a local directory."""
    return [trial_summary(result, cfg, staging) for result in results]


def trial_summary(result: tune.Result, cfg: RunConfig, staging: Path) -> TrialSummary:
    metric = cfg.search.metric
    config = result.config or {}
    df = result.metrics_dataframe
    rows = [] if df is None or metric not in df else df.to_dict("records")
    epochs = [{k: v for k, v in row.items() if not str(k).startswith("config/")} for row in rows]
    scores = [row[metric] for row in rows if not _isnan(row[metric])]
    last = rows[-1] if rows else {}
    trial_id = str((result.metrics or {}).get("trial_id") or Path(result.path).name)
    reached = max((int(e["epoch"]) for e in epochs if "epoch" in e), default=0)
    trial = TrialSummary(
        trial_id=trial_id,
        config=trial_overrides(config) if "arch" in config else {},
        status="error" if result.error else "completed" if reached >= cfg.train.epochs else "stopped early",
        metric=metric,
        epochs=epochs,
        best_score=max(scores) if scores else math.nan,
        error=error_message(result.error) if result.error else "",
        node=str(last.get("node", "")),
        device=str(last.get("device", "")),
        train_s=sum(r[TRAIN_TIME] for r in rows) if rows and TRAIN_TIME in last else math.nan,
        wall_s=float(last.get("time_total_s", math.nan)),
    )
    if result.best_checkpoints:
        best, _ = max(result.best_checkpoints, key=lambda cm: cm[1].get(metric, -math.inf))
        if isinstance(best.filesystem, pyarrow.fs.LocalFileSystem):
            trial.best_checkpoint = Path(best.path)
        else:
            trial.best_checkpoint = Path(best.to_directory(str(staging / trial_id)))
    return trial


def _isnan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
