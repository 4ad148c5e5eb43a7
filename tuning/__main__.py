"""python -m tuning --config FILE ...          Ray Tune + Optuna search, then top-k export
python -m tuning prefetch-weights --config FILE  fill the weights cache for every encoder
python -m tuning export --experiment PATH ...    (re-)export top-k from a finished search"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from configs import ConfigError, load_config
from configs.schema import RunConfig


def _search_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tuning", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, type=Path, help="YAML run config (configs/*.yaml)")
    p.add_argument("--data", nargs="+", type=Path, help="prepared dataset(s); replaces data.datasets")
    p.add_argument("--num-samples", type=int, help="number of trials (search.num_samples)")
    p.add_argument("--max-epochs", type=int, help="epochs per trial (train.epochs; ASHA max_t)")
    p.add_argument("--max-concurrent", type=int, help="trials at once (search.max_concurrent)")
    p.add_argument("--top-k", type=int, help="members to export (search.top_k)")
    p.add_argument("--max-per-arch", type=int, help="cap members per architecture")
    p.add_argument("--cpus-per-trial", type=float, help="resources.cpu")
    p.add_argument("--gpus-per-trial", type=float, help="resources.gpu (fractions share a card)")
    p.add_argument("--out", type=Path, help="where the manifest goes (default models/NAME)")
    p.add_argument("--name", help="experiment name (default: the config file's stem)")
    p.add_argument("--storage", help="local path or URI every node can reach (resources.storage)")
    p.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else a fresh local Ray)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted search: finish unfinished and errored trials")
    p.add_argument("--dashboard-host", help="resources.dashboard_host (default 127.0.0.1)")
    p.add_argument("--dashboard-port", type=int, help="resources.dashboard_port")
    p.add_argument("--seed", type=int, help="search seed (search.seed)")
    return p


def apply_cli(cfg: RunConfig, args: argparse.Namespace) -> RunConfig:
    """CLI flags -> config overrides (one schema: the flags only fill its fields)."""
    flags = {
        "search.num_samples": args.num_samples, "train.epochs": args.max_epochs,
        "search.max_concurrent": args.max_concurrent, "search.top_k": args.top_k,
        "search.max_per_arch": args.max_per_arch, "resources.cpu": args.cpus_per_trial,
        "resources.gpu": args.gpus_per_trial, "resources.storage": args.storage,
        "resources.dashboard_host": args.dashboard_host,
        "resources.dashboard_port": args.dashboard_port, "search.seed": args.seed,
    }
    overrides = {k: v for k, v in flags.items() if v is not None}
    if args.data:
        overrides["data.datasets"] = [{"path": str(p)} for p in args.data]
    cfg = cfg.with_overrides(overrides) if overrides else cfg
    # Ray runs each trial in its own directory: make every local path absolute on the driver.
    absolute = {"data.datasets": [{"path": str(d.path.resolve()), "weight": d.weight}
                                  for d in cfg.data.datasets]}
    if "://" not in cfg.resources.storage:
        absolute["resources.storage"] = str(Path(cfg.resources.storage).resolve())
    return cfg.with_overrides(absolute)


def run_search(args: argparse.Namespace) -> int:
    from tuning import search

    cfg = apply_cli(load_config(args.config), args)
    if not cfg.data.datasets:
        raise ConfigError("no training data: set data.datasets in the config or pass --data PREP")
    name = args.name or args.config.stem
    out = args.out or Path("models") / name
    exp_path = search.experiment_path(cfg, name)
    if not search.is_uri(cfg.resources.storage):
        Path(cfg.resources.storage).mkdir(parents=True, exist_ok=True)
        from ray import tune

        if not args.resume and tune.Tuner.can_restore(exp_path):
            raise ConfigError(f"{exp_path} already holds a search: pass --resume to continue it, "
                              f"or --name NEW to start another")
    if not args.address:
        search.check_paths_visible(cfg)  # fail here, before starting Ray, on a single machine

    url = search.connect(cfg, args.address)
    if url:
        print(f"Ray dashboard: {url}  (token: ~/.ray/auth_token; from your laptop: "
              f"ssh -L {cfg.resources.dashboard_port}:127.0.0.1:{cfg.resources.dashboard_port} HEAD)",
              flush=True)
    import ray

    try:
        timer = search.TrialTimer()
        started = time.time()
        if args.resume:
            tuner = search.restore_tuner(cfg, exp_path, callbacks=[timer])
        else:
            tuner = search.build_tuner(cfg, name, callbacks=[timer])
        results = tuner.fit()
        wall = time.time() - started
        if len(results) < cfg.search.num_samples or \
                results.num_terminated + results.num_errors < len(results):
            # Ctrl-C (or a lost driver): Tune saved its state; export only a finished search.
            print(f"\nsearch interrupted after {wall:.0f} s: nothing exported. Continue it with "
                  f"the same command plus --resume ({exp_path})", file=sys.stderr)
            return 130
        return finish(cfg, results, out, timer.wall, wall, exp_path)
    finally:
        ray.shutdown()


def finish(cfg: RunConfig, results, out: Path, trial_wall: dict, wall: float, exp_path: str) -> int:
    from tuning import export

    trials = export.summarize(results, cfg.train.epochs, trial_wall)
    members = export.rank(trials, cfg.search.top_k, cfg.search.max_per_arch)
    out.mkdir(parents=True, exist_ok=True)
    df = export.write_trials_csv(trials, out / "trials.csv")
    export.plot_trials(trials, out / "trials.png")
    print("\n" + export.ranked_table(trials, members))
    if not members:
        print(f"\nerror: no trial produced a checkpoint; see {out / 'trials.csv'} and {exp_path}",
              file=sys.stderr)
        return 1
    export.export_members(members, out)
    overhead = df["overhead_s"].dropna()
    print(f"\nsearch wall time {wall:.1f} s, {len(trials)} trials"
          + (f", Ray overhead per trial {overhead.mean():.1f} s (median {overhead.median():.1f} s)"
             if len(overhead) else ""))
    print(f"manifest: {out / 'manifest.json'} ({len(members)} members)")
    print(f"trials:   {out / 'trials.csv'}, plot {out / 'trials.png'}")
    print(f"search:   {exp_path} (resume with --resume)")
    return 0


def run_export(argv: list[str]) -> int:
    import ray.tune

    p = argparse.ArgumentParser(prog="python -m tuning export",
                                description="(re-)export the top-k members of a finished search")
    p.add_argument("--config", required=True, type=Path)
    p.add_argument("--experiment", required=True, help="experiment path (STORAGE/NAME)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--top-k", type=int)
    p.add_argument("--max-per-arch", type=int)
    args = p.parse_args(argv)
    cfg = load_config(args.config)
    over = {k: v for k, v in {"search.top_k": args.top_k, "search.max_per_arch": args.max_per_arch}.items()
            if v is not None}
    cfg = cfg.with_overrides(over) if over else cfg
    analysis = ray.tune.ExperimentAnalysis(args.experiment, default_metric="val_f1", default_mode="max")
    return finish(cfg, ray.tune.ResultGrid(analysis), args.out, {}, math.nan, args.experiment)


def run_prefetch(argv: list[str]) -> int:
    from tuning.models import prefetch_weights

    p = argparse.ArgumentParser(prog="python -m tuning prefetch-weights",
                                description="download the encoder weights of a search space into the cache")
    p.add_argument("--config", required=True, type=Path)
    args = p.parse_args(argv)
    fetched = prefetch_weights(load_config(args.config))
    print("cached:", ", ".join(fetched) if fetched else "nothing to fetch (encoder_weights is null)")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv and argv[0] == "prefetch-weights":
            return run_prefetch(argv[1:])
        if argv and argv[0] == "export":
            return run_export(argv[1:])
        return run_search(_search_parser().parse_args(argv))
    except (ConfigError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
