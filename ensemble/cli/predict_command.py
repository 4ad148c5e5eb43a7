"""`python -m ensemble predict PHOTO|DIR --out OUT`: parse one's own photos, faces anywhere in them.

Writes OUT/masks/{stem}.png (class IDs at the photo's size), OUT/color/{stem}.png (palette),
OUT/overlay/{stem}.png (photo + translucent class colours + face boxes + legend) and OUT/faces.json
({stem: [{"box": [x0, y0, x1, y1], "score": s, "landmarks": {name: [x, y]}}]}, centre first).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from configs.overrides import add_set_argument, load_with_sets
from ensemble.cli.photo_flags import add_photo_arguments
from ensemble.cli.step_flags import add_step_argument, step_settings
from ensemble.core.choices import TTA_MODES

# What parses and writes (torch, smp, OpenCV) is imported where it runs: `--help` needs only the flags.
if TYPE_CHECKING:
    from ensemble.core.inputs import ImageItem

OWN_FOLDERS = ("masks", "color", "overlay", "crops")
OWN_FILES = ("faces.json", "provenance.json", "report.html")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "photos", type=Path, help="a photo, or a folder of photos (any size; EXIF orientation applied)"
    )
    p.add_argument("--manifest", type=Path, required=True, help="models/NAME/manifest.json")
    p.add_argument("--out", type=Path, required=True, help="output folder (new or empty, or --overwrite)")
    p.add_argument(
        "--recipe", type=Path, help="recipe from ensemble fit (default: recipe.json beside the manifest)"
    )
    p.add_argument("--no-recipe", action="store_true", help="ignore recipe.json beside the manifest")
    add_photo_arguments(p, "default: the recipe's wild.detector, else auto")
    p.add_argument("--tta", choices=list(TTA_MODES), help="test-time augmentation instead of the recipe's")
    p.add_argument(
        "--face-clip", action="store_true", help="clear parts, hair and skin far outside the face box"
    )
    p.add_argument("--glasses-to-skin", action="store_true", help="label glasses as skin")
    p.add_argument("--eye-repair", action="store_true", help="keep/draw each eye at its landmark")
    add_step_argument(p)
    p.add_argument("--config", type=Path, help="RunConfig YAML whose ensemble section gives the defaults")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where the members run")
    p.add_argument("--overwrite", action="store_true", help="replace a previous predict's outputs in --out")
    p.add_argument(
        "--save-crops",
        action="store_true",
        help="keep the aligned crops each face was parsed from: crops/{stem}_{i}.png",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_set_argument(p)


def photo_items(photos: Path) -> list[ImageItem]:
    """One photo, or a folder's photos in stem order."""
    from data_prep.layout import DatasetError
    from ensemble.core.inputs import IMAGE_EXTENSIONS, ImageItem, discover

    if photos.is_file():
        if photos.suffix.lower() not in IMAGE_EXTENSIONS:
            raise DatasetError(f"{photos}: not an image file type OpenCV reads ({photos.suffix})")
        return [ImageItem(photos.stem, photos)]
    return discover(photos).items


def main(args: argparse.Namespace) -> int:
    """Parse every photo; 1 when some photos could not be read. Bad input raises before anything is
    written; the command's entry (configs.errors.run_cli) prints it and exits 2."""
    from tqdm import tqdm

    from configs.provenance import write_provenance
    from data_prep.atomic import write_image, write_json
    from data_prep.layout import DatasetError, read_rgb
    from ensemble.api import Parser
    from ensemble.faces.predict_html import PhotoEntry, write_predict_html
    from ensemble.submission.csv_codes import write_masks
    from ensemble.submission.output_folder import check_out_folder, clear_previous
    from ensemble.submission.pictures import overlay

    explicit: dict[str, object] = {"views": True} if args.tta else {}
    chosen = [(key, True) for key in ("face_clip", "glasses_to_skin", "eye_repair") if getattr(args, key)]
    explicit.update(step_settings(chosen + args.steps))
    ens = load_with_sets(args.config, args.overrides).ensemble
    if args.tta:
        ens = ens.model_copy(update={"tta": args.tta})
    check_out_folder(args.out, args.overwrite)
    items = photo_items(args.photos)
    parser = Parser.from_manifest(
        args.manifest,
        args.recipe,
        not args.no_recipe,
        args.detector,
        args.framing,
        args.device,
        ens,
        explicit,
        second_pass=False if args.no_second_pass else None,
        max_faces=args.max_faces,
        detector_threshold=args.detector_threshold,
        context=args.context,
    )
    clear_previous(args.out, OWN_FOLDERS, OWN_FILES)  # only after every check passed
    print(f"detector: {parser.describe()}; framing: {parser.framing_source}")
    faces, bad, entries, found_by, t0 = {}, [], [], {}, time.perf_counter()
    for item in tqdm(items, desc="predict", unit="photo", disable=args.quiet):
        try:
            image = read_rgb(item.path)
        except DatasetError as err:
            print(f"error: {err} (skipped)", file=sys.stderr)
            bad.append(item.path)
            continue
        result = parser.wild(image, item.path)
        for face in result.faces:
            found_by[face.found_by] = found_by.get(face.found_by, 0) + 1
        if result.message:
            tqdm.write(f"{item.path}: {result.message}")
        write_masks(args.out, item.stem, result.labels)
        drawn = overlay(
            image,
            result.labels,
            [f.box for f in result.faces],
            landmarks=[f.landmarks for f in result.faces],
            crops=result.crop_corners,
        )
        write_image(args.out / "overlay" / f"{item.stem}.png", drawn)
        crops = []
        for i, crop in enumerate(result.crops if args.save_crops else []):
            crops.append(f"crops/{item.stem}_{i}.png")
            write_image(args.out / crops[-1], crop)
        faces[item.stem] = [f.to_json() for f in result.faces]
        scores = [f.score for f in result.faces]
        entries.append(
            PhotoEntry(
                item.path.name, f"overlay/{item.stem}.png", len(result.faces), scores, result.message, crops
            )
        )
    write_json(args.out / "faces.json", faces)
    header = [f"manifest: {args.manifest}", f"detector: {args.detector}; framing: {parser.framing_source}"]
    write_predict_html(args.out, entries, header, bad)
    write_provenance(args.out, config=ens, extra={"args": args})
    n = len(faces)
    print(
        f"{n} photo(s), {sum(map(len, faces.values()))} face(s) (found by: "
        f"{', '.join(f'{k} {v}' for k, v in sorted(found_by.items())) or 'none'}), "
        f"{(time.perf_counter() - t0) / max(n, 1):.3f} s/photo; outputs in {args.out}: masks/, color/, overlay/, "
        f"{'crops/, ' if args.save_crops else ''}faces.json, report.html"
    )
    return 1 if bad else 0
