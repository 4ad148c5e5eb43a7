"""Pictures: comparison panels (image | prediction | ground truth | errors) and the confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from configs import CLASSES, IGNORE_INDEX, NUM_CLASSES, PALETTE, colorize

PANEL_HEIGHT = 256
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _fit(image: np.ndarray, height: int, interpolation: int) -> np.ndarray:
    h, w = image.shape[:2]
    width = max(1, round(w * height / h))
    return cv2.resize(image, (width, height), interpolation=interpolation)


def _title(tile: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((22, tile.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (4, 16), _FONT, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, tile])


def legend(classes: list[int], width: int) -> np.ndarray:
    """Swatch + name for each class, wrapped into rows of the given width."""
    cell_w, cell_h = 110, 20
    per_row = max(1, width // cell_w)
    rows = max(1, -(-len(classes) // per_row))
    strip = np.full((rows * cell_h + 4, width, 3), 255, np.uint8)
    for k, c in enumerate(classes):
        x, y = (k % per_row) * cell_w + 4, (k // per_row) * cell_h + 4
        color = tuple(int(v) for v in PALETTE[c])
        cv2.rectangle(strip, (x, y), (x + 14, y + 14), color, -1)
        cv2.rectangle(strip, (x, y), (x + 14, y + 14), (128, 128, 128), 1)
        cv2.putText(strip, CLASSES[c], (x + 18, y + 12), _FONT, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return strip


def error_map(image: np.ndarray, pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """The image in faded grey with every wrongly labelled pixel in red (ignored pixels: blue)."""
    h, w = gt.shape
    if image.shape[:2] != (h, w):
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    out = np.repeat((128 + grey // 2)[..., None], 3, axis=2)
    ignored = gt == IGNORE_INDEX
    out[(pred != gt) & ~ignored] = (230, 0, 0)
    out[ignored] = (90, 120, 230)
    return out


def comparison_panel(
    image: np.ndarray,
    pred: np.ndarray,
    gt: np.ndarray | None = None,
    height: int = PANEL_HEIGHT,
    errors: bool = False,
) -> np.ndarray:
    """RGB panel: image | prediction (| ground truth (| error map when errors)), titled, with a
    legend of the classes shown."""
    tiles = [
        _title(_fit(image, height, cv2.INTER_AREA), "image"),
        _title(_fit(colorize(pred), height, cv2.INTER_NEAREST), "prediction"),
    ]
    shown = set(np.unique(pred).tolist())
    if gt is not None:
        tiles.append(_title(_fit(colorize(gt), height, cv2.INTER_NEAREST), "ground truth"))
        shown |= set(np.unique(gt).tolist())
        if errors:
            wrong = float(((pred != gt) & (gt != IGNORE_INDEX)).mean())
            tile = _fit(error_map(image, pred, gt), height, cv2.INTER_NEAREST)
            tiles.append(_title(tile, f"errors {wrong:.1%}"))
    gap = np.full((tiles[0].shape[0], 4, 3), 255, np.uint8)
    row = np.hstack([t for tile in tiles for t in (tile, gap)][:-1])
    classes = sorted(c for c in shown if c < NUM_CLASSES)
    return np.vstack([row, legend(classes, row.shape[1])])


def plot_confusion(cm: np.ndarray, path: str | Path, title: str = "confusion (row-normalised)") -> None:
    """Row-normalised confusion matrix with class names, written atomically as a PNG."""
    from data_prep.figures import new_figure, save_figure

    cm = np.asarray(cm, dtype=np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    fig = new_figure(9, 8)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(CLASSES)), CLASSES, rotation=90, fontsize=8)
    ax.set_yticks(range(len(CLASSES)), CLASSES, fontsize=8)
    ax.set_xlabel("prediction")
    ax.set_ylabel("ground truth")
    ax.set_title(title)
    for i in range(norm.shape[0]):
        for j in range(norm.shape[1]):
            if norm[i, j] >= 0.01:
                ax.text(
                    j,
                    i,
                    f"{norm[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=5,
                    color="white" if norm[i, j] > 0.5 else "black",
                )
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    save_figure(fig, path)


def overlay(
    image: np.ndarray,
    labels: np.ndarray,
    boxes: Sequence[tuple[float, float, float, float]] = (),
    alpha: float = 0.5,
    landmarks: Sequence[dict[str, tuple[float, float]]] = (),
    crops: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """RGB photo with translucent class colours (background left clear), face boxes (white), each
    face's landmarks (yellow dots), the crops the model saw (cyan, (4, 2) corners each) and a legend."""
    out = image.astype(np.float32)
    on = labels > 0
    out[on] = (1 - alpha) * out[on] + alpha * colorize(labels)[on].astype(np.float32)
    out = out.round().astype(np.uint8)
    thickness = max(1, round(max(labels.shape) / 400))
    for x0, y0, x1, y1 in boxes:
        cv2.rectangle(out, (round(x0), round(y0)), (round(x1) - 1, round(y1) - 1), (255, 255, 255), thickness)
    for corners in crops:
        cv2.polylines(out, [np.round(corners).astype(np.int32)], True, (0, 255, 255), thickness, cv2.LINE_AA)
    radius = max(2, 2 * thickness)
    for marks in landmarks:
        for x, y in marks.values():
            cv2.circle(out, (round(x), round(y)), radius + 1, (0, 0, 0), -1, cv2.LINE_AA)
            cv2.circle(out, (round(x), round(y)), radius, (255, 230, 0), -1, cv2.LINE_AA)
    shown = sorted(c for c in np.unique(labels).tolist() if 0 < c < NUM_CLASSES)
    return np.vstack([out, legend(shown, out.shape[1])]) if shown else out
