"""The run's report.html: the stage table, per-class F1 as grouped bars (best member, ensemble,
final), the confusion matrix and a gallery of every scored image, worst first."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from configs import CLASSES
from data_prep.figures import grouped_bars
from data_prep.html_page import HtmlPage
from ensemble.submission.gallery import GalleryEntry, worst_first
from ensemble.submission.run_report import MEMBER_PREFIX


def class_f1_series(stages: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Per-class F1 of the best member, the plain ensemble and the final stage (each once)."""
    series: dict[str, dict[str, float | None]] = {}
    members = [s for s in stages if s["kind"] == "member" and not math.isnan(s["f1"])]
    if members:
        best = max(members, key=lambda s: s["f1"])
        series[f"best member ({best['stage'][len(MEMBER_PREFIX) :]})"] = best["per_class_f1"]
    ensembles = [s for s in stages if s["kind"] == "ensemble"]
    if ensembles:
        series[ensembles[0]["stage"]] = ensembles[0]["per_class_f1"]
        if len(ensembles) > 1:
            series[f"final ({ensembles[-1]['stage']})"] = ensembles[-1]["per_class_f1"]
    return series


def write_run_html(out: Path, report: dict[str, Any], gallery: list[GalleryEntry]) -> Path:
    """report.html beside report.md; the gallery panels and confusion.png are files beside it."""
    page = HtmlPage("Ensemble run report")
    page.bullets(
        [
            f"manifest: {report['manifest']}",
            f"images: {report['images']} from {report['source']} ({report['predicted']} predicted, "
            f"{len(report['skipped'])} skipped)",
            f"device: {report['device']}; TTA views: {', '.join(report['views'])}",
            f"post-processing: {', '.join(report['postprocess']) or 'none'}",
            f"recipe: {report['recipe'] or 'none (settings from config and flags)'}",
        ]
    )
    page.heading("Members")
    page.table(
        ["member", "arch", "encoder", "image size", "val F1", "weight"],
        [
            [m["name"], m["arch"], m["encoder"], m["image_size"], m["val_f1"], m["weight"]]
            for m in report["members"]
        ],
    )
    stages = report.get("stages")
    if not stages:
        page.paragraph(
            "No ground truth given: no scores and no gallery (pass --gt MASKDIR or a prepared dataset)."
        )
        return page.write(out / "report.html")
    classes = report["label_set"]["classes"] if report.get("label_set") else list(CLASSES)
    page.heading("Stages")
    page.paragraph(
        f"Ground truth: {report['gt']}. Mean F1 over the {len(classes) - 1} face classes; "
        "Δ is the change from the previous ensemble stage.",
        note=True,
    )
    page.table(
        ["stage", "mean F1 (face)", "Δ", "F1 with bg", "mIoU", "pixel acc"],
        [
            [s["stage"], s["f1"], s.get("delta_f1"), s["f1_with_bg"], s["miou"], s["pixel_acc"]]
            for s in stages
        ],
    )
    page.heading("Per-class F1")
    series = class_f1_series(stages)
    page.figure(
        grouped_bars(
            classes, {k: [v.get(c) for c in classes] for k, v in series.items()}, "per-class F1", "F1"
        ),
        "per-class F1: best member, plain ensemble, final stage (absent classes drawn as 0)",
    )
    if "confusion" in report["outputs"]:
        page.heading("Confusion matrix (final stage)")
        page.image("confusion.png", "rows: ground truth, columns: prediction, row-normalised")
    page.heading(f"Every scored image, worst first ({len(gallery)})")
    ranked = worst_first(gallery)
    scored = [e.f1 for e in ranked if not math.isnan(e.f1)]
    if scored:
        page.paragraph(
            f"Per-image mean face F1 from {scored[0]:.4f} to {scored[-1]:.4f} (median "
            f"{sorted(scored)[len(scored) // 2]:.4f}). Each panel: image | prediction | truth | errors "
            "(wrong pixels red). Click a panel to enlarge it.",
            note=True,
        )
    page.gallery((e.panel, e.caption(), e.data()) for e in ranked)
    if report["skipped"]:
        page.heading("Skipped images")
        page.bullets(f"{b['file']}: {b['reason']}" for b in report["skipped"])
    return page.write(out / "report.html")
