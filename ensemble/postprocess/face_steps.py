"""The seed's detection-based clean-up as post-processing label steps (off by default; `ensemble fit` tries each).

Each reads the faces of the photo (ctx.faces: box + landmarks from ensemble.faces.photo_parser's detection and
first parse). Without a detection (`run`, `fit` on prepared crops) the faces are the connected
face-core regions of the label map itself, so `ensemble fit` can still measure each step.
"""

from __future__ import annotations

import cv2
import numpy as np

from configs import CLASS_ID
from configs.schema import PostprocessConfig
from ensemble.postprocess.face_regions import Face, faces_from_labels
from ensemble.postprocess.steps_base import SCHEMA, Context, LabelStep, Step

SKIN, HAIR, GLASSES = CLASS_ID["skin"], CLASS_ID["hair"], CLASS_ID["eye_g"]
# The parts the seed clears outside the shrunk box (its LaPa classes; ears, neck, cloth, hat and
# jewellery reach beyond any face box and are left alone).
INNER_PARTS = tuple(
    CLASS_ID[n] for n in ("nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "mouth", "u_lip", "l_lip")
)
EYES = {"l_eye": CLASS_ID["l_eye"], "r_eye": CLASS_ID["r_eye"]}


def faces_of(ctx: Context) -> list[Face]:
    """The detected faces, else (run/fit, no detector) faces found in the labels once per image."""
    if ctx.faces is None:
        ctx.faces = faces_from_labels(ctx.labels, min_pixels=16)
    return ctx.faces


def _box_mask(shape: tuple[int, int], faces: list[Face], factor: float) -> np.ndarray:
    """Pixels inside any face box scaled by factor about its centre."""
    mask = np.zeros(shape, bool)
    for face in faces:
        x0, y0, x1, y1 = face.scaled_box(factor)
        mask[
            max(0, int(np.floor(y0))) : max(0, int(np.ceil(y1))),
            max(0, int(np.floor(x0))) : max(0, int(np.ceil(x1))),
        ] = True
    return mask


class ClipToFace(LabelStep):
    """Clear (to background) parts outside the face box shrunk by `parts`, hair outside it grown by
    `hair`, skin outside it grown by `skin` (the seed's factors: 0.9, 1.3, 1.1)."""

    key, order = "face_clip", 60
    switch = "face_clip"
    fields = {"face_clip": SCHEMA, "face_clip_scales": SCHEMA}

    def __init__(self, parts: float = 0.9, hair: float = 1.3, skin: float = 1.1):
        self.parts, self.hair, self.skin = float(parts), float(hair), float(skin)

    @classmethod
    def from_config(cls, cfg: PostprocessConfig) -> Step | None:
        v = cls.values(cfg)
        return cls(*v.face_clip_scales) if v.face_clip else None

    @property
    def label(self) -> str:
        return f"face_clip(parts={self.parts:g}, hair={self.hair:g}, skin={self.skin:g})"

    def __call__(self, ctx: Context) -> None:
        faces, labels = faces_of(ctx), ctx.labels
        if not faces:
            return
        for classes, factor in ((INNER_PARTS, self.parts), ((HAIR,), self.hair), ((SKIN,), self.skin)):
            outside = ~_box_mask(labels.shape, faces, factor)
            labels[outside & np.isin(labels, classes)] = 0


class GlassesToSkin(LabelStep):
    """Glasses become skin (the seed's merge: LaPa has no glasses class)."""

    key, order = "glasses_to_skin", 70
    switch = "glasses_to_skin"
    fields = {"glasses_to_skin": SCHEMA}

    def __call__(self, ctx: Context) -> None:
        ctx.labels[ctx.labels == GLASSES] = SKIN


def eye_landmarks(face: Face) -> dict[str, np.ndarray]:
    """Both eye positions: the face's, with a missing one mirrored across the nose-mouth line."""
    marks = {k: np.asarray(v, np.float64) for k, v in face.landmarks.items()}
    have = [e for e in EYES if e in marks]
    if len(have) == 1 and "nose" in marks and "mouth" in marks:
        n, d = marks["nose"], marks["mouth"] - marks["nose"]
        if np.linalg.norm(d) > 1e-6:
            d = d / np.linalg.norm(d)
            v = marks[have[0]] - n
            other = "r_eye" if have[0] == "l_eye" else "l_eye"
            marks[other] = n + 2 * (v @ d) * d - v
    return {e: marks[e] for e in EYES if e in marks}


class EyeRepair(LabelStep):
    """Eyes at the landmarks: of an eye's blobs keep the one nearest its landmark (others become
    skin); an eye the model missed is drawn there as an ellipse over skin, sized like the other eye
    (or from the face box)."""

    key, order = "eye_repair", 80
    switch = "eye_repair"
    fields = {"eye_repair": SCHEMA}

    def __call__(self, ctx: Context) -> None:
        labels = ctx.labels
        for face in faces_of(ctx):
            points = eye_landmarks(face)
            sizes = {}
            for name, c in EYES.items():
                if name in points:
                    sizes[name] = self._keep_nearest(labels, face, c, points[name])
            for name, c in EYES.items():
                if name in points and sizes.get(name) is None:
                    other = sizes.get("r_eye" if name == "l_eye" else "l_eye")
                    bw = face.box[2] - face.box[0]
                    axes = (
                        other if other is not None else (max(1, round(0.09 * bw)), max(1, round(0.04 * bw)))
                    )
                    drawn = np.zeros(labels.shape, np.uint8)
                    x, y = (int(round(v - 0.5)) for v in points[name])
                    cv2.ellipse(drawn, (x, y), axes, 0, 0, 360, 1, -1)
                    labels[(drawn > 0) & np.isin(labels, (SKIN, GLASSES))] = c

    @staticmethod
    def _keep_nearest(labels: np.ndarray, face: Face, c: int, point: np.ndarray) -> tuple[int, int] | None:
        """Keep the blob of class c nearest point within the face (others -> skin); its half-axes."""
        x0, y0, x1, y1 = (int(v) for v in face.scaled_box(1.3))
        x0, y0 = max(0, x0), max(0, y0)
        window = labels[y0:y1, x0:x1]  # a view: edits land in labels
        n, cc, stats, centroids = cv2.connectedComponentsWithStats(
            (window == c).view(np.uint8), connectivity=8
        )
        if n <= 1:
            return None
        d = np.linalg.norm(centroids[1:] + 0.5 + [x0, y0] - point, axis=1)
        reach = 0.2 * (face.box[2] - face.box[0])
        best = int(np.argmin(d))
        if d[best] > reach:
            window[cc > 0] = SKIN  # none where the eye is: a stray, and the eye gets drawn
            return None
        window[(cc > 0) & (cc != best + 1)] = SKIN
        w, h = stats[best + 1, cv2.CC_STAT_WIDTH], stats[best + 1, cv2.CC_STAT_HEIGHT]
        return max(1, int(w) // 2), max(1, int(h) // 2)
