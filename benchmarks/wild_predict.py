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
from data_prep.layout import PreparedDataset, read_label_map, read_rgb
from ensemble.api import Parser
from ensemble.postprocess import build_steps
from ensemble.predict import predict_arrays
from ensemble.report import image_confusion
from tuning.metrics import scores_from_confusion


def scenes(prep: PreparedDataset, n: int, seed: int):
    """(image, labels) wild scenes built from the prepared faces."""
    rng = np.random.default_rng(seed)
    ids = [i for s in ("train", "val", "test") for i in prep.split_ids(s)]
    size = read_label_map(prep.mask_path(ids[0])).shape[0]
    for _ in range(n):
        h, w = 3 * size, 4 * size
        noise = cv2.resize(
            rng.uniform(0, 255, (6, 8, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC
        )
        image, labels = np.clip(noise, 0, 255).astype(np.uint8), np.zeros((h, w), np.uint8)
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
        yield image, labels


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--manifest", required=True, help="models/NAME/manifest.json")
    p.add_argument("--data", required=True, help="prepared dataset whose faces the scenes are made of")
    p.add_argument("--scenes", type=int, default=24, help="scenes to build")
    p.add_argument("--seed", type=int, default=0, help="scene seed")
    args = p.parse_args()
    data = list(scenes(PreparedDataset(Path(args.data)), args.scenes, args.seed))
    plain = {
        "explicit": {
            "postprocess.smooth": "none",
            "postprocess.remove_small": False,
            "postprocess.fill_holes": False,
        }
    }
    rows = {}

    def score(name: str, parse) -> None:
        cm, t0 = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64), time.perf_counter()
        for image, labels in data:
            cm += image_confusion(parse(image), labels)
        rows[name] = {
            "f1": round(scores_from_confusion(cm)["f1"], 4),
            "s_per_photo": round((time.perf_counter() - t0) / len(data), 3),
        }
        print(name, rows[name], flush=True)

    squash = Parser.from_manifest(
        args.manifest, detector="none", framing=args.data, device="cpu", use_recipe=False, **plain
    )
    w = squash.wild
    prep = PreparedDataset(Path(args.data))
    faces = [
        (read_rgb(prep.image_path(i)), read_label_map(prep.mask_path(i)))
        for s in ("train", "val", "test")
        for i in prep.split_ids(s)
    ]
    data, scene_data = faces, data
    score(
        "pre-cropped training-framed faces (reference)",
        lambda im: predict_arrays(w.members, w.weights, [im], w.views)[0].argmax(0).numpy().astype(np.uint8),
    )
    data = scene_data
    score(
        "squashed whole photo (run's behaviour)",
        lambda im: predict_arrays(w.members, w.weights, [im], w.views)[0].argmax(0).numpy().astype(np.uint8),
    )
    score("padded whole photo (--detector none)", squash.parse)
    for det in ("parser", "dlib"):
        for second in (False, True):
            parser = Parser.from_manifest(
                args.manifest,
                detector=det,
                framing=args.data,
                device="cpu",
                use_recipe=False,
                second_pass=second,
                **plain,
            )
            score(f"{det} + box crop" + (" + landmark re-align" if second else ""), parser.parse)
    parser = Parser.from_manifest(
        args.manifest, detector="parser", framing=args.data, device="cpu", use_recipe=False, **plain
    )
    for step in ("face_clip", "glasses_to_skin", "eye_repair"):
        parser.wild.steps = build_steps(
            PostprocessConfig(smooth="none", remove_small=False, fill_holes=False, **{step: True})
        )
        score(f"parser + re-align + {step}", parser.parse)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
