"""matplotlib through its object API only: a Figure with its own Agg canvas, never pyplot or
matplotlib.use (a library must not switch the process's global backend under a notebook or GUI).

The charts every report shares (grouped bars, horizontal bars, a heatmap) live here; each
report module draws its own special charts on new_figure().
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from data_prep.atomic import write_bytes

DPI = 100


def new_figure(width: float, height: float) -> Figure:
    """A figure of width x height inches drawn by its own Agg canvas."""
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def figure_png(fig: Figure, dpi: int = DPI, tight: bool = True) -> bytes:
    """The figure as PNG bytes (tight layout unless tight=False: the caller laid it out)."""
    if tight:
        fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save_figure(fig: Figure, path: str | Path, dpi: int = DPI, tight: bool = True) -> Path:
    """Write the figure as a PNG atomically; returns the path."""
    write_bytes(path, figure_png(fig, dpi, tight))
    return Path(path)


def color(i: int) -> tuple[float, float, float, float]:
    """The i-th colour of matplotlib's tab10 cycle."""
    return colormaps["tab10"](i % 10)


def _finite(values: Sequence[float | None]) -> list[float]:
    return [0.0 if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in values]


def grouped_bars(
    labels: Sequence[str], series: dict[str, Sequence[float | None]], title: str, ylabel: str
) -> Figure:
    """One group of bars per label, one bar per series (missing values drawn as 0)."""
    fig = new_figure(max(6.0, 0.45 * len(labels) * max(1, len(series)) ** 0.5 + 2), 4.2)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(labels))
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, _finite(values), width, label=name, color=color(i))
    ax.set_xticks(x, list(labels), rotation=60, ha="right", fontsize=8)
    ax.set(ylabel=ylabel, title=title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def horizontal_bars(values: dict[str, float], title: str, xlabel: str, log: bool = False) -> Figure:
    """One bar per key, the first key on top."""
    names = list(values)[::-1]
    fig = new_figure(7, 1.2 + 0.3 * len(names))
    ax = fig.add_subplot(1, 1, 1)
    ax.barh(names, _finite([values[n] for n in names]), color=color(0))
    if log:
        ax.set_xscale("log")
    ax.set(xlabel=xlabel, title=title)
    ax.tick_params(axis="y", labelsize=8)
    return fig


def heatmap(
    matrix: np.ndarray,
    rows: Sequence[str],
    cols: Sequence[str],
    title: str,
    *,
    vmin: float = 0.0,
    vmax: float = 1.0,
    cmap: str = "viridis",
    annotate: bool = True,
) -> Figure:
    """A matrix with row/column names and a colour bar; NaN cells blank, values printed when annotate."""
    matrix = np.asarray(matrix, dtype=np.float64)
    fig = new_figure(max(6.0, 0.42 * len(cols) + 3), max(3.0, 0.32 * len(rows) + 2))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(np.ma.masked_invalid(matrix), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(cols)), list(cols), rotation=90, fontsize=7)
    ax.set_yticks(range(len(rows)), list(rows), fontsize=7)
    ax.set_title(title)
    if annotate:
        mid = (vmin + vmax) / 2
        for (i, j), v in np.ndenumerate(matrix):
            if not math.isnan(v):
                ax.text(
                    j,
                    i,
                    f"{v:.2f}",
                    ha="center",
                    va="center",
                    fontsize=5,
                    color="white" if v < mid else "black",
                )
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return fig
