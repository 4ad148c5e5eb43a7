"""Build any segmentation-models-pytorch architecture/encoder pair with 19 output classes."""
from __future__ import annotations

import segmentation_models_pytorch as smp
import torch

from configs import NUM_CLASSES


def build_model(arch: str, encoder: str, encoder_weights: str | None = None,
                num_classes: int = NUM_CLASSES) -> torch.nn.Module:
    """smp.create_model(arch, encoder, classes=19); raises ValueError naming a bad arch/encoder."""
    return smp.create_model(arch, encoder_name=encoder, encoder_weights=encoder_weights,
                            classes=num_classes)
