"""The manifest schema: write_manifest records checksums atomically; read_manifest names the file and key."""

from __future__ import annotations

import hashlib
import json

import pytest

from configs import CLASSES
from tuning.manifest import MANIFEST_FORMAT, ManifestEntry, ManifestError, read_manifest, write_manifest


def entry(name: str = "m0", **changes) -> dict:
    return {
        "name": name,
        "arch": "FPN",
        "encoder": "mobilenet_v2",
        "image_size": 64,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.25, 0.25, 0.25],
        "weights": f"{name}.safetensors",
        "val_f1": 0.5,
        "trial_id": "t0",
        "config": {"seed": 0},
        **changes,
    }


@pytest.fixture
def folder(tmp_path):
    for name, data in (("m0", b"weights zero"), ("m1", b"weights one")):
        (tmp_path / f"{name}.safetensors").write_bytes(data)
    return tmp_path


def _rewrite(path, **member_changes):
    raw = json.loads(path.read_text())
    raw["members"][0].update(member_changes)
    path.write_text(json.dumps(raw))


def test_write_manifest_records_each_weights_checksum_and_reads_back(folder):
    written = write_manifest(folder, [entry("m0"), ManifestEntry(**entry("m1", val_f1=0.4))])
    raw = json.loads((folder / "manifest.json").read_text())
    assert raw["format"] == MANIFEST_FORMAT and raw["classes"] == list(CLASSES)
    assert [m["sha256"] for m in raw["members"]] == [
        hashlib.sha256(b"weights zero").hexdigest(),
        hashlib.sha256(b"weights one").hexdigest(),
    ]
    assert sorted(p.name for p in folder.iterdir()) == ["m0.safetensors", "m1.safetensors", "manifest.json"]

    read = read_manifest(folder)  # a folder means its manifest.json
    assert read.path == written.path == folder / "manifest.json"
    assert read.members == written.members
    m0 = read.members[0]
    assert (m0.name, m0.image_size, m0.mean, m0.val_f1) == ("m0", 64, (0.5, 0.5, 0.5), 0.5)
    assert m0.config == {"seed": 0}
    assert read.weights_path(m0) == folder / "m0.safetensors"


def test_write_manifest_refuses_missing_weights_and_writes_nothing(folder):
    with pytest.raises(ManifestError, match=r"members\[1\]: weights .*gone.safetensors: file not found"):
        write_manifest(folder, [entry("m0"), entry("m1", weights="gone.safetensors")])
    assert not (folder / "manifest.json").exists()


def test_write_manifest_refuses_repeated_names(folder):
    repeated = r"manifest.json: members: names must be unique; repeated: \['m0'\]"
    with pytest.raises(ManifestError, match=repeated):
        write_manifest(folder, [entry("m0"), entry("m0", weights="m1.safetensors")])


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"image_size": 50}, "member 'm0': image_size: must be a multiple of 32 (>= 32), got 50"),
        ({"std": [0.2, 0.0, 0.2]}, "member 'm0': std: must be positive"),
        ({"mean": [0.5, 0.5]}, "member 'm0': mean: must be 3 numbers (RGB), got [0.5, 0.5]"),
        ({"arch": None}, "member 'm0': arch: "),
        ({"colour": "red"}, "member 'm0': colour: unknown key"),
        ({"weights": "gone.safetensors"}, "member 'm0': weights "),
    ],
)
def test_read_manifest_names_the_file_member_and_key(folder, changes, message):
    path = write_manifest(folder, [entry("m0")]).path
    _rewrite(path, **changes)
    with pytest.raises(ManifestError) as err:
        read_manifest(path)
    assert str(err.value).startswith(f"{path}: {message}")
    assert "\n" not in str(err.value)


def test_read_manifest_reports_a_missing_key_by_name(folder):
    path = write_manifest(folder, [entry("m0")]).path
    raw = json.loads(path.read_text())
    del raw["members"][0]["encoder"]
    path.write_text(json.dumps(raw))
    with pytest.raises(ManifestError, match=r"member 'm0': encoder: missing key$"):
        read_manifest(path)


def test_read_manifest_checks_format_and_class_order(folder):
    path = write_manifest(folder, [entry("m0")]).path
    raw = json.loads(path.read_text())
    path.write_text(json.dumps({**raw, "format": 2}))
    with pytest.raises(ManifestError, match=r"manifest.json: format: 2 is not supported; expected 1"):
        read_manifest(path)
    path.write_text(json.dumps({**raw, "classes": CLASSES[1:] + CLASSES[:1]}))
    with pytest.raises(ManifestError, match="classes: .* differ from the class table"):
        read_manifest(path)
    path.write_text(json.dumps({**raw, "members": []}))
    with pytest.raises(ManifestError, match="members: "):
        read_manifest(path)
    path.write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        read_manifest(path)


@pytest.mark.parametrize(
    "weights, expected",
    [
        (
            "../outside/x.safetensors",
            r"member 'm0': weights: '\.\./outside/x\.safetensors' leaves the manifest's folder",
        ),
        ("sub/../../x.safetensors", r"leaves the manifest's folder"),
        ("..\\x.safetensors", r"leaves the manifest's folder"),
        ("/etc/x.safetensors", r"member 'm0': weights: '/etc/x\.safetensors' is an absolute path"),
        ("C:\\models\\x.safetensors", r"is an absolute path"),
    ],
)
def test_weights_outside_the_manifests_folder_are_refused(tmp_path, folder, weights, expected):
    outside = tmp_path.parent / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "x.safetensors").write_bytes(b"weights elsewhere")  # exists: only the path is at fault
    path = folder / "manifest.json"
    path.write_text(
        json.dumps(
            {"format": MANIFEST_FORMAT, "classes": list(CLASSES), "members": [entry("m0", weights=weights)]}
        )
    )
    with pytest.raises(ManifestError, match=expected):
        read_manifest(path)


def test_a_weights_file_in_a_subfolder_is_allowed(folder):
    (folder / "sub").mkdir()
    (folder / "sub" / "m0.safetensors").write_bytes(b"weights zero")
    assert (
        write_manifest(folder, [entry("m0", weights="sub/m0.safetensors")]).members[0].weights
        == "sub/m0.safetensors"
    )


def test_a_huge_manifest_fails_fast_with_a_clear_error(folder, monkeypatch):
    import time

    import tuning.manifest as manifest_module
    from tuning.manifest import MAX_MEMBERS

    path = folder / "manifest.json"
    for n in (MAX_MEMBERS + 1, 50_000):
        path.write_text(
            json.dumps(
                {
                    "format": MANIFEST_FORMAT,
                    "classes": list(CLASSES),
                    "members": [entry(f"m{i}") for i in range(n)],
                }
            )
        )
        t0 = time.perf_counter()
        with pytest.raises(ManifestError, match=rf"members: {n} members, more than the {MAX_MEMBERS}"):
            read_manifest(path)
        assert time.perf_counter() - t0 < 5
    # 10^6 members would be ~220 MB of JSON: refused by its size before it is parsed
    monkeypatch.setattr(manifest_module, "MAX_BYTES", path.stat().st_size - 1)
    with pytest.raises(ManifestError, match=r"MiB, more than a manifest of at most"):
        read_manifest(path)


def test_repeated_names_are_found_in_linear_time():
    import time

    from tuning.manifest import repeated_names

    names = [f"m{i}" for i in range(10**6)] + ["m7", "m99"]
    t0 = time.perf_counter()
    assert repeated_names(names) == ["m7", "m99"]
    assert time.perf_counter() - t0 < 5  # the quadratic check this replaces takes hours at 10^6 names
