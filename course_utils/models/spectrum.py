"""A small CIFAR network with one knob along Xception's spectrum (lesson 03).

Every 3x3 layer is a :class:`~course_utils.layers.SegmentedConv`: a 1x1 conv, then a 3x3
conv over ``segments`` independent channel segments, each followed by BN-ReLU as in an
Inception module (Xception Fig. 3). ``segments=1`` is a 1x1 conv followed by a regular 3x3
conv; ``segments=channels`` is the extreme form, one spatial filter per channel (Fig. 4).
The width is the same in every stage, so one segment count means the same thing
throughout and the sweep of lesson 03 changes nothing else.
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn
from torch import Tensor

from .. import checks
from ..layers import ConvBNAct, SegmentedConv
from ._registry import register_model

__all__ = ["SpectrumNet"]


class SpectrumNet(nn.Module):
    """stem conv -> `stages` x (2x max pool, `blocks` SegmentedConv blocks) -> pool -> linear.

    Args:
        segments: channel segments of every 3x3 conv (Xception sec. 1.2); must divide
            `channels`.
        channels: the width of every stage.
    """

    def __init__(self, segments: int = 4, channels: int = 64, stages: int = 3, blocks: int = 1,
                 num_classes: int = 10, in_chans: int = 3) -> None:
        super().__init__()
        for name, v in (("channels", channels), ("stages", stages), ("blocks", blocks),
                        ("num_classes", num_classes), ("in_chans", in_chans)):
            checks.integer(name, v)
        checks.divides("segments", segments, "channels", channels)
        self.segments = segments
        body = [ConvBNAct(in_chans, channels, 3)]
        for _ in range(stages):
            body.append(nn.MaxPool2d(2))  # 32 -> 16 -> 8 -> 4: the blocks run at 16x16 and below
            for _ in range(blocks):
                body.append(SegmentedConv(channels, channels, segments=segments,
                                          norm_layer=nn.BatchNorm2d, act_layer="relu"))
        self.features = nn.Sequential(*body)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))  # (B, num_classes)


@register_model(
    family="spectrum", input_size=(3, 32, 32), num_classes=10, tags=("cifar", "small"),
    source="Xception sec. 1.2 / sec. 5: the segments spectrum, as a small CIFAR net for lesson 03",
)
def spectrum_net(segments: int = 4, channels: int = 64, **kwargs: Any) -> SpectrumNet:
    """SpectrumNet: 3 stages of one SegmentedConv block each at constant width."""
    return SpectrumNet(segments=segments, channels=channels, **kwargs)
