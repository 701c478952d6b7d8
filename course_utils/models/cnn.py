"""A compact, fast baseline CNN for CPU classrooms.

``cifar_cnn`` is a ResNet-9-style net (the DAWNBench CIFAR-10 design by D. Page, at a
quarter of its width by default): conv-BN-ReLU units, three 2x max pools, two residual
pairs, global max pool, a linear classifier with scaled logits. It trains to useful
CIFAR-10 accuracy in a few epochs, so lessons have a baseline that runs on 2 cores.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .. import checks
from ..layers import ConvBNAct
from ._registry import register_model

__all__ = ["CifarCNN"]


class _Residual(nn.Module):
    """x + f(x) with f = two 3x3 conv-BN-ReLU units at constant width."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(ConvBNAct(channels, channels), ConvBNAct(channels, channels))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class CifarCNN(nn.Module):
    """ResNet-9-style CNN: widths w, 2w, 4w, 8w.

    Args:
        width: w, channels of the first conv (64 in the original ResNet-9; 16 here so an
            epoch of CIFAR-10 takes about a minute on 2 CPU cores).
        logit_scale: multiplies the logits (0.125 in ResNet-9; keeps early softmax soft).
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 3,
        width: int = 16,  # ResNet-9 uses 64; 16 is ~16x cheaper
        logit_scale: float = 0.125,  # ResNet-9 (DAWNBench) value
    ) -> None:
        super().__init__()
        checks.integer("num_classes", num_classes)
        checks.integer("in_chans", in_chans)
        checks.integer("width", width)
        w = width
        self.features = nn.Sequential(
            ConvBNAct(in_chans, w),
            ConvBNAct(w, 2 * w),
            nn.MaxPool2d(2),  # 32 -> 16
            _Residual(2 * w),
            ConvBNAct(2 * w, 4 * w),
            nn.MaxPool2d(2),  # 16 -> 8
            ConvBNAct(4 * w, 8 * w),
            nn.MaxPool2d(2),  # 8 -> 4
            _Residual(8 * w),
        )
        self.num_features = 8 * w
        self.fc = nn.Linear(8 * w, num_classes, bias=False)
        self.logit_scale = logit_scale

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        x = torch.flatten(torch.amax(x, dim=(2, 3)), 1)  # (B, 8w, h, w) -> (B, 8w)
        return self.fc(x) * self.logit_scale


@register_model(
    family="cnn", input_size=(3, 32, 32), num_classes=10, tags=("cifar", "small"),
    source="ResNet-9 (DAWNBench, D. Page) at width 16: the fast CPU baseline",
)
def cifar_cnn(**kwargs: Any) -> CifarCNN:
    """The fast CPU baseline: ResNet-9 layout, width 16 (about 0.4M parameters)."""
    return CifarCNN(**kwargs)
