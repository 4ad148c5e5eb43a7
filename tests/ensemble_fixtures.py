"""Helpers for the ensemble tests: tiny manifests, synthetic face images/masks, hand-made models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

import tuning.manifest
from configs import CLASS_ID, NUM_CLASSES, PALETTE
from data_prep.atomic import write_image
from data_prep.layout import PreparedDataset, write_meta, write_splits
from ensemble.core.members import Member
from tuning.models import build_model

from faces import face_label_map, palette_image

# Small, fast smp pairs (FPN/mobilenet_v2 is ~4M parameters, ~15 ms for 2x64x64 on one core).
TINY = {"arch": "FPN", "encoder": "mobilenet_v2"}
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def write_manifest(
    folder: Path, members: list[dict] | None = None, seed: int = 0, bags: list[dict] | None = None
) -> Path:
    """Write tiny random-weight members + manifest.json; member dicts override the defaults; bags
    (tuning.manifest.BagEntry dicts) group members into refit bags."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    members = members or [{}]
    entries = []
    for i, spec in enumerate(members):
        entry = {
            "name": f"m{i}",
            **TINY,
            "image_size": 64,
            "mean": list(MEAN),
            "std": list(STD),
            "weights": f"m{i}.safetensors",
            "val_f1": 0.5 + 0.1 * i,
            "trial_id": f"t{i}",
            "config": {},
            **spec,
        }
        torch.manual_seed(seed + i)
        model = build_model(entry["arch"], entry["encoder"], None)
        # Random init gives near-uniform softmax; scale the head so members disagree visibly.
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.startswith("segmentation_head"):
                    p.mul_(20.0)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / entry["weights"]))
        entries.append(entry)
    return tuning.manifest.write_manifest(folder, entries, bags or ()).path


def make_image_folder(
    folder: Path,
    sizes: list[tuple[int, int]],
    stems: list[str] | None = None,
    seed: int = 0,
    masks: Path | None = None,
    ext: str = ".png",
) -> list[str]:
    """Write face images (and optionally their masks) of the given (H, W) sizes; returns stems."""
    rng = np.random.default_rng(seed)
    stems = stems or [str(i) for i in range(len(sizes))]
    for stem, (h, w) in zip(stems, sizes):
        labels = face_label_map(h, w, rng)
        write_image(Path(folder) / f"{stem}{ext}", palette_image(labels, rng))
        if masks is not None:
            write_image(Path(masks) / f"{stem}.png", labels)
    return stems


def make_face_dataset(root: Path, counts: dict[str, int], size: int = 64, seed: int = 0) -> PreparedDataset:
    """A prepared dataset (images/, masks/, splits/, dataset.json) of synthetic faces."""
    prep = PreparedDataset(Path(root))
    rng = np.random.default_rng(seed)
    splits, k = {}, 0
    pixels = np.zeros(NUM_CLASSES, np.int64)
    for split, n in counts.items():
        splits[split] = []
        for _ in range(n):
            labels = face_label_map(size, size, rng)
            write_image(prep.image_path(str(k)), palette_image(labels, rng))
            write_image(prep.mask_path(str(k)), labels)
            pixels += np.bincount(labels.ravel(), minlength=NUM_CLASSES)
            splits[split].append(str(k))
            k += 1
    write_splits(prep, splits)
    write_meta(prep, source="test", size=size, splits=splits, pixel_counts=pixels, skipped=[])
    return prep


class SideModel(torch.nn.Module):
    """A parser that, like a real one, names bright pixels by image side: right half -> l_eye.

    In a photo the subject's left eye is on the image's right, so a position-aware parser
    calls anything bright there l_eye, and on the left r_eye; dark pixels are skin.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        bright = (x.mean(1, keepdim=True) > 0).float()
        right = (torch.arange(w, device=x.device) >= w / 2).float().view(1, 1, 1, w)
        logits = torch.zeros(n, NUM_CLASSES, h, w, device=x.device)
        logits[:, CLASS_ID["skin"]] = 5 * (1 - bright[:, 0])
        logits[:, CLASS_ID["l_eye"]] = 10 * (bright * right)[:, 0]
        logits[:, CLASS_ID["r_eye"]] = 10 * (bright * (1 - right))[:, 0]
        return logits


def member(
    model: torch.nn.Module,
    name: str = "m",
    image_size: int = 64,
    mean=(0.5, 0.5, 0.5),
    std=(0.25, 0.25, 0.25),
    val_f1: float | None = 0.5,
) -> Member:
    """A Member around an in-memory model (no manifest needed)."""
    return Member(
        name=name,
        arch="test",
        encoder="test",
        image_size=image_size,
        mean=tuple(mean),
        std=tuple(std),
        model=model.eval(),
        val_f1=val_f1,
    )


class PaletteModel(torch.nn.Module):
    """A good parser for faces.palette_image(): the class whose drawing colour is nearest each pixel."""

    def __init__(self, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))
        colours = (torch.tensor(PALETTE, dtype=torch.float32) * 0.8 + 30) / 255
        self.register_buffer("colours", colours.view(1, NUM_CLASSES, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rgb = x * self.std + self.mean
        return -((rgb.unsqueeze(1) - self.colours) ** 2).sum(2) * 50
