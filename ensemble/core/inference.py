"""The Ensemble: members, their weights, test-time views and a device, and the one predict path.

    ens = Ensemble.from_manifest("models/NAME/manifest.json")       # recipe.json beside it is used
    labels = ens.predict([rgb])                                     # [(H, W) uint8 class IDs]
    probs = ens.predict(items, probs=True)                          # [(C, H, W) float32]
    for pred in ens.stream(items, track_stages=True): ...           # Prediction per image, in order

Every member runs on every view of a batch and the softmax outputs are summed, weighted, into one
float32 accumulator at the largest member resolution; the average is resized to each image's own
size before anything takes an argmax (ensemble.core.batching explains the inputs). The weights are
normalised here, once, when the Ensemble is made. Post-processing is not part of the Ensemble: the
recipe's choice is kept in `postprocess` for the callers that apply it (ensemble.postprocess).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from configs import NUM_CLASSES
from configs.schema import EnsembleConfig, PostprocessConfig
from ensemble.core.batching import (
    ForwardTimer,
    Timings,
    distinct_specs,
    grouped_view_probs,
    labels_at,
    make_loader,
    to_device,
)
from ensemble.core.inputs import ImageItem
from ensemble.core.member_weights import WEIGHT_MODES, WeightsError
from ensemble.core.members import Member, load_manifest
from ensemble.core.recipe import Recipe, check_members, default_recipe_path, read_recipe
from ensemble.core.tta import TTAError, View, build_views, resize_bilinear, view_from_name
from tuning.models import resolve_device


@dataclass
class Prediction:
    """The ensemble's output for one image."""

    index: int  # position in the list of images given to Ensemble.stream()
    stem: str
    path: Path
    size: tuple[int, int]  # (H, W) of the image as predicted (shrunk above max_pixels)
    # (C, H, W) float32 on the device that ran the members: weighted average over members and
    # views at the image's own size. It stays there: post-processing starts on that device.
    probs: torch.Tensor
    # With track_stages: label maps (H, W) uint8 for "member:NAME" (each alone, no TTA) and
    # "ensemble" (members averaged, no TTA).
    stage_labels: dict[str, np.ndarray] = field(default_factory=dict)


def normalise_weights(
    members: Sequence[Member], weights: Mapping[str, float] | Sequence[float] | None
) -> dict:
    """Member name -> weight, summing to 1 (None: uniform). The only place weights are normalised."""
    if weights is None:
        weights = [1.0] * len(members)
    if isinstance(weights, Mapping):
        missing = [m.name for m in members if m.name not in weights]
        if missing:
            raise WeightsError(f"no weight for member(s) {missing}")
        weights = [weights[m.name] for m in members]
    if len(weights) != len(members):
        raise WeightsError(f"{len(weights)} weights for {len(members)} members")
    w = np.asarray(weights, dtype=np.float64)
    if (w < 0).any() or w.sum() <= 0:
        raise WeightsError(f"member weights must be >= 0 with a positive sum, got {list(weights)}")
    w = w / w.sum()
    return {m.name: float(x) for m, x in zip(members, w)}


class Ensemble:
    """Members averaged over test-time views: what every command predicts with."""

    def __init__(
        self,
        members: Sequence[Member],
        weights: Mapping[str, float] | Sequence[float] | None = None,
        views: Sequence[View] | None = None,
        *,
        device: torch.device | str = "cpu",
        weights_mode: str = "given",
        postprocess: PostprocessConfig | None = None,
        recipe: Recipe | None = None,
        recipe_path: Path | None = None,
        manifest_path: Path | None = None,
    ):
        if not members:
            raise WeightsError("an ensemble needs at least one member")
        views = list(views) if views is not None else [View()]
        if not views:
            raise TTAError("no TTA views given")
        self.members = list(members)
        self.weights = normalise_weights(self.members, weights)
        self.views = views
        self.device = torch.device(device)
        self.weights_mode = weights_mode
        self.postprocess = postprocess if postprocess is not None else PostprocessConfig()
        self.recipe = recipe
        self.recipe_path = recipe_path
        self.manifest_path = manifest_path
        self.timings = Timings()

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_manifest(
        cls,
        manifest: str | Path,
        *,
        recipe: str | Path | None = None,
        use_recipe: bool = True,
        config: EnsembleConfig | None = None,
        explicit: Mapping[str, Any] | None = None,
        device: torch.device | str = "auto",
        before_load: Callable[[PostprocessConfig], object] | None = None,
    ) -> Ensemble:
        """Members, weights, views and the post-processing choice from a manifest, its recipe
        (recipe.json beside the manifest by default) and settings given as flags (explicit: they
        beat the recipe: "weights", "views", "postprocess.<field>"). Without a recipe the config's
        member_weights, tta and postprocess apply. before_load(postprocess) runs before any model
        is loaded (e.g. building the steps, so a missing optional package fails fast)."""
        manifest = Path(manifest)
        cfg = config or EnsembleConfig()
        explicit = dict(explicit or {})
        recipe_path = Path(recipe) if recipe is not None else None
        if recipe_path is None and use_recipe and default_recipe_path(manifest).is_file():
            recipe_path = default_recipe_path(manifest)
        post = cfg.postprocess
        views = build_views(cfg.tta, cfg.scales)
        chosen = None
        if recipe_path is not None:
            chosen = read_recipe(recipe_path)
            post = chosen.postprocess
            if "views" not in explicit:
                views = [view_from_name(v) for v in chosen.views]
        post = post.model_copy(
            update={k.split(".", 1)[1]: v for k, v in explicit.items() if k.startswith("postprocess.")}
        )
        if before_load is not None:
            before_load(post)
        loaded = load_manifest(manifest, resolve_device(device))
        members = loaded.members
        mode = explicit.get("weights")
        if chosen is not None:
            check_members(chosen, [m.name for m in members], recipe_path)
            members = [m for m in members if m.name in chosen.members]
        if mode is None and chosen is not None:
            weights: Mapping[str, float] = chosen.members
        else:
            weights = WEIGHT_MODES[mode or cfg.member_weights](members)
        return cls(
            members,
            weights,
            views,
            device=resolve_device(device),
            weights_mode=mode or ("recipe" if chosen is not None else cfg.member_weights),
            postprocess=post,
            recipe=chosen,
            recipe_path=recipe_path,
            manifest_path=loaded.path,
        )

    @classmethod
    def from_recipe(
        cls, recipe: str | Path, *, manifest: str | Path | None = None, device: torch.device | str = "cpu"
    ) -> Ensemble:
        """The members a recipe keeps (weight > 0), its weights and views. manifest: the recipe's own,
        resolved beside the recipe when relative, or manifest.json beside it when the pair moved."""
        recipe_path = Path(recipe)
        chosen = read_recipe(recipe_path)
        manifest_path = Path(manifest) if manifest is not None else Path(chosen.manifest)
        if manifest is None and not manifest_path.is_absolute():
            manifest_path = recipe_path.parent / manifest_path
        if not manifest_path.exists() and manifest is None:
            manifest_path = recipe_path.parent / "manifest.json"
        loaded = load_manifest(manifest_path, device)
        check_members(chosen, [m.name for m in loaded.members], recipe_path)
        kept = [m for m in loaded.members if chosen.members.get(m.name, 0) > 0]
        return cls(
            kept,
            {m.name: chosen.members[m.name] for m in kept},
            [view_from_name(v) for v in chosen.views],
            device=device,
            weights_mode="recipe",
            postprocess=chosen.postprocess,
            recipe=chosen,
            recipe_path=recipe_path,
            manifest_path=loaded.path,
        )

    def with_members(self, members: Sequence[Member]) -> Ensemble:
        """The same ensemble over replacement members of the same names (e.g. relabelled outputs)."""
        twin = Ensemble(
            members,
            {m.name: self.weights[m.name] for m in members},
            self.views,
            device=self.device,
            weights_mode=self.weights_mode,
            postprocess=self.postprocess,
            recipe=self.recipe,
            recipe_path=self.recipe_path,
            manifest_path=self.manifest_path,
        )
        twin.timings = self.timings
        return twin

    # ---- facts ---------------------------------------------------------------------------------
    @property
    def resolution(self) -> int:
        """The model resolution: the largest member input size (where probabilities are summed)."""
        return max(m.image_size for m in self.members)

    @property
    def forwards_per_image(self) -> int:
        return len(self.members) * len(self.views)

    def to(self, device: torch.device | str) -> Ensemble:
        """Move every member (and where predictions run) to device."""
        self.device = torch.device(device)
        for m in self.members:
            m.model.to(self.device)
        return self

    # ---- prediction ----------------------------------------------------------------------------
    def predict(
        self,
        images: Sequence[ImageItem | np.ndarray],
        *,
        probs: bool = False,
        batch_size: int = 4,
        num_workers: int = 0,
        max_pixels: int | None = None,
        progress: bool = False,
    ) -> list[np.ndarray]:
        """Label maps (H, W) uint8 for image items or RGB uint8 arrays, in order; with probs=True
        the averaged probabilities (C, H, W) float32 instead. Both at each image's own size."""
        out = []
        for pred in self.stream(
            images, batch_size=batch_size, num_workers=num_workers, max_pixels=max_pixels, progress=progress
        ):
            p = pred.probs
            out.append(p.float().cpu().numpy() if probs else p.argmax(0).to(torch.uint8).cpu().numpy())
        return out

    def stream(
        self,
        images: Sequence[ImageItem | np.ndarray],
        *,
        batch_size: int = 4,
        num_workers: int = 0,
        track_stages: bool = False,
        max_pixels: int | None = None,
        progress: bool = True,
    ) -> Iterator[Prediction]:
        """One Prediction per image, in order: probabilities averaged over members and views.

        track_stages adds each member's and the no-TTA ensemble's label maps (for the report),
        computed in the same pass. Images above max_pixels are predicted shrunk
        (data_prep.layout.fit_pixels): size is then the shrunk size. Arrays are RGB uint8.
        """
        items = [
            im if not isinstance(im, np.ndarray) else ImageItem(f"array{i}", Path(f"array{i}"))
            for i, im in enumerate(images)
        ]
        specs, spec_of = distinct_specs(self.members)
        timer = ForwardTimer(self.device, self.timings)
        # The stages need every member's plain (identity) prediction; run it even when the views
        # leave it out (flip+scale without 1.0) but keep it out of the TTA average.
        has_identity = any(v.is_identity for v in self.views)
        run_views = list(self.views) + ([View()] if track_stages and not has_identity else [])
        loader = make_loader(images, specs, batch_size, num_workers, self.device, max_pixels)
        for index, sizes, inputs in tqdm(loader, desc="ensemble", unit="batch", disable=not progress):
            # Compute the batch under inference_mode, yield outside it: a generator suspended inside
            # the context would leave inference mode switched on in the caller's code.
            with torch.inference_mode():
                batch = self._batch(
                    run_views, spec_of, track_stages, timer, index.tolist(), sizes.tolist(), inputs
                )
            self.timings.images += len(batch)
            for pred in batch:
                pred.stem, pred.path = items[pred.index].stem, items[pred.index].path
                yield pred

    def _batch(self, run_views, spec_of, track_stages, timer, index, sizes, inputs) -> list[Prediction]:
        """Every member on every view of one batch, summed into one float32 accumulator."""
        n, res, views = len(index), self.resolution, self.views
        inputs = [to_device(x, self.device) for x in inputs]
        acc = torch.zeros(n, NUM_CLASSES, res, res, dtype=torch.float32, device=self.device)
        plain = torch.zeros_like(acc) if track_stages else None
        stage_labels: list[dict[str, np.ndarray]] = [{} for _ in range(n)]
        for m, member in enumerate(self.members):
            w = self.weights[member.name]
            for vi, p in grouped_view_probs(member, inputs[spec_of[m]], run_views, timer):
                view = run_views[vi]
                p = resize_bilinear(p, (res, res))
                if vi < len(views):
                    acc.add_(p, alpha=w / len(views))
                if track_stages and view.is_identity:
                    plain.add_(p, alpha=w)
                    for i, labels in enumerate(labels_at(p, sizes)):
                        stage_labels[i][f"member:{member.name}"] = labels
                del p
        timer.flush()
        if track_stages:
            for i, labels in enumerate(labels_at(plain, sizes)):
                stage_labels[i]["ensemble"] = labels
        return [
            Prediction(
                index=k,
                stem="",
                path=Path(),
                size=(int(sizes[i][0]), int(sizes[i][1])),
                probs=resize_bilinear(acc[i : i + 1], sizes[i])[0],
                stage_labels=stage_labels[i],
            )
            for i, k in enumerate(index)
        ]

    def view_probs(
        self,
        items: Sequence[ImageItem],
        *,
        resolution: int,
        batch_size: int = 4,
        num_workers: int = 0,
        progress: bool = True,
    ) -> torch.Tensor:
        """Every member's probabilities under every view, unweighted, at resolution r:
        (M, V, N, C, r, r) float16 on the CPU. One pass over a labelled split; `ensemble fit` then
        scores combinations without running models (ensemble.fit.candidate_cache states the memory)."""
        r = resolution
        specs, spec_of = distinct_specs(self.members)
        timer = ForwardTimer(self.device, self.timings)
        out = torch.zeros(
            len(self.members), len(self.views), len(items), NUM_CLASSES, r, r, dtype=torch.float16
        )
        loader = make_loader(items, specs, batch_size, num_workers, self.device)
        with torch.inference_mode():
            for index, _, inputs in tqdm(
                loader, desc="candidates' probabilities", unit="batch", disable=not progress
            ):
                inputs = [to_device(x, self.device) for x in inputs]
                for m, member in enumerate(self.members):
                    for v, p in grouped_view_probs(member, inputs[spec_of[m]], self.views, timer):
                        out[m, v, index] = resize_bilinear(p, (r, r)).half().cpu()
                timer.flush()
        return out
