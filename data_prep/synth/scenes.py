"""Wild scenes: 0..max_faces generated faces at random scale and position on a larger textured canvas.

Each face is rendered as in the aligned mode (render.render_face) and its person (every labelled
pixel: head, hair, neck, clothes) is pasted at a random place, partly outside the canvas allowed.
Later faces occlude earlier ones in the image and the label map alike, so the label map is exactly
what is visible. A face's box is the bounding box of its visible inner-face pixels (data_prep.framing.FACE_CORE;
not hair, ears, neck or clothes), [x0, y0, x1, y1) in pixels with x1, y1 exclusive; a face with no
visible inner-face pixel has no box.

Written as a prepared dataset (data_prep.layout) directly, not the raw CelebAMask-HQ layout: a scene
with no face has no part to write there, and the celebamask importer would skip it.

    PREP/images/{i}.jpg  PREP/masks/{i}.png  PREP/splits/{train,val,test}.txt  PREP/dataset.json
    PREP/boxes.json      {"<i>": [[x0, y0, x1, y1], ...], ...}   (one list per image, maybe empty)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from configs import CLASS_ID, NUM_CLASSES
from configs.errors import ConfigError
from data_prep.atomic import write_image, write_json
from data_prep.framing import FACE_CORE
from data_prep.importer import run_tasks
from data_prep.layout import PreparedDataset, write_meta, write_splits
from data_prep.splits import make_splits
from data_prep.synth.background import paint_background
from data_prep.synth.camera import camera_finish
from data_prep.synth.labels import stack_parts
from data_prep.synth.render import render_face

SOURCE = "synth-wild"
BOXES_FILE = "boxes.json"
_IN_BOX = np.zeros(256, bool)
_IN_BOX[list(FACE_CORE)] = True  # the face box of the framing: skin and inner parts


@dataclass
class Scene:
    """One wild scene: RGB uint8 (S, S, 3), label map uint8 (S, S), visible face boxes."""

    image: np.ndarray
    label: np.ndarray
    boxes: list[list[int]] = field(default_factory=list)


def face_boxes(label: np.ndarray, instance: np.ndarray, faces: int) -> list[list[int]]:
    """[x0, y0, x1, y1) of each face's visible inner-face pixels, in paste order (none: no box)."""
    boxes = []
    inner = _IN_BOX[label]
    for k in range(1, faces + 1):
        ys, xs = np.nonzero(inner & (instance == k))
        if ys.size:
            boxes.append([int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1])
    return boxes


def _clothes_to_the_bottom(img: np.ndarray, label: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Continue the clothes of the crop's last row down by `rows`, so a person is not a floating bust."""
    if rows <= 0:
        return img, label
    cloth = label[-1:] == CLASS_ID["cloth"]
    more_label = np.repeat(np.where(cloth, label[-1:], 0).astype(np.uint8), rows, axis=0)
    # darker further down, as clothes in shadow: no flat stripes of one colour
    shade = np.linspace(1.0, 0.7, rows, dtype=np.float32)[:, None, None]
    more_img = np.clip(np.repeat(img[-1:].astype(np.float32), rows, axis=0) * shade, 0, 255).astype(np.uint8)
    return np.vstack([img, more_img]), np.vstack([label, more_label])


def render_scene(
    rng: np.random.Generator,
    size: int,
    *,
    num_faces: int | None = None,
    max_faces: int = 3,
    face_scale: tuple[float, float] = (0.25, 0.7),
) -> Scene:
    """A scene of num_faces faces (None: 0..max_faces at random); each face crop's side is
    face_scale x size, placed so up to 30% of it may fall outside the canvas."""
    n = int(rng.integers(0, max_faces + 1)) if num_faces is None else num_faces
    scene_colours = [rng.uniform(25, 230, 3).astype(np.float32) for _ in range(5)]
    img = paint_background(rng, size, scene_colours)
    label = np.zeros((size, size), np.uint8)
    instance = np.zeros((size, size), np.uint8)  # which face a pixel shows (0: none)
    for k in range(1, n + 1):
        side = max(32, 2 * int(rng.uniform(*face_scale) * size / 2))
        face_img, masks = render_face(np.random.default_rng(rng.integers(2**63)), side)
        face_label = stack_parts(masks, side)
        x0, y0 = (int(rng.uniform(-0.3 * side, size - 0.7 * side)) for _ in range(2))
        face_img, face_label = _clothes_to_the_bottom(face_img, face_label, size - (y0 + side))
        # the part of the face crop that lands on the canvas
        h = face_label.shape[0]
        cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(size, x0 + side), min(size, y0 + h)
        if cx1 <= cx0 or cy1 <= cy0:
            continue
        crop = np.s_[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
        person = face_label[crop] > 0
        where = np.s_[cy0:cy1, cx0:cx1]
        img[where][person] = face_img[crop][person]
        label[where][person] = face_label[crop][person]
        instance[where][person] = k
    image = camera_finish(img, rng, size)
    return Scene(image, label, face_boxes(label, instance, n))


def write_scene(index: int, out: Path, size: int, seed: int, max_faces: int, face_scale) -> tuple:
    """Render scene `index` and write its image and label map; returns (id, boxes, pixel counts)."""
    rng = np.random.default_rng([seed, index, 1])  # [seed, index] is the aligned mode's face
    scene = render_scene(rng, size, max_faces=max_faces, face_scale=face_scale)
    prep = PreparedDataset(out)
    write_image(prep.image_path(str(index)), scene.image, jpeg_quality=int(rng.integers(60, 96)))
    write_image(prep.mask_path(str(index)), scene.label)
    return str(index), scene.boxes, np.bincount(scene.label.ravel(), minlength=NUM_CLASSES)


def generate_wild(
    out: str | Path,
    num: int,
    size: int = 256,
    seed: int = 0,
    workers: int = 1,
    *,
    max_faces: int = 3,
    face_scale: tuple[float, float] = (0.25, 0.7),
    progress: bool = True,
) -> Path:
    """Write num wild scenes to out as a prepared dataset (80/10/10 seeded split) + boxes.json."""
    if num < 1 or size < 64 or workers < 1 or max_faces < 0:
        raise ConfigError(
            f"wild scenes need --num >= 1, --size >= 64, --workers >= 1 and --max-faces >= 0; "
            f"got {num}, {size}, {workers}, {max_faces}"
        )
    if not 0 < face_scale[0] <= face_scale[1]:
        raise ConfigError(f"--face-scale must be 0 < MIN <= MAX, got {list(face_scale)}")
    out = Path(out)
    prep = PreparedDataset(out)
    for folder in (prep.images, prep.masks):
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.iterdir():  # scenes beyond num from an earlier, larger run
            if stale.stem.isdigit() and int(stale.stem) >= num:
                stale.unlink()
    job = functools.partial(
        write_scene, out=out, size=size, seed=seed, max_faces=max_faces, face_scale=tuple(face_scale)
    )
    boxes: dict[str, list[list[int]]] = {}
    pixels = np.zeros(NUM_CLASSES, np.int64)
    for sample_id, scene_boxes, counts in run_tasks(
        job, range(num), workers, progress, f"wild scenes {size}px"
    ):
        boxes[sample_id] = scene_boxes
        pixels += counts
    ids = [str(i) for i in range(num)]
    splits = make_splits(ids, val_fraction=0.1, test_fraction=0.1, seed=seed)
    write_splits(prep, splits)
    write_json(out / BOXES_FILE, {i: boxes[i] for i in ids})
    faces = sum(len(b) for b in boxes.values())
    write_meta(
        prep,
        source=SOURCE,
        size=size,
        splits=splits,
        pixel_counts=pixels,
        skipped=[],
        extra={
            "wild": {"seed": seed, "max_faces": max_faces, "face_scale": list(face_scale)},
            "boxes": BOXES_FILE,
            "faces_with_box": faces,
            "split": {"method": "random", "val_fraction": 0.1, "test_fraction": 0.1, "seed": seed},
        },
    )
    return out
