"""Model factory: valid pairs build, bad names list what is valid, pretrained weights offline."""

from __future__ import annotations

import json
import time

import huggingface_hub.constants as hf_constants
import pytest
import segmentation_models_pytorch as smp
import timm
import torch
import yaml
from safetensors.torch import save_file

from configs import NUM_CLASSES
from configs.schema import parse_config
from tuning import pretrained
from tuning.models import WeightsUnavailableError, build_model, prefetch_weights


def test_build_model_gives_19_channel_logits_at_input_size():
    model = build_model("Unet", "resnet18").eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 64, 64))
    assert out.shape == (1, NUM_CLASSES, 64, 64)


def test_unknown_architecture_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"'Unetz'.*'DeepLabV3Plus'.*'FPN'.*'Unet'"):
        build_model("Unetz", "resnet18")


def test_unknown_encoder_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"'resnet19'.*'mobilenet_v2'.*'resnet18'.*tu-"):
        build_model("Unet", "resnet19")


def test_unknown_timm_encoder_is_a_value_error():
    with pytest.raises(ValueError, match="not a timm model"):
        build_model("Unet", "tu-no_such_net")


def test_unknown_weights_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"'imagenet', 'ssl', 'swsl'"):
        build_model("Unet", "resnet18", "imagenet21k")


@pytest.fixture
def isolated_hub(monkeypatch, tmp_path):
    """An empty weights cache and an unreachable hub on localhost: no test touches the network."""
    monkeypatch.setattr(hf_constants, "ENDPOINT", "http://127.0.0.1:9")  # discard port: refused
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)  # what HF_HUB_OFFLINE=1 sets at import
    return tmp_path / "weights"


def test_missing_weights_offline_fail_fast_saying_how_to_fix(isolated_hub):
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError) as err:
        build_model("Unet", "resnet18", "imagenet", weights_cache=isolated_hub)
    assert time.monotonic() - start < 20
    message = str(err.value)
    assert "python -m tuning prefetch-weights --config FILE" in message
    assert "model.weights_cache" in message
    assert "127.0.0.1:9 is unreachable" in message
    assert str(isolated_hub) in message  # names the cache it looked in


def test_hf_hub_offline_fails_without_probing_the_hub(isolated_hub, monkeypatch):
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(pretrained, "hub_reachable", lambda *a, **k: pytest.fail("probed the hub offline"))
    with pytest.raises(WeightsUnavailableError, match="HF_HUB_OFFLINE is set"):
        build_model("Unet", "resnet18", "imagenet", weights_cache=isolated_hub)


def snapshot_dir(cache, repo_id: str, revision: str):
    """The folder huggingface_hub caches a repo revision in (models--<org>--<name>/snapshots/<rev>)."""
    folder = cache / "huggingface" / "hub" / ("models--" + repo_id.replace("/", "--"))
    return folder / "snapshots" / revision


def put_in_cache(cache, encoder: str, weights: str, state: dict) -> None:
    """Lay out smp's hub files the way huggingface_hub caches them (snapshots/<revision>/...)."""
    settings = smp.encoders.encoders[encoder]["pretrained_settings"][weights]
    snapshot = snapshot_dir(cache, settings["repo_id"], settings["revision"])
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps({"mean": [0.5] * 3, "std": [0.5] * 3}))
    save_file({k: v.contiguous() for k, v in state.items()}, str(snapshot / "model.safetensors"))


def test_cached_weights_load_without_network(isolated_hub):
    torch.manual_seed(123)
    reference = smp.encoders.get_encoder("resnet18").state_dict()
    put_in_cache(isolated_hub, "resnet18", "imagenet", reference)
    model = build_model("Unet", "resnet18", "imagenet", weights_cache=isolated_hub)
    loaded = model.encoder.state_dict()
    for key, value in reference.items():
        torch.testing.assert_close(loaded[key], value)


def test_cached_timm_weights_load_through_timm(isolated_hub):
    # timm repos are cached under their main branch: refs/main names the snapshot.
    torch.manual_seed(7)
    reference = timm.create_model("resnet10t").state_dict()  # the full classifier, as on the hub
    repo_id = timm.models.get_pretrained_cfg("resnet10t").hf_hub_id
    snapshot = snapshot_dir(isolated_hub, repo_id, "0" * 40)
    snapshot.mkdir(parents=True)
    save_file(reference, str(snapshot / "model.safetensors"))
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    model = build_model("Unet", "tu-resnet10t", "imagenet", weights_cache=isolated_hub)
    loaded = model.encoder.model.state_dict()  # timm's features_only model: no classifier
    assert "conv1.0.weight" in loaded and "fc.weight" not in loaded
    for key, value in loaded.items():
        torch.testing.assert_close(value, reference[key], msg=key)


def test_prefetch_fills_the_cache_once_per_encoder(isolated_hub):
    torch.manual_seed(0)
    put_in_cache(isolated_hub, "resnet18", "imagenet", smp.encoders.get_encoder("resnet18").state_dict())
    cfg = parse_config(
        {
            "model": {"encoder_weights": "imagenet", "weights_cache": str(isolated_hub)},
            "search": {"archs": {"Unet": ["resnet18"], "FPN": ["resnet18"]}},
        }
    )
    done = prefetch_weights(cfg)
    assert len(done) == 1 and done[0].startswith("resnet18")
    cfg_missing = cfg.with_overrides({"search.archs": {"Unet": ["resnet18", "resnet34"]}})
    with pytest.raises(WeightsUnavailableError, match="resnet34"):
        prefetch_weights(cfg_missing)
    assert prefetch_weights(cfg.with_overrides({"model.encoder_weights": None})) == []


def test_resolve_device_picks_cpu_here_and_refuses_missing_cuda():
    from tuning.models import resolve_device

    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")


def test_prefetch_command_reports_missing_weights_in_one_line(isolated_hub, tmp_path, capsys):
    from tuning.__main__ import main as tuning_main

    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": {"encoder_weights": "imagenet", "weights_cache": str(isolated_hub)},
                "search": {"archs": {"Unet": ["resnet18"]}},
            }
        )
    )
    assert tuning_main(["prefetch-weights", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "resnet18" in err and "Traceback" not in err
