"""predict's report.html: every photo's overlay (labels, face boxes, landmarks, the crop the model
saw), faces first, and the aligned crops when --save-crops kept them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from data_prep.html_page import HtmlPage


@dataclass
class PhotoEntry:
    """One parsed photo as the page lists it; paths relative to the page."""

    name: str
    overlay: str
    faces: int
    scores: list[float] = field(default_factory=list)
    message: str | None = None
    crops: list[str] = field(default_factory=list)

    def caption(self) -> str:
        found = f"{self.faces} face(s)" + (
            f", scores {', '.join(f'{s:.2f}' for s in self.scores)}" if self.scores else ""
        )
        return f"{self.name}: {found}" + (f" — {self.message}" if self.message else "")


def write_predict_html(out: Path, entries: list[PhotoEntry], header: list[str], bad: list[Path]) -> Path:
    """out/report.html."""
    page = HtmlPage("Photo parsing report")
    page.bullets(header)
    page.paragraph(
        "Overlays: class colours over the photo, face boxes in white, landmarks as yellow dots and the "
        "crop each face was parsed from in cyan. Click one to enlarge it.",
        note=True,
    )
    page.heading(f"Photos ({len(entries)})")
    page.gallery((e.overlay, e.caption(), {"image": e.name, "faces": str(e.faces)}) for e in entries)
    cropped = [e for e in entries if e.crops]
    if cropped:
        page.heading("Aligned crops (what the model saw)")
        page.gallery(
            ((c, f"{e.name}: crop {i}", {"image": e.name}) for e in cropped for i, c in enumerate(e.crops)),
            css_class="gallery crops",
        )
    if bad:
        page.heading("Unreadable photos (skipped)")
        page.bullets(str(p) for p in bad)
    return page.write(out / "report.html")
