"""The `run` command's flags and entry (python -m ensemble run, run_ensemble.py): make a leaderboard
submission with an ensemble of trained face parsers."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from configs.label_sets import LABEL_SETS
from configs.overrides import add_set_argument, load_with_sets
from configs.schema import EnsembleConfig, parse_config
from ensemble.cli.photo_flags import add_photo_arguments
from ensemble.cli.step_flags import add_step_argument, step_settings
from ensemble.core.choices import TTA_MODES, WEIGHT_MODES
from ensemble.postprocess.registry import STEPS

# The pipeline (torch, smp) is imported where it runs: `--help` needs only the flags above.
if TYPE_CHECKING:
    from ensemble.submission.run_pipeline import RunOptions


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--manifest", type=Path, required=True, help="models/NAME/manifest.json")
    p.add_argument(
        "--images",
        type=Path,
        required=True,
        help="a folder of images, or a prepared dataset (has dataset.json)",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--split", default="test", help="split of a prepared dataset (default test)")
    p.add_argument("--gt", type=Path, help="folder of ground-truth masks {stem}.png to score against")
    p.add_argument("--config", type=Path, help="RunConfig YAML whose ensemble section gives the defaults")
    p.add_argument("--tta", choices=list(TTA_MODES), help="test-time augmentation (default: the config's)")
    p.add_argument("--scales", type=float, nargs="+", help="scales for --tta flip+scale")
    p.add_argument(
        "--recipe",
        type=Path,
        help="recipe from python -m ensemble fit (default: recipe.json beside the manifest, "
        "when present); flags below override what it chose",
    )
    p.add_argument("--no-recipe", action="store_true", help="ignore recipe.json beside the manifest")
    p.add_argument(
        "--weights",
        choices=list(WEIGHT_MODES),
        help="member weights instead of the recipe's (default without a recipe: the config's)",
    )
    p.add_argument("--smooth", choices=["none", "gaussian"], help="smoothing of the averaged probabilities")
    p.add_argument("--sigma", type=float, help="Gaussian sigma in output pixels")
    p.add_argument(
        "--min-component-fraction",
        type=float,
        help="blobs of a single part smaller than this fraction of its largest blob are removed",
    )
    p.add_argument("--no-remove-small", action="store_true", help="keep stray blobs of single parts")
    p.add_argument("--no-fill-holes", action="store_true", help="leave holes inside parts unfilled")
    p.add_argument("--grabcut", action="store_true", help="GrabCut refinement of the face boundary")
    p.add_argument("--crf", action="store_true", help="dense CRF (needs pip install '.[crf]')")
    p.add_argument(
        "--no-postprocess",
        action="store_true",
        help="plain argmax: every post-processing step off (--step NAME then turns one back on)",
    )
    add_step_argument(p)
    p.add_argument(
        "--csv-resize",
        choices=["nearest", "nearest_exact"],
        help="resize to 256 for the CSV (default nearest, as the seed's submission code)",
    )
    p.add_argument(
        "--csv-background",
        choices=["rle", "zero"],
        help="background row: its run-length code (default, as the seed) or 0",
    )
    p.add_argument("--viz", type=int, help="comparison panels to draw")
    p.add_argument(
        "--label-set",
        choices=list(LABEL_SETS),
        default="celebamask19",
        help="score and write masks in this label set: lapa11 = LaPa's 11 classes, each the summed "
        "probability of the classes it takes (configs/label_sets.py)",
    )
    p.add_argument(
        "--gt-label-set",
        choices=list(LABEL_SETS),
        help="label set of the ground truth (default: a prepared dataset's own, from its dataset.json, "
        "else the run's); celebamask19 truth is merged like the predictions",
    )
    p.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda"],
        help="where the members run (auto: cuda when available)",
    )
    p.add_argument("--batch-size", type=int, help="images per forward pass")
    p.add_argument("--workers", type=int, help="DataLoader / post-processing workers")
    p.add_argument(
        "--skip-bad", action="store_true", help="write empty rows for unreadable images instead of stopping"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a previous run's outputs in --out (masks/, color/, viz/, submission*.csv, "
        "report.*, confusion.png, gallery/); without it --out must be new or empty",
    )
    p.add_argument(
        "--baseline",
        type=Path,
        help="a search's manifest.json: its best candidate alone (no TTA, no post-processing) is the "
        "report's first row, what you would submit without the ensemble",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_photo_arguments(
        p,
        "default: none of this: each image is squashed into the model's square; the recipe's wild section "
        "gives the other photo options",
    )
    add_set_argument(p)


def explicit_settings(args: argparse.Namespace) -> dict[str, object]:
    """The ensemble settings given as flags (they beat a recipe): weights, views, postprocess.*."""
    given: dict[str, object] = {}
    if args.weights is not None:
        given["weights"] = args.weights
    if args.tta is not None or args.scales is not None:
        given["views"] = True
    for key, value in (
        ("smooth", args.smooth),
        ("sigma", args.sigma),
        ("min_component_fraction", args.min_component_fraction),
    ):
        if value is not None:
            given[f"postprocess.{key}"] = value
    for key, off in (("remove_small", args.no_remove_small), ("fill_holes", args.no_fill_holes)):
        if off:
            given[f"postprocess.{key}"] = False
    for key, on in (("grabcut", args.grabcut), ("crf", args.crf)):
        if on:
            given[f"postprocess.{key}"] = True
    if args.no_postprocess:
        given.update(step_settings((name, False) for name in STEPS))
    given.update(step_settings(args.steps))
    return given


def ensemble_config(args: argparse.Namespace) -> EnsembleConfig:
    """EnsembleConfig from --config (or defaults) with the command-line flags applied."""
    base = load_with_sets(args.config, args.overrides).ensemble  # e.g. --set ensemble.max_pixels=16000000
    raw = base.model_dump()
    for key, value in (
        ("tta", args.tta),
        ("scales", args.scales),
        ("viz", args.viz),
        ("batch_size", args.batch_size),
        ("num_workers", args.workers),
        ("member_weights", args.weights),
    ):
        if value is not None:
            raw[key] = value
    for key, value in (("resize", args.csv_resize), ("background", args.csv_background)):
        if value is not None:
            raw["csv"][key] = value
    for key, value in explicit_settings(args).items():
        if key.startswith("postprocess."):
            raw["postprocess"][key.split(".", 1)[1]] = value
    return parse_config({"ensemble": raw}, source="options").ensemble


def run_options(args: argparse.Namespace, ens: EnsembleConfig) -> RunOptions:
    """RunOptions from parsed flags."""
    from ensemble.submission.run_pipeline import PhotoOptions, RunOptions

    photo = None
    if args.detector is not None:
        photo = PhotoOptions(
            detector=args.detector,
            detector_threshold=args.detector_threshold,
            context=args.context,
            second_pass=False if args.no_second_pass else None,
            framing=args.framing,
            max_faces=args.max_faces,
        )
    return RunOptions(
        manifest=args.manifest,
        images=args.images,
        out=args.out,
        split=args.split,
        gt=args.gt,
        ensemble=ens,
        recipe=args.recipe,
        use_recipe=not args.no_recipe,
        explicit=explicit_settings(args),
        device=args.device,
        skip_bad=args.skip_bad,
        progress=not args.quiet,
        baseline=args.baseline,
        overwrite=args.overwrite,
        label_set=args.label_set,
        gt_label_set=args.gt_label_set,
        photo=photo,
    )


def main(args: argparse.Namespace) -> int:
    """Run the ensemble and print a summary. Bad input raises (ConfigError, RunError: one line per
    problem, nothing written); the command's entry (configs.errors.run_cli) prints it and exits 2."""
    from ensemble.submission.run_pipeline import run
    from ensemble.submission.run_report import compact_table

    report = run(run_options(args, ensemble_config(args)))
    if report["stages"]:
        print(compact_table(report["stages"]))
    if report["skipped"]:
        print(
            f"skipped {len(report['skipped'])} unreadable image(s) (empty rows): "
            + ", ".join(Path(s["file"]).name for s in report["skipped"])
        )
    t = report["timings"]
    print(
        f"{report['predicted']} image(s), {t['per_image_s']:.3f} s/image "
        f"(members' forward passes {t['forward_total_s']:.1f} s of {t['run_s']:.1f} s)"
    )
    print(
        f"outputs in {args.out}: submission.csv, submission_ids.csv, masks/, color/, viz/, "
        f"report.md, report.html" + (", confusion.png, gallery/ (worst first)" if report["stages"] else "")
    )
    return 0
