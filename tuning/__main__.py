"""python -m tuning {search,prefetch-weights,export,refit} ...: search architectures and hyperparameters,
export the top-k members. `search` is the default: `python -m tuning --config F ...` runs it."""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from configs import ConfigError
from configs.command_line import add_version_argument
from configs.errors import run_cli
from configs.overrides import add_set_argument, load_with_sets
from configs.provenance import write_provenance
from configs.schema import RunConfig
from tuning import refit_command

# Ray, Optuna, torch, pandas are imported where they run: `--help` and `--version` need none of them.
if TYPE_CHECKING:
    from tuning.library_export import TrialSummary

DEFAULT_COMMAND = "search"


def add_search_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, type=Path, help="YAML run config (configs/*.yaml)")
    p.add_argument("--data", nargs="+", type=Path, help="prepared dataset(s); replaces data.datasets")
    p.add_argument("--num-samples", type=int, help="number of trials (search.num_samples)")
    p.add_argument("--max-epochs", type=int, help="epochs per trial (train.epochs; ASHA max_t)")
    p.add_argument("--max-concurrent", type=int, help="trials at once (search.max_concurrent)")
    p.add_argument("--top-k", type=int, help="ensemble size the library is sized for (search.top_k)")
    p.add_argument(
        "--candidates",
        type=int,
        help="trials exported as candidates for ensemble fit (search.candidates; default 2 x top-k)",
    )
    p.add_argument("--max-per-arch", type=int, help="cap members per architecture")
    p.add_argument("--cpus-per-trial", type=float, help="resources.cpu")
    p.add_argument("--gpus-per-trial", type=float, help="resources.gpu (fractions share a card)")
    p.add_argument("--out", type=Path, help="where the manifest goes (default models/NAME)")
    p.add_argument("--name", help="experiment name (default: the config file's stem)")
    p.add_argument("--storage", help="local path or URI every node can reach (resources.storage)")
    p.add_argument(
        "--address",
        help="Ray cluster address (default: RAY_ADDRESS, else resources.address, else a fresh local Ray)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted search: finish unfinished and errored trials",
    )
    p.add_argument("--dashboard-host", help="resources.dashboard_host (default 127.0.0.1)")
    p.add_argument("--dashboard-port", type=int, help="resources.dashboard_port")
    p.add_argument("--seed", type=int, help="search seed (search.seed)")
    add_set_argument(p)


def apply_cli(cfg: RunConfig, args: argparse.Namespace) -> RunConfig:
    """CLI flags -> config overrides (one schema: the flags only fill its fields)."""
    flags = {
        "search.num_samples": args.num_samples,
        "train.epochs": args.max_epochs,
        "search.max_concurrent": args.max_concurrent,
        "search.top_k": args.top_k,
        "search.candidates": args.candidates,
        "search.max_per_arch": args.max_per_arch,
        "resources.cpu": args.cpus_per_trial,
        "resources.gpu": args.gpus_per_trial,
        "resources.storage": args.storage,
        "resources.dashboard_host": args.dashboard_host,
        "resources.dashboard_port": args.dashboard_port,
        "search.seed": args.seed,
    }
    overrides = {k: v for k, v in flags.items() if v is not None}
    if args.data:
        overrides["data.datasets"] = [{"path": str(p)} for p in args.data]
    cfg = cfg.with_overrides(overrides) if overrides else cfg
    # Ray runs each trial in its own directory: make every local path absolute on the driver.
    absolute = {
        "data.datasets": [{"path": str(d.path.resolve()), "weight": d.weight} for d in cfg.data.datasets]
    }
    if "://" not in cfg.resources.storage:
        absolute["resources.storage"] = str(Path(cfg.resources.storage).resolve())
    return cfg.with_overrides(absolute)


def run_search(args: argparse.Namespace) -> int:
    from tuning import search

    cfg = apply_cli(load_with_sets(args.config, args.overrides), args)
    if not cfg.data.datasets:
        raise ConfigError("no training data: set data.datasets in the config or pass --data PREP")
    name = args.name or args.config.stem
    out = args.out or Path("models") / name
    exp_path = search.experiment_path(cfg, name)
    if not search.is_uri(cfg.resources.storage):
        Path(cfg.resources.storage).mkdir(parents=True, exist_ok=True)
        if not args.resume and search.can_restore(exp_path):
            raise ConfigError(
                f"{exp_path} already holds a search: pass --resume to continue it, "
                f"or --name NEW to start another"
            )
    address = search.resolve_address(cfg, args.address)
    if not address:
        search.check_paths_visible(cfg)  # fail here, before starting Ray, on a single machine
    check_before_ray(cfg, args.config)

    with search.ray_session(cfg, address) as url, tempfile.TemporaryDirectory() as staging:
        if url:
            port = url.rsplit(":", 1)[-1].strip("/")  # the port in use: the configured one may be taken
            print(
                f"Ray dashboard: {url}  (token: ~/.ray/auth_token; from your laptop: "
                f"ssh -L {port}:127.0.0.1:{port} HEAD)",
                flush=True,
            )
        started = time.time()
        outcome = search.run_search(cfg, name, resume=args.resume, staging=Path(staging))
        wall = time.time() - started
        if not outcome.finished:
            # Ctrl-C (or a lost driver): Tune saved its state; export only a finished search.
            print(
                f"\nsearch interrupted after {wall:.0f} s: nothing exported. Continue it with "
                f"the same command plus --resume ({exp_path})",
                file=sys.stderr,
            )
            return 130
        return export_and_summarise(cfg, outcome.trials, out, wall, exp_path)


def check_before_ray(cfg: RunConfig, config_path: Path) -> None:
    """What would otherwise fail inside every trial: smp names of the space, undecodable data;
    and a search.loggers entry whose package is missing."""
    from data_prep.check import check_datasets
    from tuning.models import search_space_errors
    from tuning.search_loggers import check_loggers

    check_loggers(cfg.search.loggers)
    errors = search_space_errors(cfg)
    if errors:
        raise ConfigError("\n".join(f"{config_path}: {line}" for line in errors))
    # On a cluster the driver may not mount the data; the trials then check what they read.
    visible = [d.path for d in cfg.data.datasets if (d.path / "dataset.json").is_file()]
    check_datasets(visible)


def export_and_summarise(
    cfg: RunConfig, trials: list[TrialSummary], out: Path, wall: float, exp_path: str
) -> int:
    """Rank, write trials.csv + plot, export the candidate library and say where everything went."""
    from tuning import library_export, search_html, study

    members = library_export.rank(trials, cfg.search.library_size, cfg.search.max_per_arch)
    out.mkdir(parents=True, exist_ok=True)
    write_provenance(out, config=cfg, extra={"experiment": exp_path})
    df = library_export.write_trials_csv(trials, out / "trials.csv")
    library_export.plot_trials(trials, out / "trials.png")
    per_class = library_export.write_per_class_csv(trials, out / "per_class_f1.csv")
    importance = write_study_outputs(cfg, exp_path, out)
    page = search_html.write_search_html(out, trials, cfg.train.epochs, per_class, importance)
    print("\n" + library_export.ranked_table(trials, members))
    if not members:
        print(
            f"\nerror: no trial produced a checkpoint; see {out / 'trials.csv'} and {exp_path}",
            file=sys.stderr,
        )
        return 1
    manifest = library_export.export_members(members, out)
    overhead = df["overhead_s"].dropna()
    summary = f"{len(trials)} trials"
    if not math.isnan(wall):
        summary = f"search wall time {wall:.1f} s, {summary}"
    if len(overhead):
        summary += f", Ray overhead per trial {overhead.mean():.1f} s (median {overhead.median():.1f} s)"
    print("\n" + summary)
    print(
        f"manifest: {manifest.path} ({len(members)} candidates; choose the ensemble on val with "
        f"python -m ensemble fit --manifest {manifest.path} --data PREP)"
    )
    print(f"trials:   {out / 'trials.csv'}, plot {out / 'trials.png'}, report {page}")
    print(f"classes:  {out / 'per_class_f1.csv'} (val F1 per class at each trial's best epoch)")
    if importance:
        print(f"study:    optuna-dashboard {importance['storage']}")
        print(f"          {study.importance_line(importance)} -> {out / 'param_importance.json'}")
    print(f"search:   {exp_path} (resume with --resume)")
    return 0


def write_study_outputs(cfg: RunConfig, exp_path: str, out: Path) -> dict | None:
    """Parameter importances and the trials table from the search's stored Optuna study, if kept."""
    from tuning import study

    url = study.study_storage_url(cfg.search.optuna_storage, exp_path)
    stored = study.load_study(url, study.study_name(exp_path))
    return None if stored is None else study.write_study_report(stored, url, out)


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, type=Path, help="the YAML run config the search ran with")
    p.add_argument("--experiment", required=True, help="experiment path of the search (STORAGE/NAME)")
    p.add_argument("--out", required=True, type=Path, help="folder for the manifest, weights, trials.csv")
    p.add_argument("--top-k", type=int, help="ensemble size the library is sized for (default search.top_k)")
    p.add_argument(
        "--candidates", type=int, help="trials to export (default search.candidates, else 2 x top-k)"
    )
    p.add_argument("--max-per-arch", type=int, help="cap members per architecture (search.max_per_arch)")
    add_set_argument(p)


def run_export(args: argparse.Namespace) -> int:
    from tuning import search

    cfg = load_with_sets(args.config, args.overrides)
    flags = {
        "search.top_k": args.top_k,
        "search.candidates": args.candidates,
        "search.max_per_arch": args.max_per_arch,
    }
    over = {k: v for k, v in flags.items() if v is not None}
    cfg = cfg.with_overrides(over) if over else cfg
    # Ray reads a local experiment path without a scheme only when it is absolute.
    exp_path = args.experiment if search.is_uri(args.experiment) else str(Path(args.experiment).resolve())
    with tempfile.TemporaryDirectory() as staging:
        trials = search.load_trials(cfg, exp_path, Path(staging))
        return export_and_summarise(cfg, trials, args.out, math.nan, exp_path)


def add_prefetch_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", required=True, type=Path, help="YAML run config: every encoder of search.archs is fetched"
    )
    add_set_argument(p)


def run_prefetch(args: argparse.Namespace) -> int:
    from tuning.models import prefetch_weights

    fetched = prefetch_weights(load_with_sets(args.config, args.overrides))
    print("cached:", ", ".join(fetched) if fetched else "nothing to fetch (encoder_weights is null)")
    return 0


# subcommand -> (add_arguments(parser), main(args) -> int, help)
COMMANDS = {
    "search": (
        add_search_arguments,
        run_search,
        "Ray Tune + Optuna search, then top-k export (the default subcommand)",
    ),
    "prefetch-weights": (
        add_prefetch_arguments,
        run_prefetch,
        "download the encoder weights of a search space into the cache",
    ),
    "export": (add_export_arguments, run_export, "(re-)export the top-k members of a finished search"),
    "refit": (
        refit_command.add_arguments,
        refit_command.main,
        "train the best configs again on K folds (out-of-fold predictions) or S seeds, as bags",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tuning", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_version_argument(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (add_arguments, _, help_text) in COMMANDS.items():
        add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv = [DEFAULT_COMMAND, *argv]  # `python -m tuning --config F` as DESIGN.md shows it
    args = build_parser().parse_args(argv)
    # Bad input (a FaceParseError): `error: ...` and exit 2; anything else keeps its traceback.
    return run_cli(COMMANDS[args.command][1], args)


if __name__ == "__main__":
    sys.exit(main())
