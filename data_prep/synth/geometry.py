"""The face's shape: one dataclass per part's geometry, in head units (or body units for the body).

The head frame has x to the image right, y down, unit = half the head width, origin between the
eyes' level and the face centre. side = +1 is the subject's left (image right), -1 the right.
Parts that a face may lack are None on Face.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_prep.synth.draw import Canvas


@dataclass(frozen=True)
class Pose:
    unit: float  # head half-width in pixels
    roll: float  # in-plane head rotation, degrees
    yaw: float  # head turn in head units: features shift toward it, the far half is foreshortened
    head: Canvas  # head frame -> pixels
    body: Canvas  # body frame -> pixels: a milder roll of its own, pivoting under the chin

    def turned_x(self, x, depth: float):
        """Where the yaw moves a feature at head-frame x that sits depth in front of the face plane."""
        x = np.asarray(x, np.float64)
        return x * (1 - 0.5 * self.yaw * np.sign(x)) + self.yaw * depth


@dataclass(frozen=True)
class Head:
    skull_height: float  # crown above the origin
    chin_height: float  # chin below the origin
    jaw_taper: float  # how much the lower half narrows toward the chin
    eye_y: float
    outline: np.ndarray  # (n, 2) closed polygon


@dataclass(frozen=True)
class Eye:
    side: int
    cx: float
    cy: float
    half_width: float  # after the yaw's foreshortening
    lid_height: float  # upper lid above the eye line
    closed: bool
    upper_lid: np.ndarray  # (n, 2) from the image-left corner to the image-right one


@dataclass(frozen=True)
class Eyes:
    left: Eye
    right: Eye
    half_width: float  # facing the camera, before the yaw
    gaze: tuple[float, float]  # iris offset, in eye half-widths (x) and lid heights (y)
    iris_colour: np.ndarray

    @property
    def both(self) -> tuple[tuple[str, Eye], tuple[str, Eye]]:
        """(part name, eye) for the subject's left eye, then the right."""
        return (("l_eye", self.left), ("r_eye", self.right))


@dataclass(frozen=True)
class Glasses:
    frame: np.ndarray  # uint8 0/1 pixel mask of the frame (the rest of eye_g is lens)
    sunglasses: bool
    frame_colour: np.ndarray
    lens_tint: np.ndarray


@dataclass(frozen=True)
class Nose:
    bottom: float  # y of the nose tip's underside
    centre_x: np.ndarray  # bridge centre line, top to bottom (it leans with the yaw)
    y: np.ndarray  # heights of the centre line's points
    half_width: np.ndarray  # bridge half-width at each point
    ala_half_width: float  # half-width across the nostril wings


@dataclass(frozen=True)
class Mouth:
    x: np.ndarray  # sample positions from corner to corner
    line: np.ndarray  # where the lips meet when closed
    inner_top: np.ndarray  # upper edge of the opening (= line when closed)
    bottom: np.ndarray  # lower lip's lower edge
    open_height: float  # 0 when closed
    centre_y: float
    half_width: float


@dataclass(frozen=True)
class Ear:
    side: int
    cx: float
    cy: float
    rx: float
    ry: float
    angle: float  # radians


@dataclass(frozen=True)
class Earrings:
    kind: str  # stud, hoop or drop
    colour: np.ndarray


@dataclass(frozen=True)
class Body:
    neck_half_width: float
    shoulder_y: float  # shoulder line at the neck (body frame)
    clothed: bool  # bare shoulders are labelled neck, as in CelebAMask-HQ

    def shoulders(self) -> np.ndarray:
        """Polygon of shoulders and chest down to the image bottom."""
        nw, y0 = self.neck_half_width, self.shoulder_y
        return np.array(
            [
                [-5, y0 + 2.0],
                [-2.1, y0 + 0.4],
                [-1.3, y0 + 0.1],
                [-nw * 1.2, y0],
                [nw * 1.2, y0],
                [1.3, y0 + 0.1],
                [2.1, y0 + 0.4],
                [5, y0 + 2.0],
                [5, 9],
                [-5, 9],
            ]
        )


@dataclass(frozen=True)
class Necklace:
    arc: np.ndarray  # (n, 2) body frame
    width: float
    pearls: bool
    colour: np.ndarray


@dataclass(frozen=True)
class Cloth:
    outline: np.ndarray  # body frame polygon
    neckline: str  # round, v, high or boat


@dataclass(frozen=True)
class Hair:
    style: str  # short, long or bun (a bald face has no Hair)
    hairline_y: float
    half_width: float  # of the cap over the skull
    height: float  # cap top above the origin
    shift: float  # more volume on one side
    length: float  # y where the hair ends (negative: above the eye line)
    parting: float | None  # x of the parting line


@dataclass(frozen=True)
class Hat:
    kind: str  # brim, cap or beanie
    brim_y: float


@dataclass(frozen=True)
class Face:
    size: int
    pose: Pose
    head: Head
    light_angle: float  # light direction in the image, radians
    eyes: Eyes
    brow_y: float
    nose: Nose
    mouth: Mouth
    ears: tuple[Ear, Ear]  # subject's left, then right
    body: Body
    glasses: Glasses | None = None
    earrings: Earrings | None = None
    necklace: Necklace | None = None
    cloth: Cloth | None = None
    hair: Hair | None = None
    hat: Hat | None = None
