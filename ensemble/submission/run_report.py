"""The run report: per-stage scores (each member, ensemble, +TTA, +each post-processing step),
weights, timings and skipped images, as report.json and report.md."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from configs import CLASSES, NUM_CLASSES
from data_prep.atomic import write_json, write_text
from ensemble.fit.decisions import decisions_markdown, fmt_delta, fmt_num
from ensemble.submission.relabel import label_set_markdown
from tuning.metrics import scores_from_confusion

MEMBER_PREFIX = "member:"
BASELINE_PREFIX = "baseline:"  # ensemble.submission.baseline


class StageScores:
    """Confusion matrices per stage, in the order stages first appear."""

    def __init__(self) -> None:
        self.matrices: dict[str, np.ndarray] = {}

    def add(self, stage: str, cm: np.ndarray) -> None:
        if stage not in self.matrices:
            self.matrices[stage] = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
        self.matrices[stage] += cm

    def __bool__(self) -> bool:
        return bool(self.matrices)

    @property
    def final(self) -> str:
        return list(self.matrices)[-1]

    def table(self) -> list[dict[str, Any]]:
        """One row per stage: name, kind, scores; delta_f1 against the previous ensemble stage."""
        rows, previous = [], None
        for name, cm in self.matrices.items():
            scores = scores_from_confusion(cm)
            kind = (
                "member"
                if name.startswith(MEMBER_PREFIX)
                else "baseline"
                if name.startswith(BASELINE_PREFIX)
                else "ensemble"
            )
            row = {"stage": name, "kind": kind, **scores}
            if kind == "ensemble":
                row["delta_f1"] = None if previous is None else scores["f1"] - previous
                previous = scores["f1"]
            rows.append(row)
        return rows


def compact_rows(stages: list[dict[str, Any]]) -> list[tuple[str, float]]:
    """The baseline (best search trial), the best member, then every ensemble stage: (name, mean face F1)."""
    members = [s for s in stages if s["kind"] == "member"]
    rows = [(s["stage"][len(BASELINE_PREFIX) :], s["f1"]) for s in stages if s["kind"] == "baseline"]
    if members:
        best = max(members, key=lambda s: -1.0 if math.isnan(s["f1"]) else s["f1"])
        rows.append((f"best member ({best['stage'][len(MEMBER_PREFIX) :]})", best["f1"]))
    rows += [(s["stage"], s["f1"]) for s in stages if s["kind"] == "ensemble"]
    return rows


def compact_table(stages: list[dict[str, Any]]) -> str:
    """A few lines for the terminal: best member vs ensemble vs +TTA vs +post-processing."""
    rows = compact_rows(stages)
    width = max(len(n) for n, _ in rows)
    lines = [f"{'stage':<{width}}  mean F1 (face)"]
    lines += [f"{n:<{width}}  {fmt_num(v)}" for n, v in rows]
    return "\n".join(lines)


def render_markdown(report: dict[str, Any]) -> str:
    lines = ["# Ensemble report", ""]
    lines += [
        f"- manifest: `{report['manifest']}`",
        f"- images: {report['images']} from `{report['source']}` "
        f"({report['predicted']} predicted, {len(report['skipped'])} skipped)",
        f"- device: {report['device']}",
        f"- TTA views: {', '.join(report['views'])}",
        f"- post-processing: {', '.join(report['postprocess']) or 'none'}",
        f"- recipe: `{report['recipe']}`"
        if report.get("recipe")
        else "- recipe: none (settings from config and flags)",
        f"- CSV: resize `{report['csv']['resize']}` to 256, background row `{report['csv']['background']}`",
        "",
    ]
    lines += label_set_markdown(report.get("label_set"))
    classes = report["label_set"]["classes"] if report.get("label_set") else CLASSES
    lines += [
        "## Members",
        "",
        "| member | arch | encoder | image size | val F1 | weight |",
        "|---|---|---|---|---|---|",
    ]
    for m in report["members"]:
        lines.append(
            f"| {m['name']} | {m['arch']} | {m['encoder']} | {m['image_size']} | "
            f"{fmt_num(m['val_f1'])} | {m['weight']:.4f} |"
        )
    lines += ["", f"Member weights: {report['weights_mode']}.", ""]
    if report.get("decisions"):
        lines += decisions_markdown(report["decisions"]) + [""]
    stages = report.get("stages")
    if stages:
        lines += [
            "## Scores",
            "",
            f"Ground truth: `{report['gt']}`. Mean F1 over the {len(classes) - 1} face "
            "classes; Δ is the change from the previous ensemble stage.",
            "",
            "| stage | mean F1 (face) | Δ | F1 with bg | mIoU | pixel acc |",
            "|---|---|---|---|---|---|",
        ]
        for s in stages:
            lines.append(
                f"| {s['stage']} | {fmt_num(s['f1'])} | {fmt_delta(s.get('delta_f1'), missing='')} | "
                f"{fmt_num(s['f1_with_bg'])} | {fmt_num(s['miou'])} | {fmt_num(s['pixel_acc'])} |"
            )
        lines += [
            "",
            "### Per-class F1",
            "",
            "| class | " + " | ".join(s["stage"] for s in stages) + " |",
            "|---|" + "---|" * len(stages),
        ]
        for c in classes:
            lines.append(f"| {c} | " + " | ".join(fmt_num(s["per_class_f1"][c], 3) for s in stages) + " |")
        lines += ["", "![confusion matrix](confusion.png)", ""]  # report.md sits beside it
    else:
        lines += ["No ground truth given: no scores (pass --gt MASKDIR or a prepared dataset).", ""]
    t = report["timings"]
    lines += [
        "## Timings",
        "",
        "| what | seconds |",
        "|---|---|",
        f"| input check | {t['validate_s']:.2f} |",
        f"| prediction + post-processing + writing | {t['run_s']:.2f} |",
        f"| per image | {t['per_image_s']:.4f} |",
        f"| members' bare forward passes (sum) | {t['forward_total_s']:.2f} |",
    ]
    for name, s in t["forward_s"].items():
        lines.append(f"| forward {name} | {s:.2f} |")
    lines += [f"| everything but the forward passes | {t['overhead_s']:.2f} |", ""]
    lines += photos_markdown(report.get("photos"))
    lines += ["## Skipped images", ""]
    lines += [f"- `{b['file']}`: {b['reason']} (empty rows in the CSV)" for b in report["skipped"]] or [
        "None."
    ]
    if report.get("ignored"):
        lines += ["", "Ignored (not images): " + ", ".join(f"`{n}`" for n in report["ignored"])]
    lines += ["", "## Outputs", ""] + [f"- {k}: `{v}`" for k, v in report["outputs"].items()]
    return "\n".join(lines) + "\n"


def write_run_report(out: str | Path, report: dict[str, Any]) -> None:
    out = Path(out)
    write_json(out / "report.json", _jsonable(report))
    write_text(out / "report.md", render_markdown(report))


def _jsonable(x: Any) -> Any:
    """NaN -> None (JSON has no NaN), numpy scalars -> Python numbers, paths -> strings."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return None if math.isnan(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, Path):
        return str(x)
    return x


def photos_markdown(photos: dict[str, Any] | None) -> list[str]:
    """The report's Photos section: settings, faces per path, the images with no detected face."""
    if not photos:
        return []
    s = photos["settings"]
    found = ", ".join(f"{k} {v}" for k, v in sorted(photos["found_by"].items())) or "none"
    lines = [
        "## Photos (faces found, aligned and parsed)",
        "",
        f"Detector {s['detector']} (threshold {s['detector_threshold'] or 'default'}), context view "
        f"{s['context']:g}, second pass {'on' if s['second_pass'] else 'off'}. Faces found by: {found}.",
        "",
        f"No face detected (parsed whole): {len(photos['no_face'])} image(s)"
        + (": " + ", ".join(f"`{n}`" for n in photos["no_face"]) if photos["no_face"] else ""),
        "",
    ]
    return lines
