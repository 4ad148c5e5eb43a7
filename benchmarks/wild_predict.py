"""Faces in the wild: the photo parser per detector on generated wild scenes, against the same model on
aligned faces. Not run in CI.

    PYTHONPATH=. python benchmarks/wild_predict.py --manifest M --wild WILD_PREP --aligned PREP \
        [--split test] [--scenes 60] [--detectors mtcnn,dlib,parser,auto] [--contexts 2] [--steps clothes_below] \
        [--out rows.json]

WILD_PREP: `python -m data_prep synth --wild` (scenes, label maps, boxes.json: the visible face-core
box of each face). PREP: the model's prepared (aligned) dataset; its split gives the reference F1 and
its framing the crops. Per row: faces found / missed at IoU >= 0.5 with a detected box (the faces the
whole-photo fallback found are counted apart), detections matching no face (false), mean F1 over the 18
face classes from the scenes' summed confusion, that F1 over the aligned one, seconds per photo, and
the scenes with a face whose map came back all background (blank). The recipe is not used (no
post-processing; `--steps` switches face steps on), so the rows compare the photo paths alone.
Detector `truth` hands the parser each scene's true face boxes (boxes.json): the parse's ceiling with
a perfect detector, which separates what detection loses from what the crop, occlusion and the canvas
edge lose. `A+B` joins two detectors (ensemble.faces.detect.DetectorUnion), e.g. mtcnn+parser.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from configs import NUM_CLASSES
from data_prep.layout import PreparedDataset, read_label_map, read_rgb
from ensemble.api import Parser
from ensemble.core.inference import Ensemble
from ensemble.postprocess.face_regions import Face
from tuning.metrics import image_confusion, scores_from_confusion

PLAIN = {"postprocess.smooth": "none", "postprocess.remove_small": False, "postprocess.fill_holes": False}


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def per_class(scores: dict) -> dict:
    return {k: round(v, 3) for k, v in scores["per_class_f1"].items() if k != "background" and v is not None}


def aligned_row(label, prep: PreparedDataset, split: str) -> dict:
    """The reference row: label(RGB image) -> label map, scored on the aligned faces of a split."""
    cm, t0 = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64), time.perf_counter()
    ids = prep.split_ids(split)
    for i in ids:
        cm += image_confusion(label(read_rgb(prep.image_path(i))), read_label_map(prep.mask_path(i)))
    scores = scores_from_confusion(cm)
    return {
        "f1": round(scores["f1"], 4),
        "s_per_photo": round((time.perf_counter() - t0) / len(ids), 3),
        "per_class_f1": per_class(scores),
    }


class TruthBoxes:
    """A detector that returns the current scene's true face boxes (the `truth` row)."""

    name = "truth"

    def __init__(self, boxes: dict):
        self.boxes, self.stem = boxes, None

    def __call__(self, image: np.ndarray) -> list[Face]:
        return [Face(tuple(map(float, b)), 1.0, found_by="truth") for b in self.boxes.get(self.stem, [])]


def score_row(parser: Parser, scenes, boxes: dict, oracle: TruthBoxes | None = None) -> dict:
    """One row; `oracle`: the parser's TruthBoxes detector, told which scene it is looking at."""
    cm = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    found = whole = missed = false = blank = 0
    t0 = time.perf_counter()
    for stem, image, labels in scenes:
        if oracle is not None:
            oracle.stem = stem
        result = parser.parse_faces(image)
        cm += image_confusion(result.labels, labels)
        truth = boxes.get(stem, [])
        detected = [f for f in result.faces if f.found_by != "whole_photo"]
        fallback = [f for f in result.faces if f.found_by == "whole_photo"]
        for b in truth:
            if max((iou(b, f.box) for f in detected), default=0) >= 0.5:
                found += 1
            elif max((iou(b, f.box) for f in fallback), default=0) >= 0.5:
                whole += 1
            else:
                missed += 1
        false += sum(max((iou(b, f.box) for b in truth), default=0) < 0.5 for f in result.faces)
        blank += bool(truth) and not result.labels.any()
    scores = scores_from_confusion(cm)
    return {
        "faces": sum(len(boxes.get(s, [])) for s, *_ in scenes),
        "found": found,
        "found_whole_photo": whole,
        "missed": missed,
        "false": false,
        "f1": round(scores["f1"], 4),
        "s_per_photo": round((time.perf_counter() - t0) / len(scenes), 3),
        "blank_maps": int(blank),
        "per_class_f1": per_class(scores),
    }


def recipe_rows(
    manifest, recipe: Path, aligned: Path, prep: PreparedDataset, split, scenes, boxes, detectors=()
) -> dict:
    """The recipe's aligned reference (the aligned faces parsed whole, post-processing included) and
    its photo path on the scenes, with its own detector and then each of `detectors`."""
    whole = Parser.from_manifest(
        manifest, recipe, detector="none", framing=aligned, device="cpu", context=1.0, second_pass=False
    )
    ref = aligned_row(lambda image: whole.parse_faces(image).labels, prep, split)
    rows = {"recipe, aligned reference": ref}
    print("recipe, aligned reference", rows["recipe, aligned reference"], flush=True)
    for detector in [None, *detectors]:
        parser = Parser.from_manifest(manifest, recipe, detector=detector, framing=aligned, device="cpu")
        name = f"recipe: {parser.describe()}"
        rows[name] = score_row(parser, scenes, boxes)
        rows[name]["f1_vs_aligned"] = round(rows[name]["f1"] / ref["f1"], 3)
        print(name, rows[name], flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", required=True, help="models/NAME/manifest.json")
    p.add_argument("--wild", required=True, type=Path, help="synth --wild dataset (with boxes.json)")
    p.add_argument("--aligned", required=True, type=Path, help="the model's prepared (aligned) dataset")
    p.add_argument("--split", default="test", help="split of both datasets to score (default test)")
    p.add_argument(
        "--scenes", type=int, default=60, help="at most this many wild scenes (all splits if needed)"
    )
    p.add_argument("--detectors", default="mtcnn,dlib,parser,auto", help="comma list (truth: the true boxes)")
    p.add_argument("--contexts", default="2", help="comma list of context views to try (1: none)")
    p.add_argument("--threshold", type=float, help="detector threshold (default: each detector's own)")
    p.add_argument(
        "--steps",
        default="",
        help="comma list of face steps switched on in every row (e.g. clothes_below); default none",
    )
    p.add_argument(
        "--recipe",
        type=Path,
        help="also a row of the whole product path: this recipe (ensemble fit [--wild]) with its members, "
        "views, post-processing and wild choice, against the same recipe on the aligned faces",
    )
    p.add_argument(
        "--recipe-detectors",
        default="",
        help="comma list: also the recipe's rows with these detectors instead of its own (e.g. mtcnn+parser)",
    )
    p.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = p.parse_args()
    wild, prep = PreparedDataset(args.wild), PreparedDataset(args.aligned)
    boxes = json.loads((args.wild / "boxes.json").read_text())
    ids = wild.split_ids(args.split)
    if len(ids) < args.scenes:  # a small scene set is scored whole: nothing here was trained on it
        ids = sorted(boxes, key=lambda s: (len(s), s))
    ids = ids[: args.scenes]
    scenes = [(i, read_rgb(wild.image_path(i)), read_label_map(wild.mask_path(i))) for i in ids]
    plain = Ensemble.from_manifest(args.manifest, use_recipe=False, explicit=PLAIN, device="cpu")
    rows = {"aligned reference": aligned_row(lambda image: plain.predict([image])[0], prep, args.split)}
    reference = rows["aligned reference"]["f1"]
    steps = {f"postprocess.{k}": True for k in filter(None, args.steps.split(","))}
    print("aligned reference", rows["aligned reference"], flush=True)
    for context in map(float, args.contexts.split(",")):
        for det in filter(None, args.detectors.split(",")):
            oracle = TruthBoxes(boxes) if det == "truth" else None
            parser = Parser.from_manifest(
                args.manifest,
                detector=oracle or det,
                framing=args.aligned,
                device="cpu",
                use_recipe=False,
                explicit={**PLAIN, **steps},
                context=context,
                detector_threshold=args.threshold,
            )
            name = f"{det}, context {context:g}" + "".join(f", {k.split('.')[1]}" for k in steps)
            rows[name] = score_row(parser, scenes, boxes, oracle)
            rows[name]["f1_vs_aligned"] = round(rows[name]["f1"] / reference, 3)
            print(name, rows[name], flush=True)
    if args.recipe:
        others = list(filter(None, args.recipe_detectors.split(",")))
        rows.update(
            recipe_rows(args.manifest, args.recipe, args.aligned, prep, args.split, scenes, boxes, others)
        )
    print(json.dumps(rows, indent=1))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
