"""Export of one member: ONNX (checked with onnxruntime) and smp's save_pretrained folder."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from configs import CLASSES
from data_prep.layout import read_rgb
from ensemble.__main__ import main as ensemble_main
from ensemble.core.batching import prepare_input
from ensemble.core.members import load_manifest
from ensemble.export.model_export import OPSET, ExportError, export_onnx, export_smp, onnx_logits

from ensemble_fixtures import make_image_folder, write_manifest


@pytest.fixture(scope="module")
def member_and_faces(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    manifest = write_manifest(root / "models")
    member = load_manifest(manifest).members[0]
    stems = make_image_folder(root / "faces", [(64, 64)] * 6 + [(80, 96), (100, 70)], seed=1)
    faces = torch.stack(
        [prepare_input(read_rgb(root / "faces" / f"{s}.png"), member.input_spec) for s in stems]
    )
    return root, manifest, member, faces


def test_onnx_argmax_agrees_with_torch_on_generated_faces(member_and_faces, tmp_path):
    pytest.importorskip("onnxruntime")
    _, _, member, faces = member_and_faces
    path = export_onnx(member, tmp_path / "m.onnx")
    with torch.inference_mode():
        expected = member.model(faces).numpy()
    got = onnx_logits(path, faces)  # exported with batch 1, run with batch 8: the axis is dynamic
    assert got.shape == (8, len(CLASSES), 64, 64)
    agreement = (got.argmax(1) == expected.argmax(1)).mean()
    assert agreement >= 0.999, agreement

    import onnx

    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["classes"]) == list(CLASSES)
    assert json.loads(meta["flip_partners"])["l_eye"] == "r_eye"
    assert int(meta["opset"]) == OPSET and proto.opset_import[0].version == OPSET
    assert json.loads(meta["mean"]) == list(member.mean) and int(meta["image_size"]) == 64


def test_smp_folder_loads_with_from_pretrained_and_predicts_the_same(member_and_faces, tmp_path):
    import segmentation_models_pytorch as smp

    _, _, member, faces = member_and_faces
    path = export_smp(member, tmp_path / "smp")
    assert (path / "model.safetensors").is_file() and (path / "config.json").is_file()
    assert not [p for p in path.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".pkl")]  # no pickles
    loaded = smp.from_pretrained(str(path)).eval()
    with torch.inference_mode():
        torch.testing.assert_close(loaded(faces), member.model(faces))
    assert json.loads((path / "faceparse.json").read_text())["classes"] == list(CLASSES)


def test_export_command_writes_and_checks_the_member(member_and_faces, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    root, manifest, _, _ = member_and_faces
    out = tmp_path / "student.onnx"
    rc = ensemble_main(
        [
            "export",
            "--manifest",
            str(manifest),
            "--member",
            "m0",
            "--format",
            "onnx",
            "--out",
            str(out),
            "--check-images",
            str(root / "faces"),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert out.is_file() and "argmax agrees on 100" in capsys.readouterr().out
    rc = ensemble_main(
        [
            "export",
            "--manifest",
            str(manifest),
            "--member",
            "nope",
            "--format",
            "smp",
            "--out",
            str(tmp_path / "x"),
        ]
    )
    assert rc == 2 and "no member 'nope'" in capsys.readouterr().err


def test_onnx_export_without_onnx_names_the_extra(member_and_faces, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(ExportError, match=r"pip install '\.\[export\]'"):
        export_onnx(member_and_faces[2], tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
