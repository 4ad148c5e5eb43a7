"""Every model of a manifest alone, and every refit bag, scored on a split (no TTA, no post-processing).

For a refit's note: each fold or seed model, each bag (the mean of its models), the search's
candidates; mean F1 over the 18 face classes from the split-wide confusion matrix.

    python benchmarks/model_scores.py --manifest runs/demo/bags/manifest.json --data data/demo/prepared --split test
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from configs import NUM_CLASSES  # noqa: E402
from data_prep.layout import read_label_map  # noqa: E402
from ensemble.core.inference import Ensemble  # noqa: E402
from ensemble.core.inputs import discover  # noqa: E402
from ensemble.core.members import load_manifest  # noqa: E402
from tuning.metrics import image_confusion, scores_from_confusion  # noqa: E402


def score(member, items, gt_paths) -> float:
    cm = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    for pred in Ensemble([member]).stream(items, batch_size=8, progress=False):
        cm += image_confusion(pred.probs.argmax(0).byte().numpy(), read_label_map(gt_paths[pred.index]))
    return float(scores_from_confusion(cm)["f1"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--split", default="test")
    args = p.parse_args()
    images = discover(args.data, args.split)
    models = load_manifest(args.manifest, bags=False).members
    bags = [m for m in load_manifest(args.manifest).members if m.bag_members]
    print(f"| model | {args.split} F1 | val_f1 in the manifest |\n|---|---:|---:|")
    for m in models + bags:
        kind = f"bag of {len(m.bag_members)}" if m.bag_members else m.name
        f1 = score(m, images.items, images.gt_paths)
        print(
            f"| {m.name if not m.bag_members else m.name + ' (' + kind + ')'} | {f1:.4f} | {m.val_f1 or float('nan'):.4f} |"
        )


if __name__ == "__main__":
    main()
