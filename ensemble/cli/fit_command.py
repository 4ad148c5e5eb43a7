"""The `fit` command (python -m ensemble fit): choose members, weights, views and post-processing on
a labelled split and write the recipe run_ensemble.py applies."""

from __future__ import annotations

import argparse
from pathlib import Path

from configs.overrides import add_set_argument, load_with_sets
from ensemble.core.choices import TTA_MODES, detector_arg


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--manifest", type=Path, required=True, help="models/NAME/manifest.json (the candidates)")
    p.add_argument("--data", type=Path, required=True, help="labelled prepared dataset (has dataset.json)")
    p.add_argument("--split", default="val", help="split to fit on (default val; never the test split)")
    p.add_argument(
        "--oof",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="fit on the out-of-fold predictions of every train + val image of a K-fold refit manifest "
        "(python -m tuning refit) instead of --split (default: on when the manifest has K-fold bags)",
    )
    p.add_argument(
        "--out",
        type=Path,
        help="recipe path (default recipe.json beside the manifest, which run_ensemble.py "
        "then uses by default); fit_report.md, fit_report.html and selection_trace.png go beside it",
    )
    p.add_argument(
        "--config",
        type=Path,
        help="RunConfig YAML whose ensemble section gives scales, batch size and workers",
    )
    p.add_argument(
        "--views",
        choices=list(TTA_MODES),
        default="flip+scale",
        help="candidate TTA views (default flip+scale: identity, flip, each scale +- flip)",
    )
    p.add_argument(
        "--resolution",
        type=int,
        default=64,
        help="cache resolution for member and view selection (default 64)",
    )
    p.add_argument("--max-images", type=int, default=256, help="at most this many images of the split")
    p.add_argument(
        "--cache-gb",
        type=float,
        default=4.0,
        help="memory for the candidates' cached probabilities (fewer images if needed)",
    )
    p.add_argument("--max-steps", type=int, help="greedy selection steps (default 2 x candidates + 2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the image subset and the halves")
    p.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda"],
        help="where the candidates run (auto: cuda when available)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    g = p.add_argument_group("photos in the wild (recipe.wild: what predict and run --detector apply)")
    g.add_argument(
        "--wild",
        type=Path,
        help="labelled wild scenes (python -m data_prep synth --wild): after the fit, choose the photo "
        "path's detector threshold, context view, second pass and face steps on them",
    )
    g.add_argument("--wild-split", default="val", help="split of the wild scenes to fit on (default val)")
    g.add_argument(
        "--wild-detector",
        default="auto",
        type=detector_arg,
        help="the detector the photo path uses (its threshold is chosen; default auto)",
    )
    g.add_argument("--wild-max-images", type=int, default=64, help="at most this many wild scenes")
    add_set_argument(p)


def main(args: argparse.Namespace) -> int:
    # The fit (torch, smp, matplotlib) is imported here: `--help` needs only the flags.
    from data_prep.atomic import write_text
    from ensemble.core.recipe import default_recipe_path
    from ensemble.fit.decisions import decisions_markdown, plot_selection_trace
    from ensemble.fit.fit_html import write_fit_html
    from ensemble.fit.fit_recipe import FitOptions, fit

    out = args.out or default_recipe_path(args.manifest)
    ens = load_with_sets(args.config, args.overrides).ensemble
    opts = FitOptions(
        manifest=args.manifest,
        data=args.data,
        out=out,
        split=args.split,
        ensemble=ens,
        candidate_views=args.views,
        resolution=args.resolution,
        max_images=args.max_images,
        cache_gb=args.cache_gb,
        max_steps=args.max_steps,
        seed=args.seed,
        device=args.device,
        progress=not args.quiet,
        oof=args.oof,
    )
    recipe = fit(opts)  # bad input raises a FaceParseError: the entry prints it and exits 2
    raw = recipe.model_dump(mode="json")
    lines = decisions_markdown(raw)
    write_text(
        out.parent / "fit_report.md", "\n".join(["# Ensemble fit", "", f"Recipe: `{out}`", ""] + lines) + "\n"
    )
    plot_selection_trace(raw, out.parent / "selection_trace.png")
    page = write_fit_html(out.parent / "fit_report.html", raw, out, "selection_trace.png")
    s = raw["scores"]
    print(f"{raw['data']['split']} (mean face F1, choose / confirm / all):")
    for stage, v in s.items():
        print(f"  {stage:<15} {v['choose']:.4f} / {v['confirm']:.4f} / {v['all']:.4f}")
    members = ", ".join(f"{n} {w:.2f}" for n, w in raw["members"].items())
    post = ", ".join(f"{k}={v}" for k, v in raw["postprocess"].items() if v not in (False, "none", 0.0))
    print(f"recipe: members {members}; views {', '.join(raw['views'])}; post-processing {post or 'none'}")
    print(f"wrote {out}, {out.parent / 'fit_report.md'}, {page}, {out.parent / 'selection_trace.png'}")
    if args.wild is not None:
        fit_photos(args, out)
    return 0


def fit_photos(args: argparse.Namespace, recipe_path: Path) -> None:
    """recipe.wild chosen on the wild scenes with the recipe just written."""
    from ensemble.api import Parser
    from ensemble.core.recipe import read_recipe, write_recipe
    from ensemble.fit.wild_fit import fit_wild, wild_scenes

    scenes = wild_scenes(args.wild, args.wild_split, args.wild_max_images)
    parser = Parser.from_manifest(
        args.manifest, recipe_path, detector=args.wild_detector, framing=args.data, device=args.device
    )
    data = {"dataset": str(Path(args.wild).resolve()), "split": args.wild_split}
    wild = fit_wild(parser.wild, scenes, data, progress=not args.quiet)
    recipe = read_recipe(recipe_path).model_copy(update={"wild": wild})
    write_recipe(recipe_path, recipe)
    on = [s for s, v in wild.steps.items() if v]
    print(
        f"wild ({len(scenes)} scenes): mean face F1 {wild.scores['start']:.4f} -> {wild.scores['final']:.4f}; "
        f"detector {wild.detector} threshold {wild.detector_threshold or 'default'}, context {wild.context:g}, "
        f"second pass {'on' if wild.second_pass else 'off'}, face steps {', '.join(on) or 'none'} "
        f"(recipe.wild in {recipe_path})"
    )
