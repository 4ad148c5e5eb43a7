"""The `export` command (python -m ensemble export): one member as ONNX or an smp save_pretrained folder."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from ensemble.core.choices import EXPORT_FORMATS, ONNX_OPSET

# The export (torch, smp, onnx) is imported where it runs: `--help` needs only the flags.
if TYPE_CHECKING:
    import torch


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--manifest", type=Path, required=True, help="models/NAME/manifest.json")
    p.add_argument("--member", help="member name (default: the manifest's only or first member)")
    p.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        required=True,
        help="onnx: one .onnx file (dynamic batch axis); smp: a save_pretrained folder "
        "that segmentation_models_pytorch.from_pretrained loads",
    )
    p.add_argument("--out", type=Path, required=True, help="the .onnx file or the smp folder to write")
    p.add_argument("--opset", type=int, default=ONNX_OPSET, help=f"ONNX opset (default {ONNX_OPSET})")
    p.add_argument(
        "--check-images",
        type=Path,
        help="folder or prepared dataset whose images (up to 8) check the export against torch "
        "(default: 8 seeded random inputs)",
    )


def _check_inputs(member, folder: Path | None) -> torch.Tensor:
    import numpy as np
    import torch

    from data_prep.layout import read_rgb
    from ensemble.core.batching import prepare_input
    from ensemble.core.inputs import discover

    if folder is None:
        return torch.from_numpy(
            np.random.default_rng(0)
            .normal(size=(8, 3, member.image_size, member.image_size))
            .astype(np.float32)
        )
    items = discover(folder, split="test").items[:8]
    return torch.stack([prepare_input(read_rgb(i.path), member.input_spec) for i in items])


def export_command_line(args: argparse.Namespace, member: str) -> str:
    """The command that makes this export again (for the model card)."""
    argv = ["python", "-m", "ensemble", "export", "--manifest", str(args.manifest), "--member", member]
    argv += ["--format", args.format, "--out", str(args.out)]
    if args.format == "onnx" and args.opset != ONNX_OPSET:
        argv += ["--opset", str(args.opset)]
    if args.check_images is not None:
        argv += ["--check-images", str(args.check_images)]
    return shlex.join(argv)


def main(args: argparse.Namespace) -> int:
    from ensemble.core.members import load_manifest
    from ensemble.export.model_export import ExportError, check_export, export_onnx, export_smp
    from tuning.manifest import read_manifest

    bagged = {b.name: b.members for b in read_manifest(args.manifest).bags}
    if bagged and (args.member is None or args.member in bagged):
        bag = args.member or next(iter(bagged))
        raise ExportError(
            f"{args.manifest}: {bag!r} is a bag of {len(bagged[bag])} models (a refit), and one "
            f"exported model is one network: export one of them (--member {bagged[bag][0]}), or distill "
            f"the bagged ensemble into one model first (python -m ensemble distill --recipe RECIPE ...)"
        )
    manifest = load_manifest(args.manifest, "cpu", bags=False)
    names = [m.name for m in manifest.members]
    name = args.member or names[0]
    if name not in names:
        raise ExportError(f"{args.manifest}: no member {name!r}; members are {names}")
    member = manifest.members[names.index(name)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.format == "onnx":
        export_onnx(member, args.out, args.opset)
    else:
        export_smp(member, args.out, manifest_path=args.manifest, command=export_command_line(args, name))
    check = check_export(member, args.out, args.format, _check_inputs(member, args.check_images))
    print(
        f"wrote {args.out} ({args.format}{f', opset {args.opset}' if args.format == 'onnx' else ''}); "
        f"checked on {check['images']} inputs: argmax agrees on {check['argmax_agreement']:.4%} of pixels, "
        f"largest logit difference {check['max_abs_logit_diff']:.2e}"
    )
    return 0
