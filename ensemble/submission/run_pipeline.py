"""One ensemble run: check inputs, load members, predict, post-process, write CSV/PNGs/report."""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from configs.provenance import write_provenance
from configs.schema import ConfigError, EnsembleConfig
from data_prep.atomic import write_image
from data_prep.layout import DatasetError, fit_pixels, read_rgb, scaled_size
from ensemble.core.batching import Prediction, Timings, predict
from ensemble.core.inputs import ImageSet, InputError, discover, validate
from ensemble.core.member_weights import WEIGHT_MODES, WeightsError
from ensemble.core.members import ManifestError, Member, load_manifest, resolve_device
from ensemble.core.recipe import Recipe, RecipeError, check_members, default_recipe_path, read_recipe
from ensemble.core.tta import TTAError, View, build_views, view_from_name
from ensemble.postprocess.registry import (
    PostprocessError,
    ProbabilityResult,
    Step,
    argmax_labels,
    build_steps,
    label_stage,
    probability_stage,
)
from ensemble.submission.csv_codes import SubmissionWriter, csv_rows, write_ids
from ensemble.submission.output_folder import OutputFolderError, check_out_folder, clear_previous
from ensemble.submission.pictures import comparison_panel, plot_confusion
from ensemble.submission.relabel import RunLabels, apply_label_set
from ensemble.submission.run_report import StageScores, image_confusion, write_report

ENSEMBLE_STAGE = "ensemble"
# Bad input (files, manifest, config, options) raises these; any other exception is a bug and
# propagates with its traceback instead of being reported as bad input.
INPUT_ERRORS = (
    InputError,
    DatasetError,
    ManifestError,
    WeightsError,
    PostprocessError,
    TTAError,
    ConfigError,
    RecipeError,
    OutputFolderError,
)


class RunError(Exception):
    """A run stopped before writing anything: one message line per problem."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


@dataclass
class RunOptions:
    manifest: Path
    images: Path
    out: Path
    split: str = "test"
    gt: Path | None = None
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    # A recipe (python -m ensemble fit) sets members, weights, views and post-processing; None:
    # recipe.json beside the manifest when present, unless use_recipe is False.
    recipe: Path | None = None
    use_recipe: bool = True
    # Settings given as flags, which beat the recipe: "weights", "views", "postprocess.<field>".
    explicit: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    skip_bad: bool = False
    progress: bool = True
    overwrite: bool = False  # replace a previous run's outputs in out (else out must be empty)
    label_set: str = "celebamask19"  # score and write in this label set (configs.label_sets)
    gt_label_set: str | None = None  # None: a prepared dataset's own (dataset.json), else label_set


@dataclass
class _Plan:
    """Everything checked and loaded before the first output is written."""

    test_set: ImageSet
    bad: dict[Path, str]
    views: list[View]
    steps: list[Step]
    members: list[Member]
    device: Any
    weights: dict[str, float]
    weights_mode: str
    recipe: Recipe | None = None
    recipe_path: Path | None = None
    labels: RunLabels = field(default_factory=RunLabels)


def run(opts: RunOptions) -> dict[str, Any]:
    """Run the ensemble; returns the report dict. Raises RunError (nothing written) on bad input."""
    t0 = time.perf_counter()
    out = Path(opts.out)
    try:
        check_out_folder(out, opts.overwrite)
        plan = _plan(opts)
    except INPUT_ERRORS as err:
        raise RunError(str(err).splitlines()) from None
    validate_s = time.perf_counter() - t0
    ens = opts.ensemble
    clear_previous(out)  # only after every check passed: bad input leaves the old run intact
    downscaled = _announce_downscaled(plan.test_set, ens.max_pixels)
    out.mkdir(parents=True, exist_ok=True)
    t2 = time.perf_counter()
    timings = Timings()
    scores = _predict_and_write(opts, plan, out, timings)
    run_s = time.perf_counter() - t2

    outputs = {
        "submission": out / "submission.csv",
        "ids": out / "submission_ids.csv",
        "masks": out / "masks",
        "color": out / "color",
        "viz": out / "viz",
        "report": out / "report.md",
    }
    if scores:
        plot_confusion(
            scores.matrices[scores.final],
            out / "confusion.png",
            f"final stage ({scores.final}): confusion, row-normalised",
        )
        outputs["confusion"] = out / "confusion.png"
    n = timings.images
    report = {
        "manifest": str(opts.manifest),
        "source": plan.test_set.source,
        "images": len(plan.test_set.items),
        "predicted": n,
        "device": str(plan.device),
        "views": [v.name for v in plan.views],
        "postprocess": [s.label for s in plan.steps],
        "weights_mode": plan.weights_mode,
        "recipe": str(plan.recipe_path) if plan.recipe_path else None,
        "decisions": plan.recipe.model_dump(mode="json") if plan.recipe else None,
        "csv": ens.csv.model_dump(),
        "label_set": plan.labels.report(),
        "members": [
            {
                "name": m.name,
                "arch": m.arch,
                "encoder": m.encoder,
                "image_size": m.image_size,
                "val_f1": m.val_f1,
                "trial_id": m.trial_id,
                "weight": plan.weights[m.name],
            }
            for m in plan.members
        ],
        "gt": str(plan.test_set.gt_paths[0].parent) if plan.test_set.gt_paths else None,
        "stages": scores.table() if scores else None,
        "skipped": [{"file": str(p), "reason": r} for p, r in plan.bad.items()],
        "ignored": plan.test_set.ignored,
        "downscaled": downscaled,
        "timings": {
            "validate_s": validate_s,
            "run_s": run_s,
            "per_image_s": run_s / n if n else 0.0,
            "forward_s": dict(timings.forward_s),
            "forward_total_s": timings.forward_total_s,
            "overhead_s": run_s - timings.forward_total_s,
        },
        "outputs": {k: str(v) for k, v in outputs.items()},
    }
    write_report(out, report)
    write_provenance(out, config=ens, extra={"options": opts})
    return report


def _plan(opts: RunOptions) -> _Plan:
    ens = opts.ensemble
    test_set = discover(opts.images, opts.split, opts.gt)
    check_workers = max(2, ens.num_workers)
    bad_images, bad_masks = validate(test_set, check_workers, opts.progress)
    if bad_masks:
        raise RunError(
            [b.line() for b in bad_masks]
            + [f"{len(bad_masks)} bad ground-truth mask(s); nothing was written"]
        )
    if bad_images and not opts.skip_bad:
        raise RunError(
            [b.line() for b in bad_images]
            + [
                f"{len(bad_images)} unreadable image(s); nothing was written "
                f"(--skip-bad writes empty rows for them instead)"
            ]
        )
    parts = load_ensemble(opts.manifest, ens, opts.recipe, opts.use_recipe, opts.explicit, opts.device)
    labels, members = apply_label_set(
        opts.label_set, test_set, parts.members, check_workers, opts.images, opts.gt_label_set
    )
    return _Plan(
        test_set=test_set,
        bad={b.path: b.reason for b in bad_images},
        views=parts.views,
        steps=parts.steps,
        members=members,
        device=parts.device,
        weights=parts.weights,
        weights_mode=parts.weights_mode,
        recipe=parts.recipe,
        recipe_path=parts.recipe_path,
        labels=labels,
    )


@dataclass
class EnsembleParts:
    """What an ensemble predicts with: members and weights, views, post-processing steps."""

    members: list[Member]
    weights: dict[str, float]
    weights_mode: str
    views: list[View]
    steps: list[Step]
    device: Any
    recipe: Recipe | None = None
    recipe_path: Path | None = None


def load_ensemble(
    manifest: Path,
    ens: EnsembleConfig,
    recipe_path: Path | None = None,
    use_recipe: bool = True,
    explicit: dict[str, Any] | None = None,
    device: str = "auto",
) -> EnsembleParts:
    """Members, weights, views and steps from a manifest, its recipe (recipe.json beside it by
    default) and the settings given as flags (explicit: they beat the recipe)."""
    explicit = explicit or {}
    if recipe_path is None and use_recipe and default_recipe_path(manifest).is_file():
        recipe_path = default_recipe_path(manifest)
    post = ens.postprocess
    views = build_views(ens.tta, ens.scales)
    recipe = None
    if recipe_path is not None:
        recipe = read_recipe(recipe_path)
        post = recipe.postprocess
        if "views" not in explicit:
            views = [view_from_name(v) for v in recipe.views]
    post = post.model_copy(
        update={k.split(".", 1)[1]: v for k, v in explicit.items() if k.startswith("postprocess.")}
    )
    steps = build_steps(post)  # before loading models: a missing extra fails fast
    device = resolve_device(device)
    members = load_manifest(manifest, device).members
    mode = explicit.get("weights")
    if recipe is not None:
        check_members(recipe, [m.name for m in members], recipe_path)
        members = [m for m in members if m.name in recipe.members]
    if mode is None and recipe is not None:
        total = sum(recipe.members.values())
        weights = {m.name: recipe.members[m.name] / total for m in members}
    else:
        weights = WEIGHT_MODES[mode or ens.member_weights](members)
    return EnsembleParts(
        members=members,
        weights=weights,
        weights_mode=mode or ("recipe" if recipe else ens.member_weights),
        views=views,
        steps=steps,
        device=device,
        recipe=recipe,
        recipe_path=recipe_path,
    )


def _announce_downscaled(test_set: ImageSet, max_pixels: int) -> list[dict[str, Any]]:
    """Say which images are above max_pixels and predicted shrunk (their masks are scaled back)."""
    listed = []
    for path, (h, w) in test_set.sizes.items():
        sh, sw = scaled_size(h, w, max_pixels)
        if (sh, sw) != (h, w):
            print(
                f"{path}: {w}x{h} is above ensemble.max_pixels ({max_pixels} pixels): predicted at "
                f"{sw}x{sh}, its mask scaled back to {w}x{h}",
                flush=True,
            )
            listed.append({"file": str(path), "size": [h, w], "predicted_at": [sh, sw]})
    return listed


@dataclass
class _ImageResult:
    """What the ordered CSV writer needs back from an image's worker thread."""

    rows: list[str]
    confusions: dict[str, np.ndarray] | None


def _predict_and_write(opts: RunOptions, plan: _Plan, out: Path, timings: Timings) -> StageScores:
    """Predict every good image; post-process, write and score in worker threads; CSV in order."""
    ens = opts.ensemble
    items = plan.test_set.items
    good = [p for p, item in enumerate(items) if item.path not in plan.bad]
    gt_paths = plan.test_set.gt_paths
    track = gt_paths is not None
    viz_positions = set(good[: ens.viz])
    scores = StageScores()
    tta_stage = f"+tta({'+'.join(v.name for v in plan.views[1:])})" if len(plan.views) > 1 else None

    def on_device(pred: Prediction) -> tuple[dict[str, np.ndarray], ProbabilityResult]:
        """Argmax and probability steps where the probabilities are; only uint8 maps come back."""
        stages: dict[str, np.ndarray] = dict(pred.stage_labels)
        if track and tta_stage:
            stages[tta_stage] = argmax_labels(pred.probs)
        result = probability_stage(pred.probs, plan.steps, pred.path, track=track)
        for step, labels in result.stage_labels:
            stages[f"+{step.label}"] = labels
        return stages, result

    def postprocess_write_score(
        pred: Prediction, position: int, stages: dict[str, np.ndarray], result: ProbabilityResult
    ) -> _ImageResult:
        record = (lambda step, labels: stages.__setitem__(f"+{step.label}", labels.copy())) if track else None
        labels = label_stage(result.context, plan.steps, on_step=record)
        h, w = plan.test_set.sizes.get(pred.path, labels.shape)
        # nearest: a label map scaled back must keep label values (pred.size < (h, w) above max_pixels)
        full = (
            labels if labels.shape == (h, w) else cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST)
        )
        plan.labels.write(out, pred.stem, full)
        gt = plan.labels.read_gt(gt_paths[position]) if track else None
        if gt is not None and gt.shape != labels.shape:  # scored at the size it was predicted at
            gt = cv2.resize(gt, labels.shape[::-1], interpolation=cv2.INTER_NEAREST)
        if position in viz_positions:
            panel = comparison_panel(fit_pixels(read_rgb(pred.path), ens.max_pixels), labels, gt)
            write_image(out / "viz" / f"{pred.stem}.png", panel)
        confusions = {name: image_confusion(lab, gt) for name, lab in stages.items()} if track else None
        return _ImageResult(csv_rows(position, labels, ens.csv), confusions)

    weights = [plan.weights[m.name] for m in plan.members]
    workers = max(1, ens.num_workers)
    pending: deque[tuple[int, Future]] = deque()
    with SubmissionWriter(out / "submission.csv", ens.csv) as sub, ThreadPoolExecutor(workers) as pool:

        def drain(keep: int) -> None:
            while len(pending) > keep:
                position, future = pending.popleft()
                result = future.result()
                while sub.next_position < position:  # skipped images keep their place
                    sub.add(sub.next_position, None)
                sub.add_rows(position, result.rows)
                for name, cm in (result.confusions or {}).items():
                    scores.add(name, cm)

        if good:
            preds = predict(
                plan.members,
                weights,
                [items[p] for p in good],
                plan.views,
                plan.device,
                ens.batch_size,
                ens.num_workers,
                track_stages=track,
                timings=timings,
                progress=opts.progress,
                max_pixels=ens.max_pixels,
            )
            for pred in preds:
                position = good[pred.index]
                stages, result = on_device(pred)
                pred.probs = None  # the (C, H, W) probabilities end here; workers get uint8 maps
                pending.append(
                    (position, pool.submit(postprocess_write_score, pred, position, stages, result))
                )
                drain(2 * workers)  # bounded: the CSV is written in order
        drain(0)
        while sub.next_position < len(items):
            sub.add(sub.next_position, None)
    write_ids(out / "submission_ids.csv", plan.test_set.names)
    return scores
