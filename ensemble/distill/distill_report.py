"""Teacher vs student on a labelled split: F1 per class, ms/image, model sizes (distill_report.md/.json).

Both run through ensemble.core.batching (the same input preparation), scored on argmax before
post-processing: the recipe's post-processing applies to either the same way. The teacher pass
also scores each member alone (identity view), so the student can be compared with the best one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from configs import CLASSES
from data_prep.atomic import write_json, write_text
from data_prep.layout import read_label_map
from ensemble.core.batching import Timings
from ensemble.core.inference import Ensemble
from ensemble.core.inputs import ImageItem
from ensemble.core.members import Member
from ensemble.postprocess.registry import argmax_labels
from ensemble.submission.run_report import MEMBER_PREFIX, StageScores
from tuning.metrics import image_confusion, scores_from_confusion

TEACHER, STUDENT = "teacher (recipe)", "student"


def _model_size(members: Sequence[Member]) -> dict:
    params = sum(p.numel() for m in members for p in m.model.parameters())
    files = {m.weights_path for m in members if m.weights_path is not None}
    return {"parameters": int(params), "weights_bytes": int(sum(p.stat().st_size for p in files))}


def compare(
    teacher: Ensemble,
    student: Member,
    items: Sequence[ImageItem],
    gt_paths: Sequence[Path],
    device: torch.device | str = "cpu",
    batch_size: int = 4,
    progress: bool = True,
) -> dict:
    """Scores, timings and sizes of the teacher, each of its members alone, and the student."""
    stages = StageScores()
    timings = {TEACHER: Timings(), STUDENT: Timings()}
    wall = {}
    runs = [
        (TEACHER, teacher.to(device), True),
        (STUDENT, Ensemble([student], device=device), False),
    ]
    for name, model, track in runs:
        t0 = time.perf_counter()
        model.timings = timings[name]
        for pred in model.stream(items, batch_size=batch_size, track_stages=track, progress=progress):
            gt = read_label_map(gt_paths[pred.index])
            stages.add(name, image_confusion(argmax_labels(pred.probs), gt))
            for stage, labels in pred.stage_labels.items():
                if stage.startswith(MEMBER_PREFIX):
                    stages.add(stage, image_confusion(labels, gt))
        wall[name] = time.perf_counter() - t0
    rows = {}
    for stage, cm in stages.matrices.items():
        s = scores_from_confusion(cm)
        rows[stage] = {"f1": s["f1"], "miou": s["miou"], "per_class_f1": s["per_class_f1"]}
    n = len(items)
    members_alone = {k: v["f1"] for k, v in rows.items() if k.startswith(MEMBER_PREFIX)}
    best_member = max(members_alone, key=lambda k: members_alone[k]) if members_alone else None
    speed = {
        name: {
            "forward_ms_per_image": 1000 * t.forward_total_s / max(1, t.images),
            "wall_ms_per_image": 1000 * wall[name] / max(1, n),
        }
        for name, t in timings.items()
    }
    return {
        "images": n,
        "device": str(device),
        "scores": rows,
        "best_member": best_member,
        "speed": speed,
        "forward_speedup": speed[TEACHER]["forward_ms_per_image"]
        / max(1e-9, speed[STUDENT]["forward_ms_per_image"]),
        "forwards_per_image": {TEACHER: teacher.forwards_per_image, STUDENT: 1},
        "size": {TEACHER: _model_size(teacher.members), STUDENT: _model_size([student])},
        "note": "F1 = mean over the 18 face classes, argmax before post-processing; the teacher's "
        "forward time includes every member x view (and, for the per-member scores, an "
        "identity pass when the recipe's views lack one)",
    }


def _f(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.4f}"


def report_markdown(report: dict, header: list[str]) -> str:
    """The report as markdown: summary table, per-class F1 table, speed and sizes."""
    scores = report["scores"]
    order = [TEACHER, STUDENT] + ([report["best_member"]] if report["best_member"] else [])
    lines = [
        "# Distillation report",
        "",
        *header,
        "",
        f"{report['images']} images, device `{report['device']}`. {report['note']}.",
        "",
        (
            "| model | mean face F1 | mIoU | forwards/image | forward ms/image | wall ms/image "
            "| parameters | weights MB |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in (TEACHER, STUDENT):
        s, sp, sz = scores[name], report["speed"][name], report["size"][name]
        lines.append(
            f"| {name} | {_f(s['f1'])} | {_f(s['miou'])} | {report['forwards_per_image'][name]} | "
            f"{sp['forward_ms_per_image']:.1f} | {sp['wall_ms_per_image']:.1f} | "
            f"{sz['parameters']:,} | {sz['weights_bytes'] / 1e6:.1f} |"
        )
    if report["best_member"]:
        lines.append(
            f"| best member alone: {report['best_member']} | {_f(scores[report['best_member']]['f1'])} "
            f"| {_f(scores[report['best_member']]['miou'])} | 1 | | | | |"
        )
    lines += [
        "",
        (
            f"Student forward speed-up over the teacher: {report['forward_speedup']:.1f}x "
            f"(teacher runs {report['forwards_per_image'][TEACHER]} forwards per image)."
        ),
        "",
        "## F1 per class",
        "",
        "| class | " + " | ".join(order) + " |",
        "|---" * (len(order) + 1) + "|",
    ]
    for c in CLASSES:
        lines.append(f"| {c} | " + " | ".join(_f(scores[k]["per_class_f1"][c]) for k in order) + " |")
    return "\n".join(lines) + "\n"


def write_distill_report(report: dict, out: Path, header: list[str]) -> tuple[Path, Path, Path]:
    """out/distill_report.md, .json and .html."""
    from ensemble.distill.distill_html import write_distill_html

    md, js = out / "distill_report.md", out / "distill_report.json"
    write_json(js, report)
    write_text(md, report_markdown(report, header))
    return md, js, write_distill_html(report, out, header, TEACHER, STUDENT)
