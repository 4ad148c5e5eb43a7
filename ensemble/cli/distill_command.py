"""The `distill` command (python -m ensemble distill): one fast student trained on a fitted ensemble."""

from __future__ import annotations

import argparse
from pathlib import Path

from configs.overrides import add_set_argument
from ensemble.core.choices import DEVICES, TEACHER_MODES


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--recipe",
        type=Path,
        required=True,
        help="the teacher: recipe.json from python -m ensemble fit (its manifest is beside it)",
    )
    p.add_argument(
        "--manifest", type=Path, help="the recipe's manifest, when it is not where the recipe says"
    )
    p.add_argument(
        "--data",
        type=Path,
        required=True,
        help="prepared dataset: trains on its train split, validates on val, reports on --report-split",
    )
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="output folder (e.g. models/NAME-student): manifest.json, m0.safetensors, distill_report.*",
    )
    p.add_argument(
        "--config",
        type=Path,
        help="RunConfig YAML (its distill and train sections); default: the "
        "teacher's heaviest member's own training config",
    )
    p.add_argument(
        "--unlabeled",
        type=Path,
        help="folder of extra images without labels (generated or wild faces): KD term only",
    )
    p.add_argument("--epochs", type=int, help="training epochs (default distill.epochs, else train.epochs)")
    p.add_argument(
        "--teacher",
        choices=TEACHER_MODES,
        default="auto",
        help="teacher probabilities cached once or computed on the fly (auto: cache if it fits "
        "distill.cache_gb)",
    )
    p.add_argument("--work", type=Path, help="checkpoint folder (default runs/distill/<out name>)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --work")
    p.add_argument(
        "--report-split",
        default="test",
        help="labelled split for the teacher-vs-student report (default test; 'none' skips it)",
    )
    p.add_argument(
        "--device",
        default="auto",
        choices=DEVICES,
        help="where teacher and student run (auto: cuda when available)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_set_argument(p)


def main(args: argparse.Namespace) -> int:
    # Bad input raises a FaceParseError: the entry (configs.errors.run_cli) prints it and exits 2.
    # Teacher and student (torch, smp) are imported here: `--help` needs only the flags.
    from data_prep.layout import PreparedDataset
    from ensemble.core.inference import Ensemble
    from ensemble.core.inputs import discover
    from ensemble.core.members import load_manifest
    from ensemble.distill.distill_report import STUDENT, TEACHER, compare, write_distill_report
    from ensemble.distill.student import DistillOptions, distill
    from tuning.models import resolve_device

    device = resolve_device(args.device)
    teacher = Ensemble.from_recipe(args.recipe, manifest=args.manifest, device=device)
    opts = DistillOptions(
        data=args.data,
        out=args.out,
        config=args.config,
        overrides=args.overrides,
        unlabeled=args.unlabeled,
        work=args.work,
        epochs=args.epochs,
        teacher_mode=args.teacher,
        device=args.device,
        resume=args.resume,
        progress=not args.quiet,
    )
    manifest, result, cfg = distill(teacher, opts)
    print(
        f"wrote {manifest.path} (student val_f1 {result['best_val_f1']:.4f}, "
        f"checkpoints in {Path(result['checkpoint']).parent})"
    )
    if args.report_split == "none":
        return 0
    split = args.report_split
    if not PreparedDataset(args.data).split_ids(split):
        print(f"split {split!r} of {args.data} is empty: reporting on val", flush=True)
        split = "val"
    images = discover(args.data, split=split)
    student = load_manifest(manifest.path, device).members[0]
    report = compare(
        teacher,
        student,
        images.items,
        images.gt_paths,
        device,
        batch_size=cfg.ensemble.batch_size,
        progress=not args.quiet,
    )
    header = [
        (
            f"Teacher: `{args.recipe}` ({len(teacher.members)} members x {len(teacher.views)} views: "
            f"{', '.join(v.name for v in teacher.views)})."
        ),
        (
            f"Student: `{manifest.path}` ({cfg.model.arch}/{cfg.model.encoder}, {cfg.data.image_size}px, "
            f"{cfg.train.epochs} epochs, T={cfg.distill.temperature:g}, kd_weight {cfg.distill.kd_weight:g}, "
            f"ce_weight {cfg.distill.ce_weight:g}). Split: `{args.data}` {split}."
        ),
    ]
    md, js, html = write_distill_report(report, args.out, header)
    s = report["scores"]
    print(
        f"{split} mean face F1: teacher {s[TEACHER]['f1']:.4f}, student {s[STUDENT]['f1']:.4f}"
        + (f", best member {s[report['best_member']]['f1']:.4f}" if report["best_member"] else "")
    )
    sp = report["speed"]
    print(
        f"forward ms/image: teacher {sp[TEACHER]['forward_ms_per_image']:.1f}, student "
        f"{sp[STUDENT]['forward_ms_per_image']:.1f} ({report['forward_speedup']:.1f}x)"
    )
    print(f"wrote {md}, {js}, {html}")
    return 0
