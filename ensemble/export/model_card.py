"""The README.md (Hugging Face model card) of an smp export: what the member is, how well it did on
val, what it was trained on, and under which terms its weights may be used.

smp's save_pretrained writes a generic card (license: mit, metrics and dataset "[More Information
Needed]"); export_smp replaces it with this one.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from configs import CLASSES, FLIP_PARTNER
from ensemble.core.members import Member

PER_CLASS_CSV = "per_class_f1.csv"  # tuning's export writes it beside the manifest (tuning.library_export)
LICENSE_NOTE = (
    "The code that trained this model is MIT-licensed; the weights are not. CelebAMask-HQ may be used "
    "for non-commercial research and educational purposes only, so a model trained on it inherits "
    "that restriction: non-commercial research only. Check the terms of every dataset listed under "
    "Training data before any other use."
)


def training_datasets(member: Member) -> list[dict[str, Any]]:
    """The member's data.datasets (path, weight) with each dataset.json's source and split counts when readable."""
    refs = (member.config.get("data") or {}).get("datasets") or []
    found = []
    for ref in refs:
        entry = {
            "path": str(ref.get("path")),
            "weight": ref.get("weight", 1.0),
            "source": None,
            "counts": None,
        }
        try:
            meta = json.loads((Path(entry["path"]) / "dataset.json").read_text())
            entry["source"], entry["counts"] = meta.get("source"), meta.get("counts")
        except (OSError, ValueError, AttributeError):
            pass  # moved or not mounted here: the path is what the config recorded
        found.append(entry)
    return found


def per_class_f1(member: Member, manifest_path: Path | None) -> dict[str, float] | None:
    """The member's val F1 per class from per_class_f1.csv beside the manifest (its trial's row), if there."""
    if manifest_path is None or member.trial_id is None:
        return None
    path = Path(manifest_path).parent / PER_CLASS_CSV
    try:
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                if row.get("trial_id") == member.trial_id:
                    return {c: float(row[c]) for c in CLASSES if row.get(c) not in (None, "")}
    except (OSError, ValueError, csv.Error):
        return None
    return None


def _f1(value: float | None) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def model_card(member: Member, *, manifest_path: Path | None = None, command: str | None = None) -> str:
    """The card's text: YAML front matter, then Markdown."""
    datasets = training_datasets(member)
    sources = sorted({d["source"] for d in datasets if d["source"]})
    per_class = per_class_f1(member, manifest_path)
    front = [
        "---",
        "license: other",
        "license_name: non-commercial-research-only",
        "library_name: segmentation-models-pytorch",
        "pipeline_tag: image-segmentation",
        "tags:",
        *(f"- {t}" for t in ("face-parsing", "semantic-segmentation", "segmentation-models-pytorch")),
    ]
    if sources:
        front += ["datasets:", *(f"- {s}" for s in sources)]
    if member.val_f1 is not None:
        front += ["metrics:", "- f1"]
    front.append("---")

    lines = [
        f"# Face parser {member.name}: {member.arch} / {member.encoder}",
        "",
        "A face-parsing model (19 CelebAMask-HQ classes per pixel) trained by faceparse-ensemble and",
        "exported with `segmentation_models_pytorch`'s `save_pretrained`.",
        "",
        "## Model",
        "",
        "| | |",
        "|---|---|",
        f"| architecture | {member.arch} |",
        f"| encoder | {member.encoder} |",
        f"| image size | {member.image_size} x {member.image_size} |",
        f"| mean (RGB) | {list(member.mean)} |",
        f"| std (RGB) | {list(member.std)} |",
        "| input | image: (N, 3, S, S) float32 RGB, (x / 255 - mean) / std |",
        "| output | logits: (N, 19, S, S); argmax over axis 1 gives class IDs |",
    ]
    if member.trial_id:
        lines.append(f"| search trial | {member.trial_id} |")
    lines += [
        "",
        "## Evaluation",
        "",
        f"val F1: **{_f1(member.val_f1)}** (mean F1 over the 18 face classes, background excluded, on the "
        "validation split of the training data; the manifest's `val_f1`).",
    ]
    if per_class:
        lines += [
            "",
            "| class | val F1 |",
            "|---|---|",
            *(f"| {c} | {_f1(v)} |" for c, v in per_class.items()),
        ]
    lines += ["", "## Training data", ""]
    if datasets:
        lines += ["| dataset | source | weight | train / val / test |", "|---|---|---|---|"]
        for d in datasets:
            counts = d["counts"] or {}
            split = " / ".join(str(counts.get(s, "?")) for s in ("train", "val", "test")) if counts else "?"
            lines.append(
                f"| `{d['path']}` | {d['source'] or 'unknown (dataset.json not readable)'} | {d['weight']} | {split} |"
            )
    else:
        lines.append("Not recorded (the member's config lists no data.datasets).")
    lines += [
        "",
        "## Classes",
        "",
        "| id | class | flip partner |",
        "|---|---|---|",
        *(
            f"| {i} | {c} | {CLASSES[FLIP_PARTNER[i]] if i in FLIP_PARTNER else ''} |"
            for i, c in enumerate(CLASSES)
        ),
        "",
        "## Usage",
        "",
        "```python",
        "import segmentation_models_pytorch as smp",
        "",
        'model = smp.from_pretrained("<this folder>").eval()',
        "```",
        "",
        "`faceparse.json` beside the weights holds the class table, flip partners and input spec.",
        "",
        "## License",
        "",
        "license: other. " + LICENSE_NOTE,
    ]
    if command:
        lines += ["", "## Provenance", "", "Exported with:", "", "```bash", command, "```"]
    return "\n".join(front + [""] + lines) + "\n"
