"""`run --label-set`: score and write an ensemble's output in another label set (configs.label_sets).

Each member's softmax is merged before anything else sees it: a set class gets the SUM of the
probabilities of the 19 classes it takes, held in its representative's channel (the others hold 0).
Averaging over members and views is linear, so it equals merging the averaged probabilities; every
argmax (each member's stage, the ensemble, TTA, post-processing) then picks among the set's classes
only, and the rest of the run keeps working in 19-class IDs. Ground truth in the set's IDs is read
into representative IDs for scoring, and 19-class ground truth is merged the same way (its labels
mapped); written masks/ hold the set's IDs (color/ keeps our palette).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from configs import IGNORE_INDEX, colorize
from configs.label_sets import CELEBAMASK19, LabelSet, get_label_set
from data_prep.atomic import write_image
from data_prep.layout import DatasetError, PreparedDataset, read_label_map
from ensemble.core.inputs import ImageSet, InputError, is_prepared
from ensemble.core.members import Member
from ensemble.submission.csv_codes import write_masks


class MergedModel(torch.nn.Module):
    """A member whose output is log(merged probabilities): softmax of it gives the merged ones."""

    def __init__(self, model: torch.nn.Module, label_set: LabelSet):
        super().__init__()
        self.model = model
        # channel c of the 19 -> the channel (a representative) its probability is added to
        self.register_buffer(
            "index", torch.as_tensor(label_set.representative[label_set.target]), persistent=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = torch.softmax(self.model(x).float(), dim=1)
        merged = torch.zeros_like(p).index_add_(1, self.index.to(p.device), p)
        return torch.log(merged)  # -inf in merged-away channels: softmax gives them exactly 0


@dataclass(frozen=True)
class RunLabels:
    """What a run does differently for a label set: members, ground truth, written masks, report."""

    label_set: LabelSet = CELEBAMASK19
    gt_set: LabelSet = CELEBAMASK19  # the label set ground-truth masks are in

    @property
    def identity(self) -> bool:
        return self.label_set is CELEBAMASK19

    def members(self, members: Sequence[Member]) -> list[Member]:
        if self.identity:
            return list(members)
        return [dataclasses.replace(m, model=MergedModel(m.model, self.label_set)) for m in members]

    def read_gt(self, path: Path) -> np.ndarray:
        """Ground truth in the set's IDs -> representative 19-class IDs (what the run scores in)."""
        gt = read_label_map(path)
        if self.identity:
            return gt
        if self.gt_set is CELEBAMASK19:  # 19-class truth, merged like the predictions
            gt = self.label_set.to_set_lut[gt]
        return self.label_set.from_set_lut[gt]

    def write(self, out: Path, stem: str, labels: np.ndarray) -> None:
        """masks/{stem}.png in the set's IDs, color/{stem}.png in our palette."""
        if self.identity:
            write_masks(out, stem, labels)
            return
        write_image(Path(out) / "masks" / f"{stem}.png", self.label_set.to_set_lut[labels])
        write_image(Path(out) / "color" / f"{stem}.png", colorize(labels))

    def check_gt(self, paths: Sequence[Path] | None, workers: int) -> None:
        """Refuse ground truth with values outside the set (e.g. a 19-class mask given to lapa11)."""
        if self.gt_set is CELEBAMASK19 or not paths:
            return
        n = self.gt_set.num_classes

        def bad(path: Path) -> str | None:
            try:
                values = np.unique(read_label_map(path))
            except DatasetError as err:
                return str(err)
            outside = values[(values >= n) & (values != IGNORE_INDEX)]
            if outside.size:
                return (
                    f"{path}: ground-truth values {outside[:5].tolist()} are outside the "
                    f"{self.gt_set.name} label set (0..{n - 1} and {IGNORE_INDEX}; --gt-label-set "
                    f"celebamask19 scores 19-class masks)"
                )
            return None

        with ThreadPoolExecutor(max(1, min(workers, os.cpu_count() or 1, 8))) as pool:
            lines = [line for line in pool.map(bad, paths) if line]
        if lines:
            raise InputError(
                "\n".join(lines + [f"{len(lines)} ground-truth mask(s) not in {self.gt_set.name}"])
            )

    def report(self) -> dict[str, Any] | None:
        """The report's label_set entry: the set's classes and what each one takes."""
        if self.identity:
            return None
        s = self.label_set
        return {
            "name": s.name,
            "ground_truth": self.gt_set.name,
            "classes": list(s.classes),
            "display_names": list(s.display_names),
            "merged_into": s.merged_into(),
        }


def ground_truth_label_set(images: Path, run_set: str, given: str | None) -> str:
    """The label set of the ground truth: given, else a prepared dataset's own, else the run's."""
    if given is not None:
        return given
    return PreparedDataset(images).label_set() if is_prepared(images) else run_set


def apply_label_set(
    name: str, test_set: ImageSet, members: Sequence[Member], workers: int, images: Path, gt_set: str | None
) -> tuple[RunLabels, list[Member]]:
    """Check the ground truth against its label set and merge the members' outputs into set `name`."""
    gt_name = ground_truth_label_set(images, name, gt_set)
    try:
        labels = RunLabels(get_label_set(name), get_label_set(gt_name))
    except ValueError as err:
        raise InputError(str(err)) from None
    if labels.gt_set is not CELEBAMASK19 and labels.gt_set is not labels.label_set:
        raise InputError(
            f"ground truth in {gt_name} can be scored only with --label-set {gt_name} (the run's is {name})"
        )
    labels.check_gt(test_set.gt_paths, workers)
    return labels, labels.members(members)


def label_set_markdown(entry: dict[str, Any] | None) -> list[str]:
    """The report.md section saying which classes merge into what (nothing for the 19 classes)."""
    if not entry:
        return []
    lines = [
        f"## Label set: {entry['name']} (ground truth in {entry.get('ground_truth', entry['name'])})",
        "",
        "Each class's probability is the sum of the probabilities of the classes it takes, before the "
        "argmax. Scores and masks/ use these IDs; the per-class table names each by its 19-class "
        "counterpart, and the merged-away classes (no pixels) are left out of the means.",
        "",
        "| id | class | takes |",
        "|---|---|---|",
    ]
    for i, (c, shown) in enumerate(zip(entry["classes"], entry["display_names"])):
        lines.append(f"| {i} | {shown} | {', '.join(entry['merged_into'][c])} |")
    return lines + [""]
