"""Face detectors behind a registry: where the faces of a photo are, as boxes with a score.

    mtcnn    MTCNN (ensemble.faces.mtcnn): a CNN cascade with five landmarks that drive the alignment;
             weights fetched once by `make weights` (nothing downloads at run time)
    dlib     dlib's HOG frontal-face detector (compiled into the dlib-bin wheel: nothing to download);
             optional extra: pip install '.[detect]'
    parser   no extra dependency: the ensemble parses a shrunk, padded view of the whole photo and
             half-overlapping windows at finer scales, down to a small face's training size; each
             connected region of face-core classes is a face (box, mean face probability, part
             centroids as landmarks)
    none     no detection: the whole photo is parsed as one padded square (ensemble.faces.photo_parser)
    auto     the best one installed (mtcnn, then dlib, then parser), and per photo the next one in that
             order when it finds no face (DetectorChain)
    A+B      both on every photo, B adding the faces A missed (DetectorUnion), e.g. mtcnn+parser

Every Face records the detector that found it (found_by).

Boxes are (x0, y0, x1, y1) in continuous photo coordinates around the face core (skin, eyes, brows,
nose, mouth, lips: data_prep.framing), the box the training framing is measured on: the parser's are
its face-core regions, dlib's is grown up to the hairline, MTCNN's is its own regressed box (its crops
are aligned on its landmarks, not on the box).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from configs.errors import FaceParseError
from configs.optional import installed, require
from data_prep.framing import DEFAULT_FRAMING
from ensemble.core.choices import detector_problem
from ensemble.faces.align import apply, invert, warp_crop
from ensemble.postprocess.face_regions import Face, faces_from_labels

# dlib's box runs from the brows to the chin; the face core reaches up to the hairline.
DLIB_CORE_TOP = 0.15  # fraction of the box height added above it
# dlib's SVM margin; its own default is 0. On astronaut() the face scores 1.16 and a false positive
# (the suit's collar, nearer the centre once boxes are ordered) 0.12.
DLIB_THRESHOLD = 0.3
MIN_FACE_FRACTION = 0.002  # a parsed face region covers at least this share of the view
# The parser's windows: each level's side is LEVEL_STEP times the one above, down to the window in which
# a MIN_FACE px wide face (its core box) is as large as a training face, at most MAX_VIEWS views.
LEVEL_STEP = 0.7
MIN_FACE = 32.0
MAX_VIEWS = 128


class DetectorError(FaceParseError):
    """A detector that cannot run (e.g. its optional package is missing)."""


class DlibDetector:
    """dlib's HOG frontal-face detector (score = its SVM margin, kept above threshold)."""

    name = "dlib"

    def __init__(self, upsample: int = 1, threshold: float = DLIB_THRESHOLD):
        dlib = require(
            "dlib", "detect", "the dlib face detector", DetectorError, "dlib-bin", "or use --detector parser"
        )
        self.detector, self.upsample, self.threshold = dlib.get_frontal_face_detector(), upsample, threshold

    def __call__(self, image: np.ndarray) -> list[Face]:
        rects, scores, _ = self.detector.run(np.ascontiguousarray(image), self.upsample, self.threshold)
        faces = []
        for r, s in zip(rects, scores):
            x0, y0, x1, y1 = float(r.left()), float(r.top()), float(r.right() + 1), float(r.bottom() + 1)
            faces.append(Face((x0, y0 - DLIB_CORE_TOP * (y1 - y0), x1, y1), float(s), found_by="dlib"))
        return faces


class ParserDetector:
    """Faces found by parsing views of the photo: the whole photo shrunk into the model's square
    (padded, not squashed), then half-overlapping windows at finer scales (levels: window side over
    the photo's longer side), each view's face regions mapped back; a region cut by a window's inner
    edge is left to a neighbouring window, and duplicates across views are merged (merge_duplicates:
    the larger box kept). The model finds a face best at the size it was trained on (the framing's face box in its
    square), so without explicit levels they step down by LEVEL_STEP from the whole photo to the window
    in which a face `min_face` pixels wide has that size, at most `max_views` views in all. All views
    of a photo are parsed as one batch.

    parse: list of RGB (S, S, 3) uint8 -> list of (C, S, S) probabilities (the ensemble,
    ensemble.faces.photo_parser).
    """

    name = "parser"

    def __init__(
        self,
        parse: Callable[[list[np.ndarray]], list[np.ndarray]],
        size: int,
        min_score: float = 0.5,
        levels: tuple[float, ...] | None = None,
        framing: dict | None = None,
        min_face: float = MIN_FACE,
        max_views: int = MAX_VIEWS,
        found_by: str = "parser",
    ):
        self.parse, self.size, self.min_score, self.levels = parse, size, min_score, levels
        self.face_fraction = float((framing or DEFAULT_FRAMING)["box"][2])  # face box width / crop side
        self.min_face, self.max_views, self.found_by = min_face, max_views, found_by

    def windows(self, h: int, w: int) -> list[tuple[float, float, float]]:
        """(x0, y0, side) squares: per level, side = level x the photo's longer side, half overlapping."""
        out: list[tuple[float, float, float]] = []
        smallest = self.min_face / self.face_fraction  # the window a min_face face fills as in training
        levels = self.levels
        if levels is None:
            levels, level = [1.0], LEVEL_STEP
            while level * max(h, w) >= smallest:
                levels.append(level)
                level *= LEVEL_STEP
        for level in levels:
            side = level * max(h, w)
            if level < 1 and side < self.size / 2:
                continue  # a window that small holds no face the whole view missed

            def starts(extent: int) -> np.ndarray:
                if side >= extent:
                    return np.array([(extent - side) / 2])
                return np.linspace(0, extent - side, int(np.ceil((extent - side) / (side / 2))) + 1)

            more = [(x, y, side) for y in starts(h) for x in starts(w)]
            if self.levels is None and len(out) + len(more) > self.max_views:
                break  # a large photo: its smallest faces are left to the detector's scales above
            out += more
        return out

    def __call__(self, image: np.ndarray) -> list[Face]:
        h, w = image.shape[:2]
        views = []
        for x0, y0, side in self.windows(h, w):
            s = self.size / side
            views.append(np.array([[s, 0.0, -s * x0], [0.0, s, -s * y0]]))
        probs = self.parse([warp_crop(image, m, self.size) for m in views])
        faces = []
        for m, p in zip(views, probs):
            faces += self._faces_in(p, m, h, w)
        return merge_duplicates(faces)

    def _faces_in(self, probs: np.ndarray, m: np.ndarray, h: int, w: int) -> list[Face]:
        labels = probs.argmax(0).astype(np.uint8)
        # Only the photo's part of the view: the padding mirrors the photo.
        (px0, py0), (px1, py1) = apply(m, np.array([[0, 0], [w, h]]))
        x0, y0 = max(0, int(np.floor(px0))), max(0, int(np.floor(py0)))
        x1, y1 = min(self.size, int(np.ceil(px1))), min(self.size, int(np.ceil(py1)))
        inside = np.zeros_like(labels)
        inside[y0:y1, x0:x1] = labels[y0:y1, x0:x1]
        back = invert(m)
        min_pixels = max(4, int(MIN_FACE_FRACTION * self.size**2))
        faces = []
        for face in faces_from_labels(inside, probs, min_pixels):
            bx0, by0, bx1, by1 = face.box
            # Touching an edge of the view where the photo goes on: a face cut by the window.
            cut = (
                (bx0 <= 0 and px0 < 0)
                or (by0 <= 0 and py0 < 0)
                or (bx1 >= self.size and px1 > self.size)
                or (by1 >= self.size and py1 > self.size)
            )
            # A face region holds an eye and one more of eyes, nose, mouth; else it is a fragment (a
            # neck taken for skin and lips) that a finer window shows where the whole view did not.
            has_eye = "l_eye" in face.landmarks or "r_eye" in face.landmarks
            if face.score < self.min_score or cut or not has_eye or len(face.landmarks) < 2:
                continue
            corners = apply(back, np.array([face.box[:2], face.box[2:]]))
            marks = {k: tuple(apply(back, np.array([p]))[0].tolist()) for k, p in face.landmarks.items()}
            faces.append(Face(tuple(corners.ravel().tolist()), face.score, marks, found_by=self.found_by))
        return faces


def overlaps(a, b, overlap: float = 0.5) -> bool:
    """Whether boxes a and b share over `overlap` of the smaller one's area."""
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return inter > overlap * min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))


def merge_duplicates(faces: list[Face], overlap: float = 0.5) -> list[Face]:
    """Faces by box area, largest first; one that shares over `overlap` of the smaller box with a kept one
    is dropped. A window smaller than a face can show a fragment of it as a face region (part of
    its parts, a box inside the face's) with a higher mean probability than the whole face has in a
    coarser view; by score, the fragment would win and crop the face too tight."""
    kept: list[Face] = []
    for face in sorted(faces, key=lambda f: -(f.box[2] - f.box[0]) * (f.box[3] - f.box[1])):
        if not any(overlaps(face.box, k.box, overlap) for k in kept):
            kept.append(face)
    return kept


class DetectorChain:
    """Detectors tried in order on each photo; the first that finds a face answers."""

    def __init__(self, detectors: list[Callable]):
        self.detectors = detectors
        self.name = ">".join(getattr(d, "name", "custom") for d in detectors)

    def __call__(self, image: np.ndarray) -> list[Face]:
        for detector in self.detectors:
            faces = detector(image)
            if faces:
                return faces
        return []


class DetectorUnion:
    """Every detector run on each photo (`--detector mtcnn+parser`): the first one's faces, then each
    next one's faces that overlap none already kept (`overlaps`). MTCNN misses faces unlike
    the photos it was trained on (on generated wild scenes: dark and drawn faces) that the parsing
    model, trained on the very faces it parses, finds in its windows; MTCNN keeps its landmarks."""

    def __init__(self, detectors: list[Callable]):
        self.detectors = detectors
        self.name = "+".join(getattr(d, "name", "custom") for d in detectors)

    def __call__(self, image: np.ndarray) -> list[Face]:
        kept: list[Face] = []
        for detector in self.detectors:
            kept += [f for f in detector(image) if not any(overlaps(f.box, k.box) for k in kept)]
        return kept


def available(name: str) -> bool:
    """Whether a detector can run here (its optional package or its weights are installed)."""
    if name == "mtcnn":
        from ensemble.faces.mtcnn import weights_available

        return weights_available()
    return name != "dlib" or installed("dlib")


def _mtcnn(parse, size, framing, threshold):
    from ensemble.faces.mtcnn import THRESHOLDS, MtcnnDetector

    return MtcnnDetector(THRESHOLDS[2] if threshold is None else threshold)


def _dlib(parse, size, framing, threshold):
    return DlibDetector(threshold=DLIB_THRESHOLD if threshold is None else threshold)


# name -> factory(parse, size, framing, threshold) -> detector (callable RGB image -> faces); "none" has
# no detector. threshold None: the detector's own default.
DETECTORS: dict[str, Callable[..., Callable | None]] = {
    "mtcnn": _mtcnn,
    "dlib": _dlib,
    "parser": lambda parse, size, framing, threshold: ParserDetector(parse, size, framing=framing),
    "none": lambda parse, size, framing, threshold: None,
}
AUTO_ORDER = ("mtcnn", "dlib", "parser")


def build_detector(
    name: str,
    parse: Callable[[list[np.ndarray]], list[np.ndarray]],
    size: int,
    framing: dict | None = None,
    threshold: float | None = None,
) -> Callable | None:
    """The detector called name; "auto": a DetectorChain of the installed ones in AUTO_ORDER (the
    threshold applies to its first); "A+B": a DetectorUnion (the threshold applies to A); None for
    "none". parse: a list of crops -> their probabilities."""
    problem = detector_problem(name)
    if problem:
        raise DetectorError(problem)
    if "+" in name:
        names = name.split("+")
        parts = [
            build_detector(n, parse, size, framing, threshold if i == 0 else None)
            for i, n in enumerate(names)
        ]
        return DetectorUnion(parts)
    if name == "auto":
        names = [n for n in AUTO_ORDER if available(n)]
        chain = [
            DETECTORS[n](parse, size, framing, threshold if i == 0 else None) for i, n in enumerate(names)
        ]
        return chain[0] if len(chain) == 1 else DetectorChain(chain)
    return DETECTORS[name](parse, size, framing, threshold)
