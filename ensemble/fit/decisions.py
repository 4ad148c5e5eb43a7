"""How a recipe was chosen, for people: the decisions section (markdown) and the selection-trace plot."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def fmt_num(x: float | None, digits: int = 4) -> str:
    """A score for a markdown table; missing or undefined (NaN) -> '—'."""
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def fmt_delta(x: float | None, missing: str = "—") -> str:
    """A signed change for a markdown table; missing or undefined -> missing."""
    return missing if x is None or math.isnan(x) else f"{x:+.4f}"


def decisions_markdown(recipe: dict[str, Any]) -> list[str]:
    """Markdown lines: candidates, selection trace, views and steps with deltas on both halves."""
    dec, data, scores = recipe.get("decisions", {}), recipe.get("data", {}), recipe.get("scores", {})
    if not dec:
        return []
    lines = [
        "## Decisions (fit on validation data)",
        "",
        f"Fit on `{data.get('dataset')}` split `{data.get('split')}`: {data.get('images')} of "
        f"{data.get('split_images')} images, halves choose={data.get('choose')} / "
        f"confirm={data.get('confirm')} (seed {data.get('seed')}). Members and views were chosen on "
        f"probabilities cached at {data.get('cache_resolution')} px; the stage table and "
        f"post-processing are at each image's own size. A stage is kept only if it raises the "
        f"choosing half's mean face F1 without lowering the confirming half's or the whole split's.",
        "",
        "| stage | choose | confirm | all |",
        "|---|---:|---:|---:|",
    ]
    kept = data.get("postprocess_images")
    if kept is not None and kept < data.get("images", kept):
        lines[3:3] = [
            "",
            f"Post-processing was scored on the {kept} images whose full-size probabilities "
            f"fit the memory budget; its rows compare on those images only.",
        ]
    for stage, s in scores.items():
        lines.append(f"| {stage} | {fmt_num(s['choose'])} | {fmt_num(s['confirm'])} | {fmt_num(s['all'])} |")
    lines += [
        "",
        "### Candidates (cached resolution, no TTA)",
        "",
        "| candidate | choose | confirm | all | picks |",
        "|---|---:|---:|---:|---:|",
    ]
    counts = dec.get("selection", {}).get("counts", {})
    for name, s in sorted(dec.get("candidates", {}).items(), key=lambda kv: -kv[1]["all"]):
        lines.append(
            f"| {name} | {fmt_num(s['choose'])} | {fmt_num(s['confirm'])} | {fmt_num(s['all'])} | {counts.get(name, 0)} |"
        )
    sel = dec.get("selection", {})
    lines += [
        "",
        "### Selection trace (greedy, with replacement)",
        "",
        "| step | added | choose | confirm | all |",
        "|---:|---|---:|---:|---:|",
    ]
    for t in sel.get("trace", []):
        lines.append(
            f"| {t['step']} | {t['added']} | {fmt_num(t['choose'])} | {fmt_num(t['confirm'])} | {fmt_num(t['all'])} |"
        )
    weights = ", ".join(f"{n} {w:.3f}" for n, w in recipe.get("members", {}).items())
    lines += ["", f"Weights (selection counts, normalised): {weights}."]
    if not sel.get("kept", True):
        lines.append("The ensemble lost on the confirming half, so the best single candidate stays.")
    for c in dec.get("full_resolution", []):
        lines.append(
            f"Dropped at full resolution: {c['stage']} (Δ choose {fmt_delta(c['choose'])}, "
            f"confirm {fmt_delta(c['confirm'])}, all {fmt_delta(c['all'])})."
        )
    for title, key in (("Views", "views"), ("Post-processing", "postprocess")):
        rows = dec.get(key, [])
        if not rows:
            continue
        lines += [
            "",
            f"### {title} (each tried on top of what was kept)",
            "",
            "| stage | option | kept | Δ choose | Δ confirm | Δ all |",
            "|---|---|---|---:|---:|---:|",
        ]
        for r in rows:
            d = r["delta"]
            lines.append(
                f"| {r['stage']} | {r['option']} | {'yes' if r['kept'] else 'no'} | "
                f"{fmt_delta(d['choose'])} | {fmt_delta(d['confirm'])} | {fmt_delta(d['all'])} |"
            )
    return lines


def selection_trace_figure(recipe: dict[str, Any]):
    """Score after each greedy selection step, on both halves and the whole split (a Figure)."""
    from data_prep.figures import new_figure

    selection = recipe.get("decisions", {}).get("selection", {})
    trace = selection.get("trace", [])
    fig = new_figure(8, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    steps = [t["step"] for t in trace]
    for key, style in (("choose", "o-"), ("confirm", "s--"), ("all", "^:")):
        ax.plot(steps, [t[key] for t in trace], style, label=key)
    kept = sum(selection.get("counts", {}).values())
    if kept:
        ax.axvline(kept, color="grey", lw=1, ls="--")
        ax.annotate(
            f"kept: steps 1-{kept}",
            (kept, ax.get_ylim()[1]),
            fontsize=8,
            ha="left",
            va="top",
            xytext=(3, -3),
            textcoords="offset points",
        )
    ax.set_xticks(steps, [f"{t['step']}\n{t['added']}" for t in trace], fontsize=6, rotation=60, ha="right")
    best = recipe.get("scores", {}).get("best_candidate")
    ax.set_xlabel("selection step: candidate added")
    ax.set_ylabel("mean face F1 (cached resolution)")
    ax.set_title(
        "Greedy ensemble selection" + (f" — best single at full res {best['all']:.4f}" if best else "")
    )
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def plot_selection_trace(recipe: dict[str, Any], path: str | Path) -> None:
    """selection_trace_figure as a PNG."""
    from data_prep.figures import save_figure

    save_figure(selection_trace_figure(recipe), path, dpi=110)
