"""The fit's fit_report.html (beside recipe.json): the scores on both halves, the selection trace
and every decision's delta on the choosing and the confirming half as a chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from data_prep.figures import color, new_figure
from data_prep.html_page import HtmlPage
from ensemble.fit.decisions import selection_trace_figure

HALVES = ("choose", "confirm", "all")


def decision_deltas(recipe: dict[str, Any]) -> list[tuple[str, bool, dict[str, float]]]:
    """Every decision in the order it was made: (label, kept, delta per half).

    Selection steps count from the previous step's scores (the first from the best candidate);
    views and post-processing steps from what was kept before them.
    """
    dec = recipe.get("decisions", {})
    sel = dec.get("selection", {})
    kept_steps = sum(sel.get("counts", {}).values())
    out, previous = [], None
    for t in sel.get("trace", []):
        if previous is not None:
            delta = {h: t[h] - previous[h] for h in HALVES}
            out.append((f"select {t['added']} (step {t['step']})", t["step"] <= kept_steps, delta))
        previous = t
    for key in ("views", "postprocess"):
        for r in dec.get(key, []):
            out.append((f"{r['stage']}: {r['option']}", bool(r["kept"]), {h: r["delta"][h] for h in HALVES}))
    return out


def deltas_figure(deltas: list[tuple[str, bool, dict[str, float]]]) -> Figure:
    """One row per decision, first on top: a bar per half; kept decisions in bold."""
    fig = new_figure(10, 1.4 + 0.42 * len(deltas))
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(deltas))[::-1]
    height = 0.8 / len(HALVES)
    for i, half in enumerate(HALVES):
        values = [d[half] for _, _, d in deltas]
        ax.barh(y + (1 - i) * height, values, height, label=f"Δ {half}", color=color(i))
    ax.set_yticks(y, [f"{'✓' if kept else '✗'} {label}" for label, kept, _ in deltas], fontsize=8)
    for tick, (_, kept, _) in zip(ax.get_yticklabels(), deltas):
        tick.set_fontweight("bold" if kept else "normal")
    ax.axvline(0, color="black", lw=0.8)
    ax.set(xlabel="change in mean face F1", title="every decision (✓ kept, ✗ dropped)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def write_fit_html(path: Path, recipe: dict[str, Any], recipe_path: Path, trace_png: str | None) -> Path:
    """path (fit_report.html); trace_png: the selection-trace PNG beside it, else drawn inline."""
    data, scores = recipe.get("data", {}), recipe.get("scores", {})
    page = HtmlPage("Ensemble fit report")
    page.bullets(
        [
            f"recipe: {recipe_path}",
            f"fit on {data.get('dataset')} split {data.get('split')}: {data.get('images')} of "
            f"{data.get('split_images')} images, halves choose={data.get('choose')} / confirm={data.get('confirm')}",
            "members: " + ", ".join(f"{n} {w:.3f}" for n, w in recipe.get("members", {}).items()),
            f"views: {', '.join(recipe.get('views', []))}",
        ]
    )
    page.paragraph(
        "A stage is kept only if it raises the choosing half's mean face F1 without lowering the "
        "confirming half's or the whole split's.",
        note=True,
    )
    page.heading("Scores (mean face F1)")
    page.table(["stage", *HALVES], [[stage, *(s[h] for h in HALVES)] for stage, s in scores.items()])
    page.heading("Selection trace")
    if trace_png:
        page.image(trace_png, "greedy selection with replacement: score after each step")
    else:
        page.figure(
            selection_trace_figure(recipe), "greedy selection with replacement: score after each step"
        )
    deltas = decision_deltas(recipe)
    if deltas:
        page.heading("Every decision's delta on both halves")
        page.figure(
            deltas_figure(deltas),
            "selection steps against the previous step; views and steps against what was kept before them",
        )
        page.table(
            ["decision", "kept", *(f"Δ {h}" for h in HALVES)],
            [[label, "yes" if kept else "no", *(d[h] for h in HALVES)] for label, kept, d in deltas],
        )
    candidates = recipe.get("decisions", {}).get("candidates", {})
    if candidates:
        counts = recipe.get("decisions", {}).get("selection", {}).get("counts", {})
        page.heading("Candidates (cached resolution, no TTA)")
        rows = sorted(candidates.items(), key=lambda kv: -kv[1]["all"])
        page.table(
            ["candidate", *HALVES, "picks"], [[n, *(s[h] for h in HALVES), counts.get(n, 0)] for n, s in rows]
        )
    return page.write(path)
