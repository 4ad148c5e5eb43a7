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
from ensemble.export.model_card import model_card
from ensemble.export.model_export import OPSET, ExportError, export_onnx, export_smp, onnx_logits

from ensemble_fixtures import make_face_dataset, make_image_folder, write_manifest


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


def test_smp_export_writes_our_model_card(tmp_path, capsys):
    prep = make_face_dataset(tmp_path / "prep", {"train": 2, "val": 1, "test": 1})
    config = {"data": {"datasets": [{"path": str(prep.root), "weight": 1.0}]}}
    manifest = write_manifest(tmp_path / "models", [{"config": config, "val_f1": 0.8125, "trial_id": "t0"}])
    per_class = {c: 0.5 + i / 100 for i, c in enumerate(CLASSES)}
    (tmp_path / "models" / "per_class_f1.csv").write_text(
        "trial_id,arch,encoder,epoch," + ",".join(CLASSES) + "\n"
        "t0,FPN,mobilenet_v2,3," + ",".join(str(v) for v in per_class.values()) + "\n"
    )
    out = tmp_path / "smp"
    argv = ["export", "--manifest", str(manifest), "--format", "smp", "--out", str(out)]
    assert ensemble_main(argv) == 0, capsys.readouterr().err
    card = (out / "README.md").read_text()
    assert "[More Information Needed]" not in card and "license: mit" not in card
    front = card.split("---")[1]
    assert "license: other" in front and "- test" in front  # dataset.json's source
    assert "val F1: **0.8125**" in card
    assert f"| l_eye | {per_class['l_eye']:.4f} |" in card  # per-class F1 from per_class_f1.csv
    assert str(prep.root) in card and "| 2 / 1 / 1 |" in card  # the training data and its splits
    assert "non-commercial research" in card and "CelebAMask-HQ" in card
    assert "| architecture | FPN |" in card and "| image size | 64 x 64 |" in card
    assert "| 4 | l_eye | r_eye |" in card  # the class table with flip partners
    assert f"python -m ensemble export --manifest {manifest} --member m0 --format smp --out {out}" in card


def test_model_card_without_recorded_data_still_has_the_licence(member_and_faces):
    card = model_card(member_and_faces[2])  # the fixture's member: config {}, no per_class_f1.csv
    assert "Not recorded" in card and "license: other" in card and "non-commercial research" in card
    assert "[More Information Needed]" not in card and "| search trial | t0 |" in card
