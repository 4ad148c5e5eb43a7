"""What the run's worst-first gallery costs per image: the panel (image | prediction | truth |
error map) drawn and written as PNG, and the image's score and worst classes from its confusion
matrix (which the run computes anyway, for the stage table: not timed here).

    python benchmarks/gallery_cost.py --data data/demo/prepared --split test [--size 512]

Predictions are the ground truth shifted by 3 px with a band relabelled as skin: label maps as
compressible as real ones, with errors along every boundary. --size resizes the samples first
(CelebAMask-HQ is prepared at 512 px).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from data_prep.atomic import write_image
from data_prep.layout import PreparedDataset, read_label_map, read_rgb
from ensemble.submission.gallery import GALLERY_HEIGHT, gallery_entry
from ensemble.submission.pictures import comparison_panel
from tuning.metrics import image_confusion


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="a prepared dataset")
    ap.add_argument("--split", default="test")
    ap.add_argument("--size", type=int, help="resize samples to this many px first")
    ap.add_argument("--limit", type=int, default=40)
    args = ap.parse_args()
    prep = PreparedDataset(args.data)
    panel_ms, score_ms = [], []
    with tempfile.TemporaryDirectory() as out:
        for sample in prep.split_ids(args.split)[: args.limit]:
            image, gt = read_rgb(prep.image_path(sample)), read_label_map(prep.mask_path(sample))
            if args.size:
                image = cv2.resize(image, (args.size, args.size), interpolation=cv2.INTER_LINEAR)
                gt = cv2.resize(gt, (args.size, args.size), interpolation=cv2.INTER_NEAREST)
            pred = np.roll(gt, 3, axis=1)
            pred[gt.shape[0] // 2 : gt.shape[0] // 2 + 4] = 1
            t0 = time.perf_counter()
            write_image(
                Path(out) / f"{sample}.png", comparison_panel(image, pred, gt, GALLERY_HEIGHT, errors=True)
            )
            t1 = time.perf_counter()
            cm = image_confusion(pred, gt)
            t1b = time.perf_counter()
            gallery_entry(sample, cm, f"{sample}.png")
            t2 = time.perf_counter() - (t1b - t1)
            panel_ms.append(1000 * (t1 - t0))
            score_ms.append(1000 * (t2 - t1))
    size = args.size or gt.shape[0]
    print(f"{len(panel_ms)} images at {size} px (median of each):")
    print(f"  panel drawn + PNG written: {statistics.median(panel_ms):.1f} ms/image")
    print(f"  score + worst classes:     {statistics.median(score_ms):.2f} ms/image")


if __name__ == "__main__":
    main()
