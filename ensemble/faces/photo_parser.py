"""Faces in the wild: detect -> align -> parse (tight crop + context view) -> paste back -> post-process.

Each face is cropped so it sits where the training faces sit (data_prep.framing): from its landmarks
when the detector gives them (MTCNN), else from its box, then (second pass) from the part centroids of
the first parse (eyes, nose, mouth), a similarity that also undoes roll. A context view (the same
centre, `context` times the side) labels hair, neck and clothes past the crop; ensemble.faces.paste
warps both back and gives each pixel to the face that owns it. When no detector finds a face the whole
photo and finer windows of it are parsed (ensemble.faces.whole_photo): a map is never blank because a
detector missed. The detection-based post-processing steps (ensemble.postprocess.face_steps,
clothes_below) see the faces.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from data_prep.layout import fit_pixels
from ensemble.core.inference import Ensemble
from ensemble.core.tta import View
from ensemble.faces.align import apply, box_transform, invert, landmark_transform, view_transform, warp_crop
from ensemble.faces.detect import build_detector
from ensemble.faces.paste import FaceParse, composite, zoom_out
from ensemble.faces.whole_photo import parsed_the_windows, whole_photo_faces
from ensemble.postprocess.face_regions import Face, centre_first, faces_from_labels
from ensemble.postprocess.registry import Step, label_stage, probability_stage

BATCH = 16  # crops parsed per forward pass (the parser detector's windows come as one list)
LANDMARK_DETECTORS = ("mtcnn",)  # detectors whose landmarks are trained points, aligned on directly


@dataclass
class WildResult:
    """One photo's parse: labels at the photo's size, its faces (centre first), and a message."""

    labels: np.ndarray  # (H, W) uint8
    faces: list[Face]
    message: str | None = None  # e.g. "no face found"
    crops: list[np.ndarray] = field(default_factory=list)  # the aligned crops parsed (last pass)
    # Where each crop came from: its 4 corner pixels (top-left, top-right, bottom-right,
    # bottom-left) in photo pixels, a rotated square when the second pass undid a roll.
    crop_corners: list[np.ndarray] = field(default_factory=list)


@dataclass
class WildParser:
    """The ensemble and its post-processing steps applied to faces found anywhere in a photo."""

    ensemble: Ensemble
    steps: Sequence[Step]
    framing: Mapping
    detector: str | Callable = "auto"  # ensemble.faces.detect.DETECTORS name, "auto", or RGB -> list[Face]
    second_pass: bool = True  # re-align on the first parse's part centroids
    max_faces: int = 8  # the ones nearest the centre
    max_pixels: int | None = 4096 * 4096
    context: float = 2.0  # side of the context view / the tight crop's (<= 1: no context view)
    detector_threshold: float | None = None  # the detector's score threshold (None: its default)

    def __post_init__(self) -> None:
        self.size = self.ensemble.resolution
        ens = self.ensemble
        # Finding faces in many windows needs the members, not the test-time views: one plain view.
        self._scout = (
            ens
            if len(ens.views) == 1
            else Ensemble(ens.members, ens.weights, [View()], device=ens.device, postprocess=ens.postprocess)
        )
        detector = self.detector
        self._detect = (
            detector
            if callable(detector)
            else build_detector(detector, self.scout_crops, self.size, self.framing, self.detector_threshold)
        )

    def parse_crop(self, crop: np.ndarray) -> np.ndarray:
        """(S, S, 3) RGB crop -> (C, S, S) float32 ensemble probabilities."""
        return self.parse_crops([crop])[0]

    def parse_crops(self, crops: Sequence[np.ndarray]) -> list[np.ndarray]:
        return self.ensemble.predict(crops, probs=True, batch_size=BATCH) if len(crops) else []

    def scout_crops(self, crops: Sequence[np.ndarray]) -> list[np.ndarray]:
        """parse_crops without test-time views: the parser detector's and the fallback's windows."""
        return self._scout.predict(crops, probs=True, batch_size=BATCH) if len(crops) else []

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces of an RGB photo, the one nearest the centre first (none for detector "none")."""
        if self._detect is None:
            return []
        h, w = image.shape[:2]
        faces = self._detect(image)
        for face in faces:
            face.found_by = face.found_by or getattr(self._detect, "name", "custom")
        return centre_first(faces, h, w)[: self.max_faces]

    def align(self, face: Face) -> np.ndarray:
        """Photo -> crop M: on a landmark detector's landmarks (MTCNN's), else on the box (the
        parser's part centroids come from a coarse view: its box aligns better, as measured)."""
        m = None
        if face.found_by in LANDMARK_DETECTORS:
            m = landmark_transform(face.landmarks, self.framing, self.size)
        return box_transform(face.box, self.framing, self.size) if m is None else m

    def __call__(self, image: np.ndarray, image_path: Path | None = None) -> WildResult:
        """Parse every face of an RGB uint8 photo; labels come back at the photo's own size."""
        full_h, full_w = image.shape[:2]
        image = fit_pixels(image, self.max_pixels)
        h, w = image.shape[:2]
        faces, message, parses = self.detect(image), None, []
        crops: list[np.ndarray] = []  # what the model saw, and its photo -> crop transform
        transforms: list[np.ndarray] = []
        if not faces:  # never blank: the whole photo, padded, and the face regions it holds
            m = view_transform(h, w, self.size)
            if self._detect is None:
                crops, transforms = [warp_crop(image, m, self.size)], [m]
                parses = [FaceParse(self.parse_crop(crops[0]), m)]
            else:
                if not parsed_the_windows(self._detect):
                    faces = whole_photo_faces(image, self.scout_crops, self.size, self.framing)
                faces = centre_first(faces, h, w)[: self.max_faces]
                message = (
                    f"no face detected: parsed the whole photo, {len(faces)} face region(s) in its parse"
                    if faces
                    else "no face found (not by the detector, not in the whole photo's parse): all background"
                )
        if faces:
            transforms = [self.align(f) for f in faces]
            crops = [warp_crop(image, m, self.size) for m in transforms]
            probs = self.parse_crops(crops)
            if self.second_pass:
                transforms, crops, probs = self._realign(image, faces, transforms, crops, probs)
            parses = [FaceParse(p, m) for p, m in zip(probs, transforms)]
            if self.context > 1:
                wide = [zoom_out(m, self.size, self.context) for m in transforms]
                for parse, mw, pw in zip(
                    parses, wide, self.parse_crops([warp_crop(image, m, self.size) for m in wide])
                ):
                    parse.context_probs, parse.context_m = pw, mw
        full = composite(parses, h, w)
        labels = self._postprocess(full, image, faces, image_path)
        last = self.size - 1  # the corner pixels' centres: an outline drawn there stays on the crop
        square = np.array([[0, 0], [last, 0], [last, last], [0, last]], np.float64)
        corners = [apply(invert(m), square) for m in transforms]
        if (h, w) != (full_h, full_w):
            labels = cv2.resize(labels, (full_w, full_h), interpolation=cv2.INTER_NEAREST)
            scale = full_w / w
            faces = [_scaled(f, scale) for f in faces]
            corners = [c * scale for c in corners]
        return WildResult(labels, faces, message, crops, corners)

    def _realign(self, image, faces, transforms, crops, probs):
        """Second pass: each face re-cropped on its parsed part centroids (kept where there are too few).

        The first parse gives each face its landmarks: the part centroids of the face-core region
        nearest the crop's face position (a neighbour may reach into the crop), inside the face.
        """
        redo = []
        cx, cy = self.framing["box"][0] * self.size, self.framing["box"][1] * self.size
        for i, (m, p) in enumerate(zip(transforms, probs)):
            found = faces_from_labels(p.argmax(0).astype(np.uint8), p, min_pixels=16)
            if not found:
                continue
            parsed = min(found, key=lambda f: (f.centre[0] - cx) ** 2 + (f.centre[1] - cy) ** 2)
            back = invert(m)
            x0, y0, x1, y1 = faces[i].scaled_box(1.5)
            marks = {k: tuple(apply(back, np.array([xy]))[0].tolist()) for k, xy in parsed.landmarks.items()}
            # A parse that puts the parts outside the detected face is not trusted to align it.
            marks = {k: (x, y) for k, (x, y) in marks.items() if x0 <= x <= x1 and y0 <= y <= y1}
            if not marks:
                continue
            aligned = landmark_transform(marks, self.framing, self.size)
            if aligned is not None:
                faces[i].landmarks = marks
                transforms[i] = aligned
                crops[i] = warp_crop(image, aligned, self.size)
                redo.append(i)
        for i, p in zip(redo, self.parse_crops([crops[i] for i in redo]) if redo else []):
            probs[i] = p
        return transforms, crops, probs

    def _postprocess(self, full: np.ndarray, image: np.ndarray, faces: list[Face], path: Path | None):
        result = probability_stage(torch.from_numpy(full), list(self.steps), path)
        ctx = result.context
        ctx.faces = faces or None
        ctx._image = image
        return label_stage(ctx, list(self.steps))


def _scaled(face: Face, s: float) -> Face:
    return Face(
        tuple(v * s for v in face.box),
        face.score,
        {k: (x * s, y * s) for k, (x, y) in face.landmarks.items()},
        face.found_by,
    )
