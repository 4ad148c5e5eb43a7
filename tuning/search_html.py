"""The search's search_report.html (beside trials.csv): per-trial val F1 and loss by epoch with
the ASHA stops marked, the trial x class heatmap of per_class_f1.csv, parameter importances, the
optimisation history and the leaderboard. Reads plain TrialSummary records: no Ray."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from configs import CLASSES
from data_prep.figures import color, heatmap, horizontal_bars, new_figure
from data_prep.html_page import HtmlPage
from tuning.library_export import TrialSummary, arch_colors, by_score, search_metric

STOPPED = "stopped early"


def _series(trial: TrialSummary, key: str) -> tuple[list[int], list[float]]:
    points = [
        (int(e["epoch"]), float(e[key])) for e in trial.epochs if e.get(key) is not None and "epoch" in e
    ]
    points = [(x, y) for x, y in points if not math.isnan(y)]
    return [x for x, _ in points], [y for _, y in points]


def curves_figure(trials: list[TrialSummary], max_epochs: int) -> Figure:
    """Search metric (left) and validation/training loss (right) per epoch, one line per trial,
    coloured by architecture; a trial ASHA stopped ends in a red cross."""
    metric = search_metric(trials)
    colors, handles = arch_colors(trials)
    fig = new_figure(13, 4.8)
    ax_f1, ax_loss = fig.subplots(1, 2)
    for t in trials:
        x, y = _series(t, metric)
        if x:
            ax_f1.plot(x, y, "o-", ms=3, color=colors[t.arch], alpha=0.85)
            if t.status == STOPPED:
                ax_f1.plot(x[-1], y[-1], "x", color="red", ms=10, mew=2)
        for key, style in (("val_loss", "-"), ("train_loss", ":")):
            x, y = _series(t, key)
            if x:
                ax_loss.plot(x, y, style, color=colors[t.arch], alpha=0.85)
    ax_f1.set(
        xlabel="epoch", ylabel=metric, title=f"{metric} per epoch (x: stopped by ASHA before {max_epochs})"
    )
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss per epoch (solid: val, dotted: train)")
    for ax in (ax_f1, ax_loss):
        ax.grid(alpha=0.3)
        ax.set_xlim(0.5, max_epochs + 0.5)
    handles.append(Line2D([], [], color="red", marker="x", ls="", label="stopped by ASHA"))
    ax_f1.legend(handles=handles, fontsize=8)
    return fig


def history_figure(trials: list[TrialSummary]) -> Figure:
    """Each trial's best score in the order the trials started, and the best so far."""
    ordered = sorted(trials, key=lambda t: t.trial_id)
    values = [t.best_score for t in ordered]
    best = np.fmax.accumulate(np.array(values, dtype=np.float64)) if values else np.array([])
    fig = new_figure(8, 4)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(1, len(values) + 1)
    ax.scatter(x, values, color=[color(0) if t.status != STOPPED else "red" for t in ordered], zorder=3)
    ax.step(x, best, where="post", color="black", label="best so far")
    ax.set(
        xlabel="trial (in start order)", ylabel=f"best {search_metric(trials)}", title="optimisation history"
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def leaderboard_rows(trials: list[TrialSummary]) -> list[list[Any]]:
    rows = []
    for r, t in enumerate(by_score(trials), 1):
        params = ", ".join(
            f"{k.split('.')[-1]}={v:.3g}" if isinstance(v, float) else f"{k.split('.')[-1]}={v}"
            for k, v in t.params.items()
        )
        rows.append(
            [r, t.trial_id, t.arch, t.encoder, params, t.num_epochs, t.best_score, t.status, t.wall_s]
        )
    return rows


def write_search_html(
    out: Path,
    trials: list[TrialSummary],
    max_epochs: int,
    per_class: pd.DataFrame | None = None,
    importance: dict[str, Any] | None = None,
) -> Path:
    """out/search_report.html."""
    metric = search_metric(trials)
    page = HtmlPage("Search report")
    counts = pd.Series([t.status for t in trials]).value_counts().to_dict() if trials else {}
    page.bullets(
        [
            f"{len(trials)} trials: " + ", ".join(f"{n} {s}" for s, n in counts.items()),
            f"metric: {metric} (higher is better), at most {max_epochs} epochs per trial",
            "files beside this page: trials.csv, per_class_f1.csv, param_importance.json, manifest.json",
        ]
    )
    page.heading("Leaderboard")
    page.table(
        ["rank", "trial", "arch", "encoder", "parameters", "epochs", f"best {metric}", "status", "wall s"],
        leaderboard_rows(trials),
    )
    if not trials:
        return page.write(out / "search_report.html")
    page.heading("Curves by epoch")
    page.figure(
        curves_figure(trials, max_epochs), "each trial's validation F1 and losses; red x: ASHA stopped it"
    )
    page.heading("Optimisation history")
    page.figure(history_figure(trials), "each trial's best score in start order (red: stopped early)")
    if per_class is not None and len(per_class):
        page.heading("Per-class F1 at each trial's best epoch")
        names = [c for c in CLASSES if c in per_class.columns]
        labels = [f"{r.arch}/{r.encoder} {str(r.trial_id)[-5:]}" for r in per_class.itertuples()]
        matrix = per_class[names].to_numpy(dtype=np.float64)
        page.figure(heatmap(matrix, labels, names, "val F1: trial x class"), "blank: class absent from val")
    page.heading("Parameter importance")
    if importance and importance.get("importances"):
        page.figure(
            horizontal_bars(
                importance["importances"], "parameter importance", "importance (PED-ANOVA, sums to 1)"
            ),
            f"from {importance['completed_trials']} completed trials",
        )
    else:
        page.paragraph(f"None: {(importance or {}).get('note') or 'no stored Optuna study'}", note=True)
    errors = [t for t in trials if t.error]
    if errors:
        page.heading("Errors")
        page.table(["trial", "error"], [[t.trial_id, t.error] for t in errors])
    return page.write(out / "search_report.html")
