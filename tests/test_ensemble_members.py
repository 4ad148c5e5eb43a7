"""Manifest loading: members build from safetensors; tampered, pickled or mismatched weights are refused."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from safetensors.torch import save_file

from configs import CLASSES
from ensemble.core.members import ManifestError, load_manifest
from tuning.models import build_model

from ensemble_fixtures import write_manifest


@pytest.fixture
def manifest(tmp_path):
    return write_manifest(tmp_path / "models")


def _edit(manifest, **changes):
    raw = json.loads(manifest.read_text())
    for key, value in changes.items():
        if key.startswith("member_"):
            raw["members"][0][key[len("member_") :]] = value
        else:
            raw[key] = value
    manifest.write_text(json.dumps(raw))


def test_load_manifest_builds_members_with_saved_weights_in_eval_mode(manifest):
    members = load_manifest(manifest).members
    assert [m.name for m in members] == ["m0"]
    m = members[0]
    assert (m.arch, m.encoder, m.image_size, m.val_f1) == ("FPN", "mobilenet_v2", 64, 0.5)
    assert not m.model.training
    from safetensors.torch import load_file

    saved = load_file(str(manifest.parent / "m0.safetensors"))
    for key, value in m.model.state_dict().items():
        assert torch.equal(value, saved[key]), key


def test_truncated_weights_are_refused(manifest):
    weights = manifest.parent / "m0.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ManifestError, match=r"member 'm0'.*(truncated|tampered)"):
        load_manifest(manifest)


def test_weights_with_a_broken_header_are_refused(manifest):
    weights = manifest.parent / "m0.safetensors"
    original = weights.read_bytes()
    data = bytearray(original)
    data[9:15] = b"}}]]{{"  # still starts like JSON, no longer parses
    weights.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match="member 'm0'.*unreadable safetensors file"):
        load_manifest(manifest)
    data = bytearray(original)
    data[8:16] = b"garbage!"  # not JSON at all
    weights.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match="member 'm0'.*not a safetensors file"):
        load_manifest(manifest)
    data[0:8] = (10**12).to_bytes(8, "little")  # a header length beyond the file
    weights.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match="bad header"):
        load_manifest(manifest)


def test_pickled_weights_renamed_safetensors_are_refused(manifest):
    state = build_model("FPN", "mobilenet_v2").state_dict()
    torch.save(state, manifest.parent / "m0.safetensors")
    with pytest.raises(ManifestError, match="member 'm0'.*torch.save .*pickled weights are refused"):
        load_manifest(manifest)


def test_pt_weights_are_refused_by_name(manifest):
    torch.save({}, manifest.parent / "m0.pt")
    _edit(manifest, member_weights="m0.pt")
    with pytest.raises(ManifestError, match=r"expected a \.safetensors file"):
        load_manifest(manifest)


def test_weights_of_another_architecture_are_refused_naming_the_member_and_keys(manifest):
    other = build_model("FPN", "resnet18")
    save_file(
        {k: v.contiguous() for k, v in other.state_dict().items()}, str(manifest.parent / "m0.safetensors")
    )
    with pytest.raises(
        ManifestError, match=r"member 'm0'.*do not match.*missing key\(s\) e\.g\. \['encoder\."
    ):
        load_manifest(manifest)


def test_weights_with_wrong_shapes_are_refused(manifest):
    wrong = build_model("FPN", "mobilenet_v2", num_classes=18)  # one class short
    save_file(
        {k: v.contiguous() for k, v in wrong.state_dict().items()}, str(manifest.parent / "m0.safetensors")
    )
    with pytest.raises(ManifestError, match=r"shape mismatch.*segmentation_head"):
        load_manifest(manifest)


def test_changed_weight_bytes_fail_the_manifest_checksum(manifest):
    weights = manifest.parent / "m0.safetensors"
    recorded = json.loads(manifest.read_text())["members"][0]["sha256"]
    assert recorded == hashlib.sha256(weights.read_bytes()).hexdigest()  # the writer records it
    load_manifest(manifest)  # intact: loads
    data = bytearray(weights.read_bytes())
    data[-100:-96] = b"\x11\x22\x33\x44"  # inside the tensor data: the header still parses
    weights.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match="sha256"):
        load_manifest(manifest)


def test_manifest_checks_format_classes_and_files(manifest):
    _edit(manifest, format=2)
    with pytest.raises(ManifestError, match="format: 2 is not supported"):
        load_manifest(manifest)
    _edit(manifest, format=1, classes=list(reversed(CLASSES)))
    with pytest.raises(ManifestError, match="differ from the class table"):
        load_manifest(manifest)
    _edit(manifest, classes=list(CLASSES), member_weights="gone.safetensors")
    with pytest.raises(ManifestError, match="gone.safetensors: file not found"):
        load_manifest(manifest)
    _edit(manifest, member_weights="m0.safetensors", member_image_size=50)
    with pytest.raises(ManifestError, match="multiple of 32"):
        load_manifest(manifest)
    with pytest.raises(ManifestError, match="manifest not found"):
        load_manifest(manifest.parent / "nope.json")
