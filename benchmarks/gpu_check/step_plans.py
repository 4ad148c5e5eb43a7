"""What gpu_check measures: the full plan (512 px, the recipe's models, ~5 minutes on one H100 by
its time budgets) and the smoke plan (64 px, small encoders: the same code paths on a CPU)."""

from __future__ import annotations

MAIN = ("UnetPlusPlus", "efficientnet-b3")  # the seed's best model, the recipe's first


def _variant(arch_encoder: tuple[str, str], amp: str, memory_format: str, compile: bool) -> dict:
    arch, encoder = arch_encoder
    return {"arch": arch, "encoder": encoder, "amp": amp, "memory_format": memory_format, "compile": compile}


def full_variants() -> list[dict]:
    """Throughput variants, most telling first: a budget cut drops the tail, not the answers."""
    c, cl = "contiguous", "channels_last"
    resnets = [("DeepLabV3Plus", "resnet50"), ("FPN", "resnet34")]
    return [
        _variant(MAIN, "bf16", c, False),  # the new default (auto: contiguous for EfficientNet)
        _variant(MAIN, "bf16", cl, False),  # the old default, which stalled on an H100
        _variant(MAIN, "none", c, False),  # fp32: 84.7 img/s on the H100 before this change
        _variant(MAIN, "bf16", c, True),
        *[_variant(r, "bf16", cl, False) for r in resnets],  # auto: channels_last for ResNets
        *[_variant(r, "bf16", c, False) for r in resnets],
        *[_variant(r, "bf16", cl, True) for r in resnets],
        _variant(MAIN, "none", cl, False),
        _variant(MAIN, "bf16", cl, True),
        _variant(MAIN, "none", c, True),
        _variant(MAIN, "none", cl, True),
    ]


def smoke_variants(cuda: bool) -> list[dict]:
    """One small model: each memory format, compile off and on (+ bf16 on a GPU): every code path once."""
    small = ("FPN", "resnet18")
    rows = [_variant(small, "none", "contiguous", False), _variant(small, "none", "channels_last", True)]
    return rows + ([_variant(small, "bf16", "contiguous", False)] if cuda else [])


PROFILE_VARIANTS = [
    {"name": "after", "amp": "bf16", "memory_format": "contiguous"},  # train.channels_last: auto
    {"name": "before", "amp": "bf16", "memory_format": "channels_last"},  # the old celebamask.yaml
]


def scale_budgets(plan: dict, factor: float) -> dict:
    """The plan with every section's time budget and per-child timeout multiplied by factor."""
    return {
        name: {k: v * factor if k in ("budget_s", "timeout_s") else v for k, v in section.items()}
        for name, section in plan.items()
    }


def plan_for(smoke: bool, cuda: bool) -> dict:
    """The sizes, models and time budgets of every section."""
    if smoke:
        return {
            "data": {"size": 64, "synth_size": 64, "faces": 32, "val_fraction": 0.25, "test_fraction": 0.125, "workers": 1},
            "throughput": {
                "size": 64, "batch_size": 2, "steps": 2, "warm_steps": 1, "timeout_s": 150, "budget_s": 240,
                "variants": smoke_variants(cuda),
            },
            "profile": {
                "arch": "UnetPlusPlus", "encoder": "efficientnet-b0", "size": 64, "batch_size": 1, "steps": 1,
                "warm_steps": 1, "timeout_s": 150, "budget_s": 150, "variants": PROFILE_VARIANTS[:1],
            },
            "loader": {"workers": [0, 2], "batch_size": 4, "batches": 4},
            "train": {
                "members": [("FPN", "resnet18"), ("Unet", "resnet18")], "epochs": 2, "batch_size": 4,
                "workers": 0, "max_train_batches": 1,
            },
            "ensemble": {"images": 4, "batch_size": 4, "repeat": 1},
            "share": {
                "arch": "FPN", "encoder": "resnet18", "size": 64, "batch_size": 4, "amp": "bf16",
                "memory_format": "channels_last", "duration_s": 3, "timeout_s": 120,
            },
        }  # fmt: skip
    return {
        "data": {"size": 512, "synth_size": 1024, "faces": 200, "val_fraction": 0.12, "test_fraction": 0.12, "workers": 16},
        "throughput": {
            "size": 512, "batch_size": 16, "steps": 20, "warm_steps": 3, "timeout_s": 45, "budget_s": 110,
            "variants": full_variants(),
        },
        "profile": {
            "arch": MAIN[0], "encoder": MAIN[1], "size": 512, "batch_size": 16, "steps": 3, "warm_steps": 2,
            "timeout_s": 40, "budget_s": 60, "variants": PROFILE_VARIANTS,
        },
        "loader": {"workers": [1, 4, 8, 12], "batch_size": 16, "batches": 6},
        "train": {
            "members": [MAIN, ("FPN", "resnet34")], "epochs": 2, "batch_size": 16, "workers": 8,
            "max_train_batches": None,
        },
        "ensemble": {"images": 24, "batch_size": 8, "repeat": 1},
        "share": {
            "arch": "FPN", "encoder": "resnet34", "size": 512, "batch_size": 16, "amp": "bf16",
            "memory_format": "channels_last", "duration_s": 8, "timeout_s": 120,
        },
    }  # fmt: skip
