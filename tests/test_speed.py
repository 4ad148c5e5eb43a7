"""Speed settings: memory format per encoder, compiled training, padded val batches."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from torch.utils.data import DataLoader

import tuning.train as train_module
from configs.schema import ConfigError, load_config, parse_config
from data_prep.dataset import FaceParsingDataset
from data_prep.transforms import build_val_transform
from tuning.checkpoint import load_model_weights
from tuning.models import build_model
from tuning.speed import COMPILE_BACKEND_ENV, compile_model, memory_format_for, pad_batch
from tuning.train import evaluate, train

CUDA = torch.device("cuda")  # memory_format_for only reads the device type: no GPU needed


@pytest.mark.parametrize(
    ("encoder", "expected"),
    [
        ("efficientnet-b3", torch.contiguous_format),
        ("timm-efficientnet-b4", torch.contiguous_format),
        ("mobilenet_v2", torch.contiguous_format),
        ("mit_b2", torch.contiguous_format),
        ("resnet50", torch.channels_last),
        ("resnet101", torch.channels_last),
        ("tu-resnet34", torch.channels_last),
    ],
)
def test_auto_memory_format_keeps_depthwise_encoders_contiguous(encoder, expected):
    assert memory_format_for("auto", encoder, CUDA) == expected


def test_explicit_memory_format_wins_and_cpu_stays_contiguous():
    assert memory_format_for(True, "efficientnet-b3", CUDA) == torch.channels_last
    assert memory_format_for(False, "resnet50", CUDA) == torch.contiguous_format
    assert memory_format_for(True, "resnet50", torch.device("cpu")) == torch.contiguous_format


def test_channels_last_accepts_bool_or_auto_only():
    assert parse_config({}).train.channels_last == "auto"
    assert load_config("configs/celebamask.yaml").train.channels_last == "auto"
    assert parse_config({"train": {"channels_last": False}}).train.channels_last is False
    with pytest.raises(ConfigError, match=r"^config: train.channels_last: expected true, false or auto"):
        parse_config({"train": {"channels_last": "sometimes"}})


def test_pad_batch_fills_to_size_and_keeps_the_real_images():
    x = torch.randn(3, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    padded = pad_batch(x, 5)
    assert padded.shape == (5, 3, 8, 8) and torch.equal(padded[:3], x) and not padded[3:].any()
    assert padded.is_contiguous(memory_format=torch.channels_last)
    assert pad_batch(x, 3) is x


def test_padded_evaluation_scores_exactly_the_real_images(tiny_prepared):
    torch.manual_seed(0)
    model = build_model("Unet", "resnet18").eval()
    val = FaceParsingDataset(
        tiny_prepared, "val", build_val_transform(parse_config({"data": {"image_size": 64}}).data)
    )
    loader = DataLoader(val, batch_size=3)  # 8 images: the last batch has 2
    plain = evaluate(model, loader, "cpu")
    seen = []
    hook = model.register_forward_pre_hook(lambda _m, args: seen.append(args[0].shape[0]))
    padded = evaluate(model, loader, "cpu", pad_to=3)
    hook.remove()
    assert seen == [3, 3, 3]  # one input shape: the short last batch was padded
    assert padded["f1"] == pytest.approx(plain["f1"], abs=1e-6)
    assert padded["miou"] == pytest.approx(plain["miou"], abs=1e-6)


def test_compiled_training_checkpoints_the_plain_module(tiny_prepared, tmp_path, monkeypatch):
    # aot_eager traces the graphs like inductor but generates no code (inductor: minutes on a CPU).
    monkeypatch.setenv(COMPILE_BACKEND_ENV, "aot_eager")
    torch._dynamo.reset()
    cfg = parse_config(
        {
            "seed": 0,
            "data": {"datasets": [{"path": str(tiny_prepared)}], "image_size": 64, "num_workers": 0},
            "model": {"arch": "Unet", "encoder": "resnet18"},
            "train": {"epochs": 1, "batch_size": 4, "amp": "none", "compile": True, "max_train_batches": 2},
        }
    )
    compiled = []
    monkeypatch.setattr(train_module, "compile_model", lambda m: compiled.append(m) or compile_model(m))
    result = train(cfg, tmp_path)
    torch._dynamo.reset()
    assert len(compiled) == 1 and compiled[0]._compiled_call_impl is not None  # train.compile was honoured
    ckpt = tmp_path / "checkpoints" / "epoch_001"
    keys = list(load_file(str(ckpt / "model.safetensors")))
    assert keys and not [k for k in keys if "_orig_mod" in k]
    plain = build_model("Unet", "resnet18")
    load_model_weights(plain, ckpt / "model.safetensors")  # strict: every key matches
    assert json.loads((ckpt / "meta.json").read_text())["config"]["train"]["compile"] is True
    assert result["first_step_s"] > 0 and result["first_epoch_s"] > 0  # compile time is in both
