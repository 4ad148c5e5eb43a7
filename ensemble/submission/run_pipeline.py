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

from configs.errors import FaceParseError
from configs.provenance import write_provenance
from configs.schema import EnsembleConfig
from data_prep.atomic import write_image
from data_prep.layout import fit_pixels, read_rgb, scaled_size
from ensemble.core.batching import Timings
from ensemble.core.inference import Ensemble, Prediction
from ensemble.core.inputs import ImageSet, discover, validate
from ensemble.postprocess.registry import (
    ProbabilityResult,
    Step,
    argmax_labels,
    build_steps,
    label_stage,
    probability_stage,
)
from ensemble.submission.baseline import baseline_confusion, best_candidate
from ensemble.submission.csv_codes import SubmissionWriter, csv_rows, write_ids
from ensemble.submission.gallery import GALLERY_DIR, GALLERY_HEIGHT, GalleryEntry, gallery_entry
from ensemble.submission.output_folder import check_out_folder, clear_previous
from ensemble.submission.photo_run import PhotoOptions, PhotoRecord, photo_predict_and_write
from ensemble.submission.pictures import comparison_panel, plot_confusion
from ensemble.submission.relabel import RunLabels, apply_label_set
from ensemble.submission.run_html import write_run_html
from ensemble.submission.run_report import StageScores, write_run_report
from tuning.metrics import image_confusion

ENSEMBLE_STAGE = "ensemble"


class RunError(FaceParseError):
    """A run stopped before writing anything: one message line per problem. Bad input (files,
    manifest, config, options) raises a FaceParseError, which run() re-raises as this; any other
    exception is a bug and propagates with its traceback instead of being reported as bad input."""

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
    # A search's manifest: its best candidate alone is scored first (ensemble.submission.baseline).
    baseline: Path | None = None
    # Parse each image as a photo (ensemble.submission.photo_run: faces found, aligned, pasted back)
    # instead of squashing it into the model's square; None: the squashed run.
    photo: PhotoOptions | None = None


@dataclass
class _Plan:
    """Everything checked and loaded before the first output is written."""

    test_set: ImageSet
    bad: dict[Path, str]
    ensemble: Ensemble  # members already in the run's label set
    steps: list[Step]
    labels: RunLabels = field(default_factory=RunLabels)


def run(opts: RunOptions) -> dict[str, Any]:
    """Run the ensemble; returns the report dict. Raises RunError (nothing written) on bad input."""
    t0 = time.perf_counter()
    out = Path(opts.out)
    try:
        check_out_folder(out, opts.overwrite)
        plan = _plan(opts)
    except RunError:
        raise
    except FaceParseError as err:
        raise RunError(str(err).splitlines()) from None
    validate_s = time.perf_counter() - t0
    ens = opts.ensemble
    clear_previous(out)  # only after every check passed: bad input leaves the old run intact
    downscaled = _announce_downscaled(plan.test_set, ens.max_pixels)
    out.mkdir(parents=True, exist_ok=True)
    t2 = time.perf_counter()
    timings, photos, gallery = Timings(), None, []
    if opts.photo is None:
        scores, gallery = _predict_and_write(opts, plan, out, timings)
    else:
        photos = PhotoRecord()
        scores = photo_predict_and_write(opts, plan, out, photos)
        timings.images = len(plan.test_set.items) - len(plan.bad)
    run_s = time.perf_counter() - t2
    if opts.baseline is not None and scores:
        good = [
            (it, gt) for it, gt in zip(plan.test_set.items, plan.test_set.gt_paths) if it.path not in plan.bad
        ]
        stage, cm = baseline_confusion(
            opts.baseline,
            [it for it, _ in good],
            [gt for _, gt in good],
            plan.labels,
            ens,
            plan.ensemble.device,
            opts.progress,
        )
        scores.matrices = {stage: cm, **scores.matrices}

    outputs = {
        "submission": out / "submission.csv",
        "ids": out / "submission_ids.csv",
        "masks": out / "masks",
        "color": out / "color",
        "viz": out / "viz",
        "report": out / "report.md",
        "html": out / "report.html",
    }
    if gallery:
        outputs["gallery"] = out / GALLERY_DIR
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
        "device": str(plan.ensemble.device),
        "views": [v.name for v in plan.ensemble.views],
        "postprocess": [s.label for s in plan.steps],
        "weights_mode": plan.ensemble.weights_mode,
        "recipe": str(plan.ensemble.recipe_path) if plan.ensemble.recipe_path else None,
        "decisions": plan.ensemble.recipe.model_dump(mode="json") if plan.ensemble.recipe else None,
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
                "weight": plan.ensemble.weights[m.name],
            }
            for m in plan.ensemble.members
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
        "photos": photos.to_json() if photos else None,
    }
    write_run_report(out, report)
    write_run_html(out, report, gallery)
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
    if opts.baseline is not None:
        best_candidate(opts.baseline)  # a bad manifest fails here, before anything is written
    steps: list[Step] = []
    ensemble = Ensemble.from_manifest(
        opts.manifest,
        recipe=opts.recipe,
        use_recipe=opts.use_recipe,
        config=ens,
        explicit=opts.explicit,
        device=opts.device,
        before_load=lambda post: steps.extend(build_steps(post)),  # a missing extra fails before loading
    )
    labels, members = apply_label_set(
        opts.label_set, test_set, ensemble.members, check_workers, opts.images, opts.gt_label_set
    )
    return _Plan(
        test_set=test_set,
        bad={b.path: b.reason for b in bad_images},
        ensemble=ensemble.with_members(members),
        steps=steps,
        labels=labels,
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
    entry: GalleryEntry | None  # with ground truth: the image's gallery panel and score


def _predict_and_write(
    opts: RunOptions, plan: _Plan, out: Path, timings: Timings
) -> tuple[StageScores, list[GalleryEntry]]:
    """Predict every good image; post-process, write and score in worker threads; CSV in order.

    Returns the stage scores and, with ground truth, every image's gallery entry."""
    ens = opts.ensemble
    items = plan.test_set.items
    good = [p for p, item in enumerate(items) if item.path not in plan.bad]
    gt_paths = plan.test_set.gt_paths
    track = gt_paths is not None
    viz_positions = set(good[: ens.viz])
    scores = StageScores()
    gallery: list[GalleryEntry] = []
    tta_stage = (
        f"+tta({'+'.join(v.name for v in plan.ensemble.views[1:])})" if len(plan.ensemble.views) > 1 else None
    )

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
        rgb = fit_pixels(read_rgb(pred.path), ens.max_pixels) if position in viz_positions or track else None
        if position in viz_positions:
            write_image(out / "viz" / f"{pred.stem}.png", comparison_panel(rgb, labels, gt))
        confusions = {name: image_confusion(lab, gt) for name, lab in stages.items()} if track else None
        entry = None
        if track:  # the last stage is the final labels: the gallery ranks what the run wrote
            panel = f"{GALLERY_DIR}/{pred.stem}.png"
            write_image(out / panel, comparison_panel(rgb, labels, gt, GALLERY_HEIGHT, errors=True))
            entry = gallery_entry(pred.path.name, confusions[next(reversed(stages))], panel)
        return _ImageResult(csv_rows(position, labels, ens.csv), confusions, entry)

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
                if result.entry is not None:
                    gallery.append(result.entry)

        if good:
            plan.ensemble.timings = timings
            preds = plan.ensemble.stream(
                [items[p] for p in good],
                batch_size=ens.batch_size,
                num_workers=ens.num_workers,
                track_stages=track,
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
    return scores, gallery
