"""`python -m tuning refit`: train the best configs of a candidate library again, to be ensembled.

    python -m tuning refit --from MODELS/manifest.json --data PREP --top N --folds K [--seeds S]
        [--max-epochs E] --out OUT [--storage DIR] [--name NAME] [--resume] [--address ADDR]

With K >= 2 each config trains on each fold's complement of train + val (tuning.folds) and
predicts the fold it left out (tuning.oof); with --folds 1 it trains S times on the train split
with seeds cfg.seed + 0..S-1. OUT gets a bagged manifest (members with bag/fold/seed, bags with
their scores, the out-of-fold files under oof/), refit_trials.csv, learning_curves.csv,
refit.png and provenance.json.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from configs.errors import ConfigError, FaceParseError
from configs.overrides import add_set_argument, parse_sets
from configs.provenance import write_provenance
from configs.schema import RunConfig, parse_config


class RefitError(FaceParseError):
    """A refit training that left no model to export."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="source", required=True, type=Path, help="the search's manifest.json")
    p.add_argument("--data", required=True, type=Path, help="the prepared dataset (train + val are folded)")
    p.add_argument("--top", type=int, default=3, help="refit the N best distinct configs (default 3)")
    p.add_argument(
        "--folds", type=int, default=5, help="K folds of train + val; 1: seeds on train (default 5)"
    )
    p.add_argument("--seeds", type=int, default=1, help="with --folds 1: trainings per config (default 1)")
    p.add_argument("--max-epochs", type=int, help="epochs per training (default: the config's train.epochs)")
    p.add_argument("--max-per-arch", type=int, help="at most this many configs of one architecture")
    p.add_argument("--max-concurrent", type=int, help="trainings at once (search.max_concurrent)")
    p.add_argument(
        "--oof-resolution",
        type=int,
        default=64,
        help="resolution of the stored out-of-fold probabilities (ensemble fit --resolution; default 64)",
    )
    p.add_argument("--fold-seed", type=int, default=0, help="seed of the fold split (default 0)")
    p.add_argument("--out", required=True, type=Path, help="folder for the bagged manifest and weights")
    p.add_argument("--storage", help="local path or URI every node can reach (default: the search's)")
    p.add_argument("--name", default="refit", help="experiment name (default refit)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted refit")
    p.add_argument(
        "--address", help="Ray cluster address (default: RAY_ADDRESS, else resources.address, else local)"
    )
    add_set_argument(p)


def bag_configs(args: argparse.Namespace, bags) -> list[RunConfig]:
    """Each chosen config with this refit's data, epochs, storage and --set values."""
    flags = {
        "train.epochs": args.max_epochs,
        "search.max_concurrent": args.max_concurrent,
        "resources.storage": args.storage,
    }
    over = {k: v for k, v in flags.items() if v is not None}
    over["data.datasets"] = [{"path": str(args.data.resolve())}]
    sets = parse_sets(args.overrides)
    cfgs = []
    for bag in bags:
        cfg = parse_config(bag.config, source=f"{args.source}: {bag.source}").with_overrides(over)
        cfg = cfg.with_overrides(sets, source="--set") if sets else cfg
        if "://" not in cfg.resources.storage:
            cfg = cfg.with_overrides({"resources.storage": str(Path(cfg.resources.storage).resolve())})
        cfgs.append(cfg)
    return cfgs


def main(args: argparse.Namespace) -> int:
    from tuning import search
    from tuning.bagging import bags_from
    from tuning.folds import plan_folds
    from tuning.oof import oof_bytes
    from tuning.refit import jobs, resourced_refit, run_refit

    if args.folds < 1 or args.seeds < 1 or args.top < 1:
        raise ConfigError("--top, --folds and --seeds must be 1 or more")
    if args.folds >= 2 and args.seeds != 1:
        raise ConfigError("--seeds applies to --folds 1 (K folds train each config once per fold)")
    bags = bags_from(args.source, args.top, args.max_per_arch)
    cfgs = bag_configs(args, bags)
    cfg = cfgs[0]  # resources, storage and concurrency: the search's, the same for every bag
    plan = plan_folds(args.data, args.folds, args.fold_seed) if args.folds >= 2 else None
    grid = jobs(len(bags), plan, args.seeds)
    exp_path = search.experiment_path(cfg, args.name)
    if not search.is_uri(cfg.resources.storage):
        Path(cfg.resources.storage).mkdir(parents=True, exist_ok=True)
        if not args.resume and search.can_restore(exp_path):
            raise ConfigError(f"{exp_path} already holds a refit: pass --resume, or --name NEW")
    address = search.resolve_address(cfg, args.address)
    if not address:
        for c in cfgs:
            search.check_paths_visible(c)
    images = sum(len(f) for f in plan.folds) if plan else 0
    mode = f"{plan.k} folds of {images} train + val images" if plan else f"{args.seeds} seed(s) on train"
    print(f"refit: {len(bags)} configs x {mode} = {len(grid)} trainings of {cfg.train.epochs} epochs")
    for bag in bags:
        print(f"  {bag.name}: from {bag.source} (search val_f1 {bag.source_val_f1})")
    if plan:
        gb = len(bags) * oof_bytes(images, args.oof_resolution) / 1e6
        print(
            f"out-of-fold cache: {len(bags)} bags x {images} x 19 x {args.oof_resolution}^2 x 2 B = {gb:.1f} MB"
        )
    trainable = resourced_refit(
        cfg, [c.model_dump(mode="json") for c in cfgs], plan.to_json() if plan else None, args.oof_resolution
    )
    with search.ray_session(cfg, address), tempfile.TemporaryDirectory() as staging:
        started = time.time()
        models = run_refit(cfg, args.name, trainable, grid, resume=args.resume, staging=Path(staging))
        wall = time.time() - started
        if models is None:
            print(
                f"\nrefit interrupted after {wall:.0f} s: nothing exported. Continue it with the same "
                f"command plus --resume ({exp_path})",
                file=sys.stderr,
            )
            return 130
        manifest = export_refit(bags, cfgs, models, plan, args, wall)
    print(f"\nmanifest: {manifest.path} (fit it with python -m ensemble fit --manifest {manifest.path})")
    print(f"refit:    {exp_path} (resume with --resume)")
    return 0


def export_refit(bags, cfgs, models, plan, args, wall: float):
    """Weights, out-of-fold files, the bagged manifest (last), trials and learning curves."""
    import pandas as pd

    from data_prep.atomic import write_bytes, write_text
    from tuning.checkpoint import MODEL_FILE, read_meta
    from tuning.library_export import plot_trials, write_trials_csv
    from tuning.manifest import BagEntry, ManifestEntry, write_manifest
    from tuning.oof import OOF_FILE, gather_oof, held_out_f1, read_oof
    from tuning.refit import held_out_ids

    out: Path = args.out
    (out / "oof").mkdir(parents=True, exist_ok=True)
    entries, bag_entries, curves = [], [], []
    for b, (bag, cfg) in enumerate(zip(bags, cfgs)):
        names, oof_files, held = [], [], []
        for m in (m for m in models if m.job["bag"] == b):
            tag = f"f{m.job['fold']}" if m.job["fold"] is not None else f"s{m.job['seed']}"
            name = f"{bag.name}-{tag}"
            if m.checkpoint is None or not (m.checkpoint / OOF_FILE).is_file():
                raise RefitError(f"{name}: the training did not finish ({m.trial.error or m.trial.status})")
            meta = read_meta(m.checkpoint)
            write_bytes(out / f"{name}.safetensors", (m.checkpoint / MODEL_FILE).read_bytes())
            oof = None
            if m.job["fold"] is not None:
                oof = f"oof/{name}.npz"
                shutil.copyfile(m.checkpoint / OOF_FILE, out / oof)
                oof_files.append(oof)
            else:
                held.append(read_oof(m.checkpoint / OOF_FILE)[1].astype(np.float32))
            entries.append(
                ManifestEntry(
                    name=name,
                    arch=meta["arch"],
                    encoder=meta["encoder"],
                    image_size=meta["image_size"],
                    mean=meta["mean"],
                    std=meta["std"],
                    weights=f"{name}.safetensors",
                    val_f1=meta["val_f1"],
                    epoch=meta["epoch"],
                    trial_id=m.trial.trial_id,
                    config=meta["config"],
                    bag=bag.name,
                    fold=m.job["fold"],
                    seed=meta["config"]["seed"],
                    oof=oof,
                )
            )
            names.append(name)
            m.trial.trial_id, m.trial.config = name, {"model.arch": bag.arch, "model.encoder": bag.encoder}
            curves += [{"model": name, **{k: e.get(k) for k in CURVE_KEYS}} for e in m.trial.epochs]
        if plan is not None:
            ids = sorted(i for f in plan.folds for i in f)
            score = held_out_f1(gather_oof([out / f for f in oof_files], ids), args.data, ids)
        else:
            ids = held_out_ids(cfg, {"fold": None}, None)
            score = held_out_f1(np.mean(held, axis=0), args.data, ids)
        split = "oof" if plan is not None else "val"
        bag_entries.append(
            BagEntry(
                name=bag.name,
                members=names,
                val_f1=score,
                score_split=split,
                source=bag.source,
                oof=oof_files,
            )
        )
    manifest = write_manifest(out, entries, bag_entries)
    write_provenance(out, config=cfgs[0], extra={"refit": vars(args) | {"wall_s": round(wall, 1)}})
    trials = [m.trial for m in models]
    df = write_trials_csv(trials, out / "refit_trials.csv")
    plot_trials(trials, out / "refit.png")
    write_text(out / "learning_curves.csv", pd.DataFrame(curves).to_csv(index=False))
    print_summary(manifest, df, wall)
    print_curves(curves)
    return manifest


CURVE_KEYS = ("epoch", "train_loss", "val_loss", "val_f1")


def print_curves(curves: list[dict]) -> None:
    """Each model's held-out val F1 at five epochs through training: has it levelled off?"""
    by_model: dict[str, list[dict]] = {}
    for row in curves:
        by_model.setdefault(row["model"], []).append(row)
    print("\nlearning curves (held-out val F1 by epoch; learning_curves.csv has every epoch):")
    for model, rows in by_model.items():
        step = max(1, len(rows) // 5)
        picks = rows[step - 1 :: step] if len(rows) > 1 else rows
        print(f"  {model:<32} " + "  ".join(f"{r['epoch']}: {r['val_f1']:.3f}" for r in picks))


def print_summary(manifest, df, wall: float) -> None:
    by_name = {m.name: m for m in manifest.members}
    print(f"\n{'model':<34} {'epochs':>6}  {'held-out F1':>11}")
    for bag in manifest.bags:
        for name in bag.members:
            print(f"{name:<34} {by_name[name].epoch:>6}  {by_name[name].val_f1:>11.4f}")
        print(f"{bag.name + ' (bag, ' + bag.score_split + ')':<34} {'':>6}  {bag.val_f1:>11.4f}")
    overhead = df["overhead_s"].dropna()
    line = f"refit wall time {wall:.1f} s, {len(df)} trainings"
    if len(overhead) and not math.isnan(overhead.mean()):
        line += f", Ray overhead per training {overhead.mean():.1f} s (median {overhead.median():.1f} s)"
    print("\n" + line)
