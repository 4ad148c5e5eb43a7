"""Never blank: when no detector finds a face, the photo's own parse finds them.

The photo is padded to the model's square (never squashed), the scale at which the seed parsed whole
photos and at which a close-up that fills the frame looks like a training face, and then cut into
half-overlapping windows at finer scales, down to the window in which a small face has a training
face's size (ensemble.faces.detect.ParserDetector). Each connected region of face-core classes in those
parses (ensemble.postprocess.face_regions) that looks like a face (an eye and one more of eyes, nose,
mouth; mean face probability at least 0.5) is a face, found_by "whole_photo", and is then cropped and
parsed like a detected one. Where no view holds such a region the photo has no face: its map is
background (on generated scenes without a face, keeping the whole-photo parse labelled 25,000-41,000
textured pixels per 384 px scene as face parts). The whole view alone missed small faces: on 60
generated wild scenes, 4 maps came back blank where MTCNN found no face; with the finer windows, 0.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ensemble.faces.detect import ParserDetector
from ensemble.postprocess.face_regions import Face


def whole_photo_faces(
    image: np.ndarray,
    parse: Callable[[list[np.ndarray]], list[np.ndarray]],
    size: int,
    framing: dict | None = None,
) -> list[Face]:
    """The faces in the parsed views of the photo (found_by "whole_photo")."""
    return ParserDetector(parse, size, framing=framing, found_by="whole_photo")(image)


def parsed_the_windows(detector) -> bool:
    """Whether a detector that found no face already parsed the fallback's views: it is, or chains or
    joins, a ParserDetector with the default windows (the fallback would repeat its work to no end:
    about 110 views of a 384 px photo)."""
    if isinstance(detector, ParserDetector):
        return detector.levels is None
    return any(parsed_the_windows(d) for d in getattr(detector, "detectors", ()))
