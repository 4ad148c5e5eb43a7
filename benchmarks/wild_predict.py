"""Faces in the wild: mean face F1 of a manifest's ensemble on generated wild scenes, with and without
detection + alignment, each detection-based post-processing step's delta, time per photo.

    PYTHONPATH=. python benchmarks/wild_predict.py --manifest M --data PREP [--scenes 24] [--seed 0]

Scenes: PREP's faces (any split), each rotated up to +-20 degrees and scaled 0.6-1.4x, pasted at
random into a 3x larger textured canvas (1 or 2 per scene). Not run in CI.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from configs import NUM_CLASSES
from configs.schema import PostprocessConfig
from data_prep.framing import face_box
from data_prep.layout import PreparedDataset, read_label_map, read_rgb
from ensemble.api import Parser
from ensemble.postprocess.registry import build_steps
from tuning.metrics import image_confusion, scores_from_confusion


def scenes(prep: PreparedDataset, n: int, seed: int):
    """(image, labels, face-core boxes) wild scenes built from the prepared faces."""
    rng = np.random.default_rng(seed)
    ids = [i for s in ("train", "val", "test") for i in prep.split_ids(s)]
    size = read_label_map(prep.mask_path(ids[0])).shape[0]
    for _ in range(n):
        h, w = 3 * size, 4 * size
        noise = cv2.resize(
            rng.uniform(0, 255, (6, 8, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC
        )
        image, labels = np.clip(noise, 0, 255).astype(np.uint8), np.zeros((h, w), np.uint8)
        boxes = []
        for _ in range(rng.integers(1, 3)):
            k = ids[rng.integers(len(ids))]
            face, lab = read_rgb(prep.image_path(k)), read_label_map(prep.mask_path(k))
            s = int(size * rng.uniform(0.6, 1.4))
            rot = cv2.getRotationMatrix2D((size / 2, size / 2), rng.uniform(-20, 20), s / size)
            rot[:, 2] += (s - size) / 2
            face = cv2.warpAffine(face, rot, (s, s), borderMode=cv2.BORDER_REFLECT_101)
            lab = cv2.warpAffine(lab, rot, (s, s), flags=cv2.INTER_NEAREST)
            x, y = rng.integers(0, w - s), rng.integers(0, h - s)
            image[y : y + s, x : x + s], labels[y : y + s, x : x + s] = face, lab
            x0, y0, x1, y1 = face_box(lab)
            boxes.append((x0 + x, y0 + y, x1 + x, y1 + y))
        yield image, labels, boxes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--manifest", required=True, help="models/NAME/manifest.json")
    p.add_argument("--data", required=True, help="prepared dataset whose faces the scenes are made of")
    p.add_argument("--scenes", type=int, default=24, help="scenes to build")
    p.add_argument("--seed", type=int, default=0, help="scene seed")
    p.add_argument("--what", default="f1,steps,detect", help="comma list of: f1, steps, detect")
    args = p.parse_args()
    what = set(args.what.split(","))
    prep = PreparedDataset(Path(args.data))
    scene_data = list(scenes(prep, args.scenes, args.seed))
    rows = {}

    def load(detector: str, **kw) -> Parser:
        explicit = {
            "postprocess.smooth": "none",
            "postprocess.remove_small": False,
            "postprocess.fill_holes": False,
        }
        return Parser.from_manifest(
            args.manifest,
            detector=detector,
            framing=args.data,
            device="cpu",
            use_recipe=False,
            explicit=explicit,
            **kw,
        )

    def score(name: str, parse, data=scene_data) -> None:
        cm, t0 = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64), time.perf_counter()
        for image, labels, *_ in data:
            cm += image_confusion(parse(image), labels)
        rows[name] = {
            "f1": round(scores_from_confusion(cm)["f1"], 4),
            "s_per_photo": round((time.perf_counter() - t0) / len(data), 3),
        }
        print(name, rows[name], flush=True)

    if "f1" in what:
        w = load("none").wild

        def plain(im: np.ndarray) -> np.ndarray:  # the members on the image squashed to their square
            return w.ensemble.predict([im])[0]

        ids = [i for s in ("train", "val", "test") for i in prep.split_ids(s)]
        faces = [(read_rgb(prep.image_path(i)), read_label_map(prep.mask_path(i))) for i in ids]
        score("pre-cropped training-framed faces (reference)", plain, faces)
        score("squashed whole photo (run's behaviour)", plain)
        score("padded whole photo (--detector none)", load("none").parse)
        for det in ("parser", "dlib"):
            for second in (False, True):
                name = f"{det} + box crop" + (" + landmark re-align" if second else "")
                score(name, load(det, second_pass=second).parse)
    if "steps" in what:
        parser = load("auto")
        score("auto detector + re-align, no face step", parser.parse)
        for step in ("face_clip", "glasses_to_skin", "eye_repair"):
            cfg = PostprocessConfig(smooth="none", remove_small=False, fill_holes=False, **{step: True})
            parser.wild.steps = build_steps(cfg)
            score(f"auto detector + re-align + {step}", parser.parse)
    if "detect" in what:
        for det in ("parser", "dlib"):
            parser, n, found, centred, extra, t0 = load(det), 0, 0, 0, 0, time.perf_counter()
            for image, _, boxes in scene_data:
                faces = parser.wild.detect(image)
                n += len(boxes)
                found += sum(max((iou(b, f.box) for f in faces), default=0) >= 0.5 for b in boxes)
                # Box conventions differ (dlib's runs brows to chin): also count a box holding the centre.
                centred += sum(any(contains(f.box, b) and contains(b, f.box) for f in faces) for b in boxes)
                extra += sum(not any(contains(f.box, b) for b in boxes) for f in faces)
            rows[f"detect {det}"] = {
                "faces": n,
                "found_iou_0.5": int(found),
                "found_centre_in_box": int(centred),
                "false_positives": int(extra),
                "s_per_photo": round((time.perf_counter() - t0) / len(scene_data), 3),
            }
            print(f"detect {det}", rows[f"detect {det}"], flush=True)
    print(json.dumps(rows, indent=1))


def contains(a, b) -> bool:
    """Whether box a holds the centre of box b."""
    return a[0] <= (b[0] + b[2]) / 2 <= a[2] and a[1] <= (b[1] + b[3]) / 2 <= a[3]


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


if __name__ == "__main__":
    main()
