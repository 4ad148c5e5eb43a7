"""`python -m ensemble fit`: choose members, weights, TTA views and post-processing on validation data.

1. Cache every candidate's probabilities under every view (ensemble.fit.candidate_cache; reduced resolution).
2. Members: greedy forward selection with replacement from the best single candidate
   (ensemble.fit.selection), weights = selection counts; then views, added greedily.
3. One pass at each image's own size with the chosen members and views confirms both stages
   (a stage that loses there is dropped, as on the confirming half) and keeps the ensemble's
   probabilities for the post-processing stage: every step and its parameter is tried on top
   of what was kept and kept only if it raises the score.
The recipe (and fit_report.md, selection_trace.png beside it) records every decision.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from configs import NUM_CLASSES
from configs.errors import FaceParseError
from configs.provenance import write_provenance_beside
from configs.schema import EnsembleConfig, PostprocessConfig
from data_prep.layout import read_label_map
from ensemble.core.inference import Ensemble
from ensemble.core.inputs import discover, validate
from ensemble.core.members import Member, load_manifest
from ensemble.core.recipe import Recipe, write_recipe
from ensemble.core.tta import View, build_views
from ensemble.fit.candidate_cache import build_cache, images_within, subset
from ensemble.fit.selection import Scorer, Scores, select_members, select_options, select_views, split_halves
from ensemble.postprocess.registry import STEPS, argmax_labels, build_steps, plain_config, postprocess
from tuning.metrics import image_confusion, scores_from_confusion
from tuning.models import resolve_device


class FitError(FaceParseError):
    """Fit inputs that cannot be used (no labels, too few images, bad files)."""


@dataclass
class FitOptions:
    manifest: Path
    data: Path
    out: Path
    split: str = "val"
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    candidate_views: str = "flip+scale"  # the TTA mode whose views are candidates
    resolution: int = 64
    max_images: int = 256
    cache_gb: float = 4.0
    max_steps: int | None = None
    seed: int = 0
    device: str = "auto"
    progress: bool = True
    oof: bool | None = None  # None: on out-of-fold predictions when the manifest has K-fold bags


def use_oof(opts: FitOptions) -> bool:
    if opts.oof is not None:
        return opts.oof
    from tuning.manifest import ManifestError, read_manifest

    try:
        bags = read_manifest(opts.manifest).bags
    except ManifestError:
        return False  # the fit on a split checks its data first, then names the manifest's fault
    return bool(bags) and all(b.score_split == "oof" for b in bags)


class HalfScores:
    """Confusion matrices per stage on the choosing and confirming halves."""

    def __init__(self, choose: set[int]):
        self.choose = choose
        self.matrices: dict[str, list[np.ndarray]] = {}

    def add(self, stage: str, index: int, pred: np.ndarray, gt: np.ndarray) -> None:
        pair = self.matrices.setdefault(stage, [np.zeros((NUM_CLASSES,) * 2, np.int64) for _ in range(2)])
        pair[0 if index in self.choose else 1] += image_confusion(pred, gt)

    def scores(self, stage: str) -> Scores:
        a, b = self.matrices[stage]
        f1 = [scores_from_confusion(cm)["f1"] for cm in (a, b, a + b)]
        return Scores(*f1)


@dataclass
class FullResolution:
    """The chosen ensemble at each image's own size: stage scores on every image, and the
    probabilities (half precision) of as many images as fit the memory budget, for the
    post-processing stage (N x 19 x H x W x 2 bytes; the first images of the seeded subset)."""

    probs: list[np.ndarray]
    gts: list[np.ndarray]
    paths: list[Path]
    indices: list[int]  # each kept image's index among the fit images (for its half)
    halves: HalfScores


@dataclass
class Part:
    """Images predicted by one set of models: the whole split (a plain fit), or one fold's held-out
    images predicted by that fold's models (an out-of-fold fit; rename maps each fold model to its bag)."""

    members: Sequence[Member]
    items: Sequence
    gt_paths: Sequence
    indices: Sequence[int]  # each image's index among the fit images
    rename: dict[str, str] = field(default_factory=dict)


def full_resolution(
    parts: Sequence[Part],
    weights: dict[str, float],
    views: Sequence[View],
    choose: set[int],
    opts: FitOptions,
    device,
) -> FullResolution:
    ens = opts.ensemble
    halves = HalfScores(choose)
    out = FullResolution([], [], [], [], halves)
    budget, used = opts.cache_gb * 1e9, 0
    for part in parts:
        name = {m.name: part.rename.get(m.name, m.name) for m in part.members}
        chosen = [m for m in part.members if weights.get(name[m.name], 0) > 0]
        model = Ensemble(chosen, {m.name: weights[name[m.name]] for m in chosen}, views, device=device)
        for pred in model.stream(
            part.items,
            batch_size=ens.batch_size,
            num_workers=ens.num_workers,
            track_stages=True,
            progress=opts.progress,
        ):
            index = part.indices[pred.index]
            gt = read_label_map(part.gt_paths[pred.index])
            for stage, labels in pred.stage_labels.items():
                member = stage.split(":", 1)[1] if stage.startswith("member:") else None
                halves.add(f"member:{name[member]}" if member else stage, index, labels, gt)
            halves.add("tta", index, argmax_labels(pred.probs), gt)
            size = pred.probs.numel() * 2
            if used + size <= budget:
                used += size
                out.probs.append(pred.probs.half().cpu().numpy())
                out.gts.append(gt)
                out.paths.append(pred.path)
                out.indices.append(index)
    if len(out.probs) < 2:
        raise FitError(
            f"--cache-gb {opts.cache_gb:g} holds {len(out.probs)} full-size probability maps; "
            f"the post-processing stage needs 2 or more (raise --cache-gb)"
        )
    return out


def _postprocess_scores(full: FullResolution, cfg: PostprocessConfig) -> Scores:
    steps = build_steps(cfg)
    halves = HalfScores(full.halves.choose)
    for i, probs, gt, path in zip(full.indices, full.probs, full.gts, full.paths):
        halves.add("pp", i, postprocess(torch.from_numpy(probs).float(), steps, path), gt)
    return halves.scores("pp")


def postprocess_stages() -> Iterator[
    tuple[str, Callable[[PostprocessConfig], list[tuple[str, PostprocessConfig]]]]
]:
    """(stage, options on top of a config) for every registered step that can run here, in run
    order (ensemble.postprocess.registry.STEPS; each step's grid)."""
    for key, step in STEPS.items():
        if step.available():  # e.g. crf: tried only when its optional package is installed
            yield (
                key,
                lambda cfg, step=step: [
                    (label, cfg.model_copy(update=update)) for label, update in step.grid()
                ],
            )


def fit(opts: FitOptions, members: Sequence[Member] | None = None) -> Recipe:
    """Fit a recipe on a labelled split and write it to opts.out (members: default the manifest's).

    On out-of-fold predictions instead (ensemble.fit.oof_fit) with opts.oof, or by default when the
    manifest's bags are K-fold bags."""
    if members is None and use_oof(opts):
        from ensemble.fit.oof_fit import fit_oof

        return fit_oof(opts)
    t0 = time.perf_counter()
    ens = opts.ensemble
    inputs = discover(opts.data, opts.split)
    if inputs.gt_paths is None:
        raise FitError(f"{opts.data}: split {opts.split!r} has no masks to fit on")
    bad_images, bad_masks = validate(inputs, max(2, ens.num_workers), opts.progress)
    if bad_images or bad_masks:
        raise FitError(
            "\n".join(b.line() for b in bad_images + bad_masks)
            + f"\nbad files in split {opts.split!r}; nothing was written"
        )
    device = resolve_device(opts.device)
    if members is None:
        members = load_manifest(opts.manifest, device).members
    names = [m.name for m in members]
    scales = sorted({1.0, *ens.scales})
    views = build_views(opts.candidate_views, scales)
    identity = next(i for i, v in enumerate(views) if v.is_identity)
    room = images_within(opts.cache_gb * 1e9, len(members), len(views), opts.resolution)
    keep = subset(len(inputs.items), min(opts.max_images, room), opts.seed)
    if len(keep) < 2:
        raise FitError(
            f"{len(keep)} image(s) fit the cache: need 2 or more (raise --cache-gb, "
            f"lower --resolution or use fewer candidates)"
        )
    items = [inputs.items[i] for i in keep]
    gt_paths = [inputs.gt_paths[i] for i in keep]

    cache = build_cache(
        members,
        items,
        gt_paths,
        views,
        opts.resolution,
        device,
        ens.batch_size,
        ens.num_workers,
        opts.progress,
    )
    choose, confirm = split_halves(len(items), opts.seed)
    scorer = Scorer(cache.labels, choose, confirm)
    selection, singles = select_members(cache.probs[:, identity], names, scorer, opts.max_steps)
    weights = selection.weights
    w = torch.tensor([weights.get(n, 0.0) for n in names], dtype=torch.float32)
    view_probs = torch.einsum("m,mvnchw->vnchw", w, cache.probs.float())
    part = Part(members, items, gt_paths, range(len(items)))
    return finish(
        opts,
        names,
        (selection, singles),
        (views, identity, view_probs, scorer),
        lambda weights, run_views: full_resolution(
            [part], weights, run_views, set(choose.tolist()), opts, device
        ),
        (choose, confirm),
        {
            "split": opts.split,
            "images": len(items),
            "split_images": len(inputs.items),
            "cache_resolution": opts.resolution,
            "cache_gb": round(cache.nbytes / 1e9, 6),
        },
        t0,
        {m.name: m.bag_members for m in members if m.bag_members},
    )


def finish(
    opts: FitOptions,
    names: list[str],
    members: tuple,
    candidate_views: tuple[list[View], int, torch.Tensor, Scorer],
    full_resolution: Callable[[dict[str, float], list[View]], FullResolution],
    halves: tuple[np.ndarray, np.ndarray],
    data: dict,
    t0: float,
    bags: dict[str, list[str]] | None = None,
) -> Recipe:
    """Choose views (on the chosen members' cached probabilities), confirm members and views at
    full resolution, choose post-processing, write the recipe.

    members: (selection, each candidate's scores); candidate_views: (views, the identity's index,
    the weighted members' probabilities under each view (V, N, C, r, r), the scorer)."""
    selection, singles = members
    views, identity_index, view_probs, scorer = candidate_views
    chosen_views, _, view_decisions = select_views(
        view_probs, [v.name for v in views], scorer, identity_index
    )
    del view_probs
    run_views, identity = [views[i] for i in chosen_views], views[identity_index]
    weights = selection.weights
    choose, confirm = halves
    # Confirm at full resolution; a stage that loses there is dropped like one that loses on a half.
    confirmations: list[dict] = []
    full = full_resolution(weights, run_views)
    start = full.halves.scores(f"member:{selection.start}")
    ensemble = full.halves.scores("ensemble")
    if len(weights) > 1 and not ensemble.improves_on(start):
        confirmations.append({"stage": "members", "kept": False, **ensemble.delta(start)})
        weights = {selection.start: 1.0}
        full = full_resolution(weights, run_views)
        ensemble = start
    tta = full.halves.scores("tta")
    if len(run_views) > 1 and not tta.improves_on(ensemble):
        confirmations.append({"stage": "views", "kept": False, **tta.delta(ensemble)})
        run_views = [identity]
        full = full_resolution(weights, run_views)
        tta = ensemble

    # Steps are scored on the images whose probabilities were kept: their plain argmax is the start
    # (the same as the views' scores when every image fits the memory budget).
    cfg = plain_config()  # every step off
    plain = tta if len(full.indices) == data["images"] else _postprocess_scores(full, cfg)
    current, step_decisions = plain, []
    for stage, options_on in postprocess_stages():
        kept, current, decisions = select_options(
            stage, options_on(cfg), current, lambda c: _postprocess_scores(full, c)
        )
        step_decisions += decisions
        if kept is not None:
            cfg = kept
    stage_scores = {"best_candidate": start, "ensemble": ensemble, "views": tta, "final": current}
    recipe = Recipe(
        manifest=str(Path(opts.manifest).resolve()),
        members={n: weights[n] for n in names if weights.get(n, 0) > 0},
        bags={n: m for n, m in (bags or {}).items() if weights.get(n, 0) > 0},
        views=[v.name for v in run_views],
        postprocess=cfg,
        scores={k: vars(v) for k, v in stage_scores.items()},
        decisions={
            "candidates": {n: vars(s) for n, s in singles.items()},
            "selection": selection.to_json(),
            "views": [d.to_json() for d in view_decisions],
            "postprocess": [d.to_json() for d in step_decisions],
            "full_resolution": confirmations,
        },
        data={
            "dataset": str(Path(opts.data).resolve()),
            **data,
            "choose": len(choose),
            "confirm": len(confirm),
            "seed": opts.seed,
            "postprocess_images": len(full.indices),
            "seconds": round(time.perf_counter() - t0, 1),
        },
    )
    write_recipe(opts.out, recipe)
    write_provenance_beside(opts.out, config=opts.ensemble, extra={"options": opts})
    return recipe
