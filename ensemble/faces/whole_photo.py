"""Never blank: when no detector finds a face, the whole photo is parsed and its face regions become faces.

The photo is padded to the model's square (never squashed), the scale at which the seed parsed whole
photos and at which a close-up that fills the frame looks like a training face. Each connected region of
face-core classes in that parse (ensemble.postprocess.face_regions) that looks like a face (an eye and
one more of eyes, nose, mouth; mean face probability at least `min_score`) is a face, found_by
"whole_photo", and is then cropped and parsed like a detected one. Where the parse holds no such region
the photo has no face: its map is background (on generated scenes without a face, keeping the
whole-photo parse labelled 25,000-41,000 textured pixels per 384 px scene as face parts).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ensemble.faces.align import apply, invert, view_transform, warp_crop
from ensemble.postprocess.face_regions import Face, faces_from_labels

MIN_FACE_FRACTION = 0.005  # a face region covers at least this share of the padded view
MIN_SCORE = 0.5  # mean face-core probability of a region taken for a face


def whole_photo_faces(
    image: np.ndarray, parse: Callable[[np.ndarray], np.ndarray], size: int, min_score: float = MIN_SCORE
) -> tuple[list[Face], np.ndarray, np.ndarray]:
    """(faces found in the whole-photo parse, its (C, S, S) probabilities, its photo -> view M)."""
    h, w = image.shape[:2]
    m = view_transform(h, w, size)
    probs = parse(warp_crop(image, m, size))
    labels = probs.argmax(0).astype(np.uint8)
    back = invert(m)
    faces = []
    for face in faces_from_labels(labels, probs, max(4, int(MIN_FACE_FRACTION * size * size))):
        has_eye = "l_eye" in face.landmarks or "r_eye" in face.landmarks
        if face.score < min_score or not has_eye or len(face.landmarks) < 2:
            continue  # skin-coloured texture, a neck or a hand: not a face
        corners = apply(back, np.array([face.box[:2], face.box[2:]]))
        marks = {k: tuple(apply(back, np.array([p]))[0].tolist()) for k, p in face.landmarks.items()}
        faces.append(Face(tuple(corners.ravel().tolist()), face.score, marks, found_by="whole_photo"))
    return sorted(faces, key=lambda f: -f.score), probs, m
