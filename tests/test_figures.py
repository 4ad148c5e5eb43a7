"""matplotlib through its object API only: no report switches the process's global backend."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np

from data_prep.figures import grouped_bars, heatmap, horizontal_bars, save_figure

REPO = Path(__file__).resolve().parents[1]
PROJECT = ("configs", "data_prep", "tuning", "ensemble", "benchmarks", "scripts")


def test_every_plot_leaves_the_global_backend_as_the_caller_set_it(tmp_path):
    # A notebook or GUI has its own backend: each report plot must draw without switching it.
    script = textwrap.dedent(
        f"""
        import matplotlib, numpy as np
        matplotlib.use("svg")
        from pathlib import Path
        from ensemble.fit.decisions import plot_selection_trace
        from ensemble.submission.pictures import plot_confusion
        from tuning.library_export import TrialSummary, plot_trials
        from tuning.study import plot_importances
        out = Path({str(tmp_path)!r})
        t = TrialSummary("t0", {{"model.arch": "Unet", "model.encoder": "resnet18"}}, "completed", "val_f1",
                         epochs=[{{"epoch": 1, "val_f1": 0.5}}], best_score=0.5)
        plot_trials([t], out / "trials.png")
        plot_importances({{"train.lr": 0.7, "arch": 0.3}}, out / "imp.png", "importance")
        plot_confusion(np.eye(19, dtype=np.int64) * 5, out / "cm.png")
        trace = [{{"step": 1, "added": "m0", "choose": 0.5, "confirm": 0.4, "all": 0.45}}]
        plot_selection_trace({{"decisions": {{"selection": {{"trace": trace, "counts": {{"m0": 1}}}}}}}},
                             out / "trace.png")
        print(matplotlib.get_backend())
        """
    )
    res = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "svg"
    for name in ("trials.png", "imp.png", "cm.png", "trace.png"):
        image = cv2.imread(str(tmp_path / name))
        assert image is not None and image.std() > 5, name  # drawn, not blank


def test_no_project_module_imports_pyplot_or_calls_matplotlib_use():
    offenders = []
    for folder in PROJECT:
        for path in (REPO / folder).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = [f"{node.module}.{a.name}" for a in node.names]
                elif (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "use"
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "matplotlib"
                ):
                    names = ["matplotlib.use()"]
                offenders += [
                    f"{path.relative_to(REPO)}: {n}" for n in names if "pyplot" in n or n.endswith("use()")
                ]
    assert not offenders, offenders


def test_shared_charts_draw_their_values(tmp_path):
    bars = grouped_bars(["skin", "nose"], {"a": [0.9, 0.1], "b": [0.5, float("nan")]}, "F1", "F1")
    hbars = horizontal_bars({"skin": 0.6, "hair": 0.3}, "frequency", "share")
    cells = heatmap(np.array([[0.1, np.nan], [0.9, 0.5]]), ["t0", "t1"], ["skin", "nose"], "per class")
    assert len(bars.axes[0].patches) == 4
    assert [round(p.get_width(), 2) for p in hbars.axes[0].patches] == [0.3, 0.6]  # first key on top
    for fig, name in ((bars, "bars.png"), (hbars, "hbars.png"), (cells, "cells.png")):
        assert cv2.imread(str(save_figure(fig, tmp_path / name))).std() > 5
