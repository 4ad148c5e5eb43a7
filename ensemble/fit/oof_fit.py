"""`ensemble fit --oof`: choose bags, views and post-processing on out-of-fold predictions.

A K-fold refit (tuning.refit_command) leaves, for every train + val image, one prediction per bag
from the fold model that never trained on it (tuning.oof). Selection runs on those N images, several
times what a val split holds, split into the usual choose/confirm halves:

1. bags: greedy selection (ensemble.fit.selection) on the stored OOF probabilities (no model runs);
2. views: each fold's models of the chosen bags predict their held-out images under every
   candidate view, at the OOF resolution, weighted by the bag weights;
3. members and views are confirmed and post-processing chosen at each image's own size, again with
   each image predicted only by the fold models that did not train on it (ensemble.fit.fit_recipe).

At test time a bag predicts the mean of its K fold models (ensemble.core.bags).
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import torch

from configs import NUM_CLASSES
from data_prep.layout import PreparedDataset, read_label_map
from ensemble.core.inference import Ensemble
from ensemble.core.inputs import ImageItem
from ensemble.core.members import load_manifest
from ensemble.core.recipe import Recipe
from ensemble.core.tta import build_views
from ensemble.fit.fit_recipe import FitError, FitOptions, Part, finish, full_resolution
from ensemble.fit.selection import Scorer, select_members, split_halves
from tuning.manifest import read_manifest
from tuning.models import resolve_device
from tuning.oof import gather_oof, read_oof


def fit_oof(opts: FitOptions) -> Recipe:
    """Fit a recipe on the out-of-fold predictions of a K-fold refit manifest; write it to opts.out."""
    t0 = time.perf_counter()
    manifest = read_manifest(opts.manifest)
    if not manifest.bags or any(b.score_split != "oof" for b in manifest.bags):
        raise FitError(
            f"{opts.manifest}: --oof needs a K-fold refit manifest (python -m tuning refit --folds K >= 2); "
            f"fit other manifests on a split (--split val)"
        )
    folder = manifest.path.parent
    entries = {m.name: m for m in manifest.members}
    # Image id -> fold, from the first bag's files; every bag must hold out the same images per fold.
    fold_ids: dict[int, list[str]] = {}
    for name in manifest.bags[0].members:
        fold_ids[entries[name].fold] = read_oof(folder / entries[name].oof)[0]
    ids = sorted(i for f in fold_ids.values() for i in f)
    index = {i: k for k, i in enumerate(ids)}
    names = [b.name for b in manifest.bags]
    n, m = len(ids), len(names)
    missing = [n for b in manifest.bags for n in b.members if entries[n].oof is None]
    if missing:
        raise FitError(f"{opts.manifest}: members {missing} list no out-of-fold file (oof)")
    probs = torch.stack(
        [
            torch.from_numpy(gather_oof([folder / entries[n].oof for n in b.members], ids))
            for b in manifest.bags
        ]
    )  # (M, N, C, r, r) float16
    r = probs.shape[-1]
    if probs.numel() * 2 > opts.cache_gb * 1e9:
        raise FitError(
            f"the out-of-fold probabilities take {probs.numel() * 2 / 1e9:.2f} GB, more than --cache-gb "
            f"{opts.cache_gb:g} (refit with a lower --oof-resolution, or raise --cache-gb)"
        )
    prep = PreparedDataset(opts.data)
    items = [ImageItem(i, prep.image_path(i)) for i in ids]
    gt_paths = [prep.mask_path(i) for i in ids]
    labels = torch.from_numpy(
        np.stack(
            [cv2.resize(read_label_map(p), (r, r), interpolation=cv2.INTER_NEAREST_EXACT) for p in gt_paths]
        )
    )
    choose, confirm = split_halves(n, opts.seed)
    scorer = Scorer(labels, choose, confirm)
    selection, singles = select_members(probs, names, scorer, opts.max_steps)
    del probs
    weights = selection.weights

    device = resolve_device(opts.device)
    models = {mem.name: mem for mem in load_manifest(opts.manifest, device, bags=False).members}
    bag_of = {name: b.name for b in manifest.bags for name in b.members}
    parts = []
    for fold, held in sorted(fold_ids.items()):
        fold_models = [models[name] for name in models if entries[name].fold == fold]
        if len(fold_models) != m:
            raise FitError(f"{opts.manifest}: fold {fold} has {len(fold_models)} models for {m} bags")
        k = [index[i] for i in held]
        parts.append(Part(fold_models, [items[i] for i in k], [gt_paths[i] for i in k], k, bag_of))

    views = build_views(opts.candidate_views, sorted({1.0, *opts.ensemble.scales}))
    identity = next(i for i, v in enumerate(views) if v.is_identity)
    view_probs = torch.zeros(len(views), n, NUM_CLASSES, r, r, dtype=torch.float16)  # V x N x 19 x r^2 x 2 B
    for part in parts:
        chosen = [mem for mem in part.members if weights.get(bag_of[mem.name], 0) > 0]
        w = torch.tensor([weights[bag_of[mem.name]] for mem in chosen], dtype=torch.float32)
        ens = Ensemble(chosen, views=views, device=device)
        fold_probs = ens.view_probs(
            part.items,
            resolution=r,
            batch_size=opts.ensemble.batch_size,
            num_workers=opts.ensemble.num_workers,
            progress=opts.progress,
        )
        view_probs[:, list(part.indices)] = torch.einsum("m,mvnchw->vnchw", w, fold_probs.float()).half()
    choose_set = set(choose.tolist())
    return finish(
        opts,
        names,
        (selection, singles),
        (views, identity, view_probs, scorer),
        lambda w, run_views: full_resolution(parts, w, run_views, choose_set, opts, device),
        (choose, confirm),
        {
            "split": "out-of-fold (train + val)",
            "images": n,
            "split_images": n,
            "folds": len(fold_ids),
            "cache_resolution": r,
            "cache_gb": round(m * n * NUM_CLASSES * r * r * 2 / 1e9, 6),
        },
        t0,
        {b.name: list(b.members) for b in manifest.bags},
    )
