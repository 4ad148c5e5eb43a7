"""Export one manifest member for deployment: ONNX (checked with onnxruntime) or smp's save_pretrained folder.

ONNX: input "image" (N, 3, S, S) float32, normalised with the member's mean/std; output "logits"
(N, 19, S, S); the batch axis is dynamic. metadata_props carry the class table, the flip
partners and the input spec, so a deployment needs no other file. Weights only in both formats:
the smp folder is config.json + model.safetensors (+ faceparse.json with the same metadata, and
README.md, the model card).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from configs import CLASSES, FLIP_PARTNER
from configs.errors import FaceParseError
from configs.optional import require
from data_prep.atomic import write_bytes, write_json, write_text
from ensemble.core.choices import EXPORT_FORMATS, ONNX_OPSET
from ensemble.core.members import Member
from ensemble.export.model_card import model_card

OPSET = ONNX_OPSET
FORMATS = EXPORT_FORMATS
INSTALL_HINT = "pip install '.[export]'  (installs onnx and onnxruntime)"


class ExportError(FaceParseError):
    """An export that cannot be made or does not reproduce the torch model."""


def metadata(member: Member) -> dict[str, str]:
    """What a deployment needs besides the weights (string values: ONNX metadata_props are strings)."""
    return {
        "classes": json.dumps(list(CLASSES)),
        "flip_partners": json.dumps({CLASSES[a]: CLASSES[b] for a, b in FLIP_PARTNER.items()}),
        "image_size": str(member.image_size),
        "mean": json.dumps(list(member.mean)),
        "std": json.dumps(list(member.std)),
        "arch": member.arch,
        "encoder": member.encoder,
        "name": member.name,
        "input": "image: (N, 3, S, S) float32 RGB, (x / 255 - mean) / std",
        "output": "logits: (N, 19, S, S); argmax over axis 1 gives class IDs",
    }


def _require_onnx():
    """onnx and onnxruntime (the export extra), or an ExportError naming it."""
    return tuple(require(m, "export", "ONNX export", ExportError) for m in ("onnx", "onnxruntime"))


def export_onnx(member: Member, path: Path, opset: int = OPSET) -> Path:
    """Write member as ONNX (dynamic batch axis, metadata_props) and check it against torch."""
    onnx, _ = _require_onnx()
    model = member.model.eval().to("cpu", memory_format=torch.contiguous_format)
    dummy = torch.zeros(1, 3, member.image_size, member.image_size)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        raw = Path(tmp) / "model.onnx"
        with warnings.catch_warnings():
            # torch >= 2.9 defaults to the torch.export-based exporter, which needs onnxscript; the
            # TorchScript exporter handles every smp model and warns that it is the legacy path.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (dummy,),
                str(raw),
                dynamo=False,
                opset_version=opset,
                input_names=["image"],
                output_names=["logits"],
                dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
            )
        proto = onnx.load(str(raw))
    for key, value in {**metadata(member), "opset": str(opset)}.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    write_bytes(path, proto.SerializeToString())
    return path


def onnx_logits(path: Path, images: torch.Tensor) -> np.ndarray:
    """Run an exported model with onnxruntime on (N, 3, S, S) float32 images."""
    _, ort = _require_onnx()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"image": images.numpy().astype(np.float32)})[0]


def export_smp(
    member: Member, path: Path, *, manifest_path: Path | None = None, command: str | None = None
) -> Path:
    """Write member as an smp save_pretrained folder (config.json + model.safetensors + faceparse.json).

    README.md is our model card (ensemble.export.model_card), not smp's generic one: val F1, training
    data, classes, the non-commercial licence of the weights and the command that exported them.
    """
    model = member.model.eval().to("cpu", memory_format=torch.contiguous_format)
    if not hasattr(model, "save_pretrained"):
        raise ExportError(
            f"member {member.name!r} ({type(model).__name__}) is not an smp model with save_pretrained"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        model.save_pretrained(str(tmp))  # huggingface_hub mixin: model.safetensors
        write_json(tmp / "faceparse.json", {k: _json_or_str(v) for k, v in metadata(member).items()})
        write_text(tmp / "README.md", model_card(member, manifest_path=manifest_path, command=command))
        if any(p.suffix in (".bin", ".pt", ".pth", ".pkl") for p in tmp.iterdir()):
            raise ExportError(f"save_pretrained wrote pickled weights in {tmp}; expected model.safetensors")
        # A folder cannot be renamed over atomically; the old export goes only once the new one is whole.
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _json_or_str(value: str):
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def smp_logits(path: Path, images: torch.Tensor) -> np.ndarray:
    """Load an smp folder with segmentation_models_pytorch.from_pretrained and run it on images."""
    import segmentation_models_pytorch as smp

    model = smp.from_pretrained(str(path)).eval()
    with torch.inference_mode():
        return model(images).numpy()


def check_export(
    member: Member, path: Path, fmt: str, images: torch.Tensor, min_agreement: float = 0.999
) -> dict:
    """Argmax agreement and largest logit difference of the export against torch on images."""
    model = member.model.eval().to("cpu")
    with torch.inference_mode():
        expected = model(images).numpy()
    got = onnx_logits(path, images) if fmt == "onnx" else smp_logits(path, images)
    agreement = float((got.argmax(1) == expected.argmax(1)).mean())
    result = {
        "format": fmt,
        "images": int(images.shape[0]),
        "argmax_agreement": agreement,
        "max_abs_logit_diff": float(np.abs(got - expected).max()),
    }
    if agreement < min_agreement:
        raise ExportError(
            f"{path}: the export's argmax agrees with torch on only {agreement:.4%} of "
            f"pixels (need {min_agreement:.1%})"
        )
    return result
