"""`python -m ensemble distill`: train one student on a fitted ensemble's probabilities.

The student is trained by tuning.train.train (its loop, LR schedule, AMP, checkpoints and resume)
on a soft-target training set (tuning.soft_targets) with the distillation loss
(tuning.losses.DistillationLoss); the teacher is the recipe (ensemble.distill.teacher). The result is a
one-member manifest (OUT/manifest.json + OUT/m0.safetensors) that run_ensemble.py, fit and
predict use like any ensemble, and a teacher-vs-student report (ensemble.distill.distill_report).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from configs.errors import FaceParseError
from configs.overrides import apply_sets
from configs.provenance import write_provenance
from configs.schema import RunConfig, load_config, parse_config
from data_prep.atomic import write_bytes
from data_prep.dataset import class_weights_from
from data_prep.layout import DatasetError, PreparedDataset
from ensemble.core.choices import TEACHER_MODES
from ensemble.core.inference import Ensemble
from ensemble.core.inputs import ImageItem, discover, validate
from ensemble.distill.teacher import CachedTeacher, OnTheFlyTeacher, cache_bytes
from tuning.checkpoint import MODEL_FILE, read_meta
from tuning.losses import build_distill_loss
from tuning.manifest import ManifestEntry, ManifestFile, write_manifest
from tuning.models import check_model_names, resolve_device
from tuning.soft_targets import SoftTargetDataset
from tuning.train import train


class DistillError(FaceParseError):
    """Distillation inputs that cannot be used."""


@dataclass
class DistillOptions:
    data: Path
    out: Path
    config: Path | None = None  # None: the teacher's heaviest member's own training config
    overrides: list[str] = field(default_factory=list)  # --set KEY=VALUE, applied to the base config
    unlabeled: Path | None = None
    work: Path | None = None  # checkpoints; None: runs/distill/<out name>
    epochs: int | None = None
    teacher_mode: str = "auto"
    device: str = "auto"
    resume: bool = False
    progress: bool = True


def student_config(teacher: Ensemble, opts: DistillOptions) -> RunConfig:
    """The student's RunConfig: --config (or the heaviest member's config) + the distill section."""
    if opts.config is not None:
        base = load_config(opts.config)
    else:
        heaviest = max(zip(teacher.weights.values(), range(len(teacher.members))))[1]
        m = teacher.members[heaviest]
        base = parse_config(m.config, source=f"{teacher.manifest_path}: member {m.name!r} config")
        # The manifest entry, not the trial's config, is the record of how inputs were prepared.
        base = base.with_overrides(
            {"data.image_size": m.image_size, "data.mean": list(m.mean), "data.std": list(m.std)}
        )
    base = apply_sets(base, opts.overrides)
    d = base.distill
    check_model_names(d.arch, d.encoder, base.model.encoder_weights)
    return base.with_overrides(
        {
            "model.arch": d.arch,
            "model.encoder": d.encoder,
            "data.datasets": [{"path": str(opts.data)}],
            "train.epochs": opts.epochs or d.epochs or base.train.epochs,
            "train.device": opts.device,
        }
    )


def training_samples(
    data: Path, unlabeled: Path | None, progress: bool = True
) -> tuple[list[ImageItem], list[Path | None]]:
    """The labelled train split of data plus the readable images of unlabeled (mask None)."""
    prep = PreparedDataset(data)
    ids = prep.split_ids("train")
    if not ids:
        raise DistillError(f"{prep.splits / 'train.txt'}: train split is empty")
    items = [ImageItem(i, prep.image_path(i)) for i in ids]
    masks: list[Path | None] = [prep.mask_path(i) for i in ids]
    if unlabeled is not None:
        extra = discover(unlabeled)
        bad, _ = validate(extra, progress=progress)
        for b in bad:
            print(f"skipped unreadable unlabelled image {b.line()}", flush=True)
        bad_paths = {b.path for b in bad}
        kept = [item for item in extra.items if item.path not in bad_paths]
        items += [ImageItem(f"unlabeled/{item.stem}", item.path) for item in kept]
        masks += [None] * len(kept)
    return items, masks


def choose_teacher_mode(mode: str, samples: int, resolution: int, cache_gb: float) -> str:
    """'cache' when the cache fits cache_gb (or is asked for), else 'on-the-fly'."""
    if mode not in TEACHER_MODES:
        raise DistillError(f"--teacher {mode!r}: expected one of {list(TEACHER_MODES)}")
    if mode != "auto":
        return mode
    return "cache" if cache_bytes(samples, resolution) <= cache_gb * 1e9 else "on-the-fly"


def distill(teacher: Ensemble, opts: DistillOptions) -> tuple[ManifestFile, dict, RunConfig]:
    """Train the student, write OUT/manifest.json + OUT/m0.safetensors; returns (manifest, result, cfg)."""
    cfg = student_config(teacher, opts)
    d = cfg.distill
    device = resolve_device(opts.device)
    items, masks = training_samples(opts.data, opts.unlabeled, opts.progress)
    mode = choose_teacher_mode(opts.teacher_mode, len(items), d.resolution, d.cache_gb)
    gb = cache_bytes(len(items), d.resolution) / 1e9
    print(
        f"teacher: {len(teacher.members)} members x {len(teacher.views)} views; {len(items)} samples; "
        f"cache at {d.resolution}px would take {gb:.2f} GB (limit distill.cache_gb {d.cache_gb:g}): {mode}",
        flush=True,
    )
    if mode == "cache":
        targets = CachedTeacher(teacher.to(device), items, d.resolution, progress=opts.progress)
    else:
        targets = OnTheFlyTeacher(teacher, items, d.resolution)
    train_set = SoftTargetDataset(list(zip([i.path for i in items], masks)), targets, cfg.data, seed=cfg.seed)
    class_weights = class_weights_from(cfg) if cfg.train.class_weights else None
    work = opts.work or Path("runs/distill") / opts.out.name
    resume_from = _newest_checkpoint(work) if opts.resume else None
    if opts.resume and resume_from is None:
        print(f"no checkpoint under {work / 'checkpoints'}: starting from scratch", flush=True)
    try:
        result = train(
            cfg,
            work,
            resume_from=resume_from,
            train_set=train_set,
            loss_fn=build_distill_loss(d, class_weights),
        )
    except DatasetError as err:
        raise DistillError(str(err)) from None
    teacher.to(device)
    write_provenance(opts.out, config=cfg, extra={"options": opts})
    return write_student(result["checkpoint"], opts.out), result, cfg


def write_student(checkpoint: str | Path, out: Path) -> ManifestFile:
    """Copy a checkpoint's weights to out/m0.safetensors and write the one-member manifest last."""
    checkpoint = Path(checkpoint)
    meta = read_meta(checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    write_bytes(out / "m0.safetensors", (checkpoint / MODEL_FILE).read_bytes())
    entry = ManifestEntry(
        name=f"student-{meta['arch']}-{meta['encoder']}",
        arch=meta["arch"],
        encoder=meta["encoder"],
        image_size=meta["image_size"],
        mean=meta["mean"],
        std=meta["std"],
        weights="m0.safetensors",
        val_f1=meta.get("val_f1"),
        epoch=meta["epoch"],
        trial_id="distill",
        config=meta["config"],
    )
    return write_manifest(out, [entry])


def _newest_checkpoint(work: Path) -> Path | None:
    found = sorted((work / "checkpoints").glob("epoch_*"))
    return found[-1] if found else None
