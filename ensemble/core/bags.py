"""A refit bag as one ensemble member: the mean of its fold (or seed) models' probabilities.

BagModel returns log(mean_k softmax(model_k(x))), so the softmax every member's output goes through
(ensemble.core.batching) gives back exactly that mean: a bag predicts, views and averages like any
member, and a recipe weights bags by name.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tuning.manifest import ManifestError, ManifestFile

# log(0) would be -inf, and softmax of a row of -inf is NaN: the smallest normal float32 instead.
_TINY = torch.finfo(torch.float32).tiny


class BagModel(torch.nn.Module):
    """The models of one bag; forward gives log-probabilities of their averaged softmax."""

    def __init__(self, models: Sequence[torch.nn.Module]):
        super().__init__()
        self.models = torch.nn.ModuleList(models)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.stack([torch.softmax(m(x).float(), dim=1) for m in self.models]).mean(0)
        return mean.clamp_min(_TINY).log()


def check_bag_inputs(manifest: ManifestFile) -> None:
    """The models of a bag must share one input spec (size, mean, std): they get one input tensor."""
    by_name = {m.name: m for m in manifest.members}
    for bag in manifest.bags:
        specs = {(by_name[n].image_size, tuple(by_name[n].mean), tuple(by_name[n].std)) for n in bag.members}
        if len(specs) > 1:
            raise ManifestError(
                f"{manifest.path}: bag {bag.name!r}: its models differ in input size/mean/std"
            )
