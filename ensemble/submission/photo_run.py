"""The submission from photos: `run_ensemble.py --images DIR --detector auto|mtcnn|dlib|parser|none`.

Instead of squashing each image into the model's square, every image goes through the photo parser
(ensemble.faces: detect, align, parse, context view, paste back, never blank) and its label map makes
the image's CSV rows, mask and panel, in the same order and format as the squashed run. The recipe's
`wild` section (ensemble fit --wild) gives the threshold, context view, second pass and face steps
unless flags set them. The report lists the images where no detector found a face (parsed whole) and
which path found each face.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
from tqdm import tqdm

from data_prep.atomic import write_image
from data_prep.framing import read_framing
from data_prep.layout import fit_pixels, read_rgb
from ensemble.api import training_framing, wild_parser
from ensemble.faces.photo_parser import WildParser
from ensemble.submission.csv_codes import SubmissionWriter, csv_rows, write_ids
from ensemble.submission.pictures import comparison_panel
from ensemble.submission.run_report import StageScores
from tuning.metrics import image_confusion

PHOTO_STAGE = "photo parser"


@dataclass
class PhotoOptions:
    """The photo path's settings given as flags (None: the recipe's wild section, else its default)."""

    detector: str
    detector_threshold: float | None = None
    context: float | None = None
    second_pass: bool | None = None
    framing: Path | None = None
    max_faces: int = 8


@dataclass
class PhotoRecord:
    """What the report says about the photos: faces per image and the path that found each."""

    found_by: dict[str, int] = field(default_factory=dict)
    no_face: list[str] = field(default_factory=list)  # images no detector found a face in
    faces: dict[str, list[str]] = field(default_factory=dict)  # stem -> found_by of each face
    settings: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "found_by": self.found_by,
            "no_face": self.no_face,
            "faces": self.faces,
        }


def photo_parser(plan, photo: PhotoOptions, explicit: dict[str, Any]) -> WildParser:
    """The WildParser of a run's plan: its ensemble and steps, the recipe's wild choice under the flags."""
    ens = plan.ensemble
    framing = read_framing(photo.framing) if photo.framing else training_framing(ens.members)[0]
    return wild_parser(
        ens,
        plan.steps,
        framing,
        explicit,
        detector=photo.detector,
        detector_threshold=photo.detector_threshold,
        context=photo.context,
        second_pass=photo.second_pass,
        max_faces=photo.max_faces,
    )


def photo_predict_and_write(opts, plan, out: Path, record: PhotoRecord) -> StageScores:
    """Parse every good image as a photo; masks, panels, CSV rows in order, scores against the GT."""
    ens = opts.ensemble
    parser = photo_parser(plan, opts.photo, opts.explicit)
    record.settings = {
        "detector": opts.photo.detector,
        "detector_threshold": parser.detector_threshold,
        "context": parser.context,
        "second_pass": parser.second_pass,
        "steps": [s.label for s in parser.steps],
    }
    items, gt_paths, scores = plan.test_set.items, plan.test_set.gt_paths, StageScores()
    viz = 0
    with SubmissionWriter(out / "submission.csv", ens.csv) as sub:
        for position, item in enumerate(tqdm(items, desc="photos", unit="img", disable=not opts.progress)):
            if item.path in plan.bad:
                sub.add(position, None)
                continue
            image = read_rgb(item.path)
            h, w = image.shape[:2]
            image = fit_pixels(image, ens.max_pixels)  # parsed, scored and drawn at this size
            result = parser(image, item.path)
            labels = result.labels
            full = (
                labels
                if labels.shape == (h, w)
                else cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST)
            )
            plan.labels.write(out, item.stem, full)
            record.faces[item.stem] = [f.found_by for f in result.faces]
            for f in result.faces:
                record.found_by[f.found_by] = record.found_by.get(f.found_by, 0) + 1
            if not result.faces or all(f.found_by == "whole_photo" for f in result.faces):
                record.no_face.append(item.path.name)
            gt = plan.labels.read_gt(gt_paths[position]) if gt_paths is not None else None
            if gt is not None:
                if gt.shape != labels.shape:
                    gt = cv2.resize(gt, labels.shape[::-1], interpolation=cv2.INTER_NEAREST)
                scores.add(PHOTO_STAGE, image_confusion(labels, gt))
            if viz < ens.viz:
                write_image(
                    out / "viz" / f"{item.stem}.png",
                    comparison_panel(image, labels, gt),
                )
                viz += 1
            sub.add_rows(position, csv_rows(position, labels, ens.csv))
    write_ids(out / "submission_ids.csv", plan.test_set.names)
    return scores
