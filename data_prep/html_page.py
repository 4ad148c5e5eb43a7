"""A self-contained HTML page: inline CSS and a few lines of inline script, images inline (data
URIs) or as files relative to the page, so it opens from disk in any browser with no server and
nothing fetched from the network. A click on an image shows it at full size in a <dialog>.

Every report (run, fit, search, prepare, distill, predict) builds its report.html with HtmlPage.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from data_prep.atomic import encode_image, write_text

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1400px; padding: 0 1em;
       color: #222; background: #fff; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f2f2f2; }
img.zoom { cursor: zoom-in; max-width: 100%; }
figure { margin: 0.6em 0; } figcaption { font-size: 0.85em; color: #444; }
.gallery { display: flex; flex-wrap: wrap; gap: 10px; }
.gallery figure { border: 1px solid #ddd; padding: 4px; margin: 0; width: 480px; }
.gallery img { width: 100%; }
.note { color: #555; font-size: 0.9em; }
dialog { padding: 0; border: none; max-width: 96vw; max-height: 96vh; }
dialog img { display: block; max-width: 96vw; max-height: 96vh; }
"""

# Click an image: the same source at full size in a modal dialog; a click or Esc closes it.
_SCRIPT = """
const box = document.getElementById("zoom"), big = box.querySelector("img");
document.querySelectorAll("img.zoom").forEach(img => img.addEventListener("click", () => {
  big.src = img.src; box.showModal(); }));
box.addEventListener("click", () => box.close());
"""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def array_uri(image: np.ndarray, ext: str = ".png") -> str:
    """An RGB image or label map as a data URI (.png or .jpg)."""
    return data_uri(encode_image(image, ext), "image/png" if ext == ".png" else "image/jpeg")


def figure_uri(fig: Figure) -> str:
    from data_prep.figures import figure_png

    return data_uri(figure_png(fig))


def fmt(value: Any, digits: int = 4) -> str:
    """A table cell: floats rounded, NaN/None as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}f}"
    return str(value)


class HtmlPage:
    """An HTML report built top to bottom; write() renders it atomically."""

    def __init__(self, title: str):
        self.title = title
        self.parts: list[str] = [f"<h1>{esc(title)}</h1>"]

    def heading(self, text: str, level: int = 2) -> HtmlPage:
        self.parts.append(f"<h{level}>{esc(text)}</h{level}>")
        return self

    def paragraph(self, text: str, note: bool = False) -> HtmlPage:
        self.parts.append(f"<p{' class=note' if note else ''}>{esc(text)}</p>")
        return self

    def bullets(self, items: Iterable[str]) -> HtmlPage:
        self.parts.append("<ul>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>")
        return self

    def table(self, headers: Sequence[str], rows: Iterable[Sequence[Any]], digits: int = 4) -> HtmlPage:
        """Numbers are right-aligned and rounded to digits; None/NaN show as a dash."""
        head = "".join(f"<th>{esc(h)}</th>" for h in headers)
        body = []
        for row in rows:
            cells = []
            for v in row:
                numeric = isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                cells.append(
                    f"<td class=num>{esc(fmt(v, digits))}</td>" if numeric else f"<td>{esc(fmt(v))}</td>"
                )
            body.append("<tr>" + "".join(cells) + "</tr>")
        self.parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")
        return self

    def image(self, src: str, caption: str = "", alt: str = "") -> HtmlPage:
        """An image by relative path or data URI, click to enlarge."""
        cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
        self.parts.append(
            f'<figure><img class=zoom src="{esc(src)}" alt="{esc(alt or caption)}">{cap}</figure>'
        )
        return self

    def figure(self, fig: Figure, caption: str = "") -> HtmlPage:
        """A matplotlib figure, inline."""
        return self.image(figure_uri(fig), caption, alt=caption or "chart")

    def gallery(
        self, entries: Iterable[tuple[str, str, dict[str, str]]], css_class: str = "gallery"
    ) -> HtmlPage:
        """Figures in a wrapping row: (image src, caption, data-* attributes) each."""
        items = []
        for src, caption, data in entries:
            attrs = "".join(f' data-{esc(k)}="{esc(v)}"' for k, v in data.items())
            items.append(
                f'<figure class=entry{attrs}><img class=zoom src="{esc(src)}" alt="{esc(caption)}">'
                f"<figcaption>{esc(caption)}</figcaption></figure>"
            )
        self.parts.append(f'<div class="{esc(css_class)}">{"".join(items)}</div>')
        return self

    def render(self) -> str:
        return (
            "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            f"<title>{esc(self.title)}</title><style>{_STYLE}</style></head><body>\n"
            + "\n".join(self.parts)
            + f"\n<dialog id=zoom><img alt=enlarged></dialog><script>{_SCRIPT}</script></body></html>\n"
        )

    def write(self, path: str | Path) -> Path:
        write_text(path, self.render())
        return Path(path)
