"""distill_report.html: teacher vs student (and the best member alone), per-class F1 as grouped
bars, speed and size."""

from __future__ import annotations

from pathlib import Path

from configs import CLASSES
from data_prep.figures import grouped_bars
from data_prep.html_page import HtmlPage


def write_distill_html(report: dict, out: Path, header: list[str], teacher: str, student: str) -> Path:
    """out/distill_report.html from the report dict compare() returns."""
    scores, speed, size = report["scores"], report["speed"], report["size"]
    order = [teacher, student] + ([report["best_member"]] if report["best_member"] else [])
    page = HtmlPage("Distillation report")
    page.bullets([*header, f"{report['images']} images, device {report['device']}. {report['note']}."])
    page.heading("Teacher vs student")
    page.table(
        [
            "model",
            "mean face F1",
            "mIoU",
            "forwards/image",
            "forward ms/image",
            "wall ms/image",
            "parameters",
            "weights MB",
        ],
        [
            [
                name,
                scores[name]["f1"],
                scores[name]["miou"],
                report["forwards_per_image"][name],
                speed[name]["forward_ms_per_image"],
                speed[name]["wall_ms_per_image"],
                size[name]["parameters"],
                size[name]["weights_bytes"] / 1e6,
            ]
            for name in (teacher, student)
        ]
        + (
            [
                [
                    f"best member alone: {order[2]}",
                    scores[order[2]]["f1"],
                    scores[order[2]]["miou"],
                    1,
                    None,
                    None,
                    None,
                    None,
                ]
            ]
            if len(order) > 2
            else []
        ),
        digits=4,
    )
    page.paragraph(f"Student forward speed-up over the teacher: {report['forward_speedup']:.1f}x.")
    page.heading("F1 per class")
    page.figure(
        grouped_bars(
            CLASSES, {k: [scores[k]["per_class_f1"][c] for c in CLASSES] for k in order}, "F1 per class", "F1"
        ),
        "absent classes drawn as 0",
    )
    return page.write(out / "distill_report.html")
