"""A small CIFAR network with one knob along Xception's spectrum (lesson 03).

Every 3x3 layer is a :class:`~course_utils.layers.SegmentedConv`: a 1x1 conv, then a 3x3
conv over ``segments`` independent channel segments, each followed by BN-ReLU as in an
Inception module (Xception Fig. 3). ``segments=1`` is a 1x1 conv followed by a regular 3x3
conv; ``segments=channels`` is the extreme form, one spatial filter per channel (Fig. 4).
The width is the same in every stage, so one segment count means the same thing
throughout and the sweep of lesson 03 changes nothing else.

``mid_act=None`` drops the ReLU between the 1x1 and the segmented 3x3 (BN stays), the
form Xception found best for separable convolutions (Fig. 10). :func:`matched_width`
finds, for a segment count, the width whose parameter count is closest to a target
(counted on the meta device), so that a sweep can hold capacity fixed.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn as nn
from torch import Tensor

from .. import checks
from ..layers import ConvBNAct, SegmentedConv, create_act
from ._registry import register_model

__all__ = ["SpectrumNet", "spectrum_params", "matched_width"]


class SpectrumNet(nn.Module):
    """stem conv -> `stages` x (2x max pool, `blocks` SegmentedConv blocks) -> pool -> linear.

    Args:
        segments: channel segments of every 3x3 conv (Xception sec. 1.2); must divide
            `channels`.
        channels: the width of every stage.
        mid_act: the activation between each block's 1x1 conv and its segmented 3x3
            ("relu", the default, as in an Inception module; None: none, BN kept).
    """

    def __init__(self, segments: int = 4, channels: int = 64, stages: int = 3, blocks: int = 1,
                 num_classes: int = 10, in_chans: int = 3, mid_act: Optional[str] = "relu") -> None:
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
                block = SegmentedConv(channels, channels, segments=segments,
                                      norm_layer=nn.BatchNorm2d, act_layer="relu")
                block.act1 = create_act(mid_act, inplace=True, name="mid_act")  # None: skipped
                body.append(block)
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


def spectrum_params(segments: int, channels: int, **kwargs: Any) -> int:
    """Parameters of ``SpectrumNet(segments, channels, **kwargs)``, counted on the meta
    device (no memory allocated, no initialisation run)."""
    with torch.device("meta"):
        model = SpectrumNet(segments=segments, channels=channels, **kwargs)
    return sum(p.numel() for p in model.parameters())


def matched_width(target_params: int, segments: Optional[int] = None, *, max_width: int = 2048,
                  **kwargs: Any) -> tuple[int, int]:
    """The width (``channels``) of a SpectrumNet with ``segments`` segments whose parameter
    count is closest to ``target_params`` (relative error; the smaller width on a tie), and
    that count: ``(width, params)``. The width must be a multiple of ``segments``;
    ``segments=None`` is the extreme form, one segment per channel (segments = width).
    ``kwargs``: SpectrumNet's other arguments (stages, blocks, num_classes, in_chans,
    mid_act). The count grows with the width, so a bisection over the allowed widths finds
    it in a few counts."""
    checks.integer("target_params", target_params, 1)
    checks.integer("max_width", max_width, 1)
    if segments is not None:
        checks.integer("segments", segments, 1)
    step = 1 if segments is None else segments

    def params(k: int) -> int:  # the k-th allowed width, k >= 1
        w = k * step
        return spectrum_params(w if segments is None else segments, w, **kwargs)

    lo, hi = 1, max_width // step  # smallest k with params(k) >= target, by bisection
    if hi < 1:
        raise ValueError(f"max_width: {max_width} is below segments={segments}; allowed: "
                         "a width of at least one segment")
    if params(hi) < target_params:
        raise ValueError(f"target_params: {target_params:,} needs a width above max_width="
                         f"{max_width} ({params(hi):,} parameters there); allowed: a smaller target")
    while lo < hi:
        mid = (lo + hi) // 2
        if params(mid) >= target_params:
            hi = mid
        else:
            lo = mid + 1
    best = min((k for k in (lo - 1, lo) if k >= 1),
               key=lambda k: (abs(params(k) - target_params) / target_params, k))
    return best * step, params(best)
