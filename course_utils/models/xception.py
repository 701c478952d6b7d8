"""Xception (Chollet 2017): a linear stack of depthwise separable convolutions with residuals.

Entry flow (stem + 3 downsampling blocks), middle flow (8 identical blocks), exit flow
(one downsampling block + 2 separable convs), global average pool, logistic regression
(Xception Fig. 5). Every conv and separable conv is followed by BN; convs and separable
convs carry no bias. At 1000 classes: 22,855,952 parameters (Xception Table 3).

One module, :class:`Xception`; its widths and depths are arguments, so the 32x32 and
tiny variants are data, not copied classes.
"""

from __future__ import annotations

from typing import Any, Dict, Sequence

import torch
from torch import Tensor, nn

from .. import checks
from ..layers import ConvBNAct, LayerArg, SeparableConv2d
from ._registry import register_model

__all__ = ["Xception"]


class _XceptionBlock(nn.Module):
    """[ReLU] SepConv BN, repeated per entry of ``channels``; a 3x3/2 max pool when
    ``stride`` is 2; plus a linear residual (identity, or 1x1 conv + BN when the shape changes).
    """

    def __init__(
        self,
        in_channels: int,
        channels: Sequence[int],
        stride: int = 1,
        start_with_relu: bool = True,
        residual: bool = True,
        mid_act: LayerArg = None,
        order: str = "depthwise_first",
    ) -> None:
        super().__init__()
        layers = []
        c = in_channels
        for i, out in enumerate(channels):
            if i > 0 or start_with_relu:
                # not in place: the block input is still needed by the residual
                layers.append(nn.ReLU(inplace=i > 0))
            layers.append(SeparableConv2d(c, out, 3, mid_act=mid_act, order=order))
            layers.append(nn.BatchNorm2d(out))
            c = out
        if stride != 1:
            layers.append(nn.MaxPool2d(3, stride=stride, padding=1))
        self.body = nn.Sequential(*layers)
        self.shortcut = None
        self.residual = residual
        if residual and (stride != 1 or c != in_channels):
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, c, 1, stride=stride, bias=False), nn.BatchNorm2d(c)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.body(x)
        if not self.residual:
            return out
        return out + (x if self.shortcut is None else self.shortcut(x))


class Xception(nn.Module):
    """Xception with configurable widths, residuals and separable-conv details.

    Args:
        stem: "imagenet" (3x3/2 conv, 3x3 conv, both unpadded, as in Keras) or
            "cifar" (both 3x3 stride 1 padded, for 32x32 inputs).
        stem_channels: the two stem convs (32, 64).
        entry_channels: the three entry-flow blocks (128, 256, 728), each downsampling by 2.
        middle_channels, middle_blocks: the middle flow, 728 x 8 blocks of 3 separable convs.
        exit_channels: the exit block's two separable convs (728, 1024), downsampling by 2.
        head_channels: the final two separable convs (1536, 2048), each + BN + ReLU.
        residual: linear residual connections on/off (Xception Fig. 9).
        mid_act: activation between depthwise and pointwise ops: None, "relu", "elu" (Fig. 10).
        order: "depthwise_first" (Xception) or "pointwise_first" (extreme Inception).
        drop_rate: dropout before the classifier (0.5 on ImageNet, Xception section 4.3).
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        stem: str = "imagenet",
        stem_channels: Sequence[int] = (32, 64),
        entry_channels: Sequence[int] = (128, 256, 728),
        middle_channels: int = 728,
        middle_blocks: int = 8,
        exit_channels: Sequence[int] = (728, 1024),
        head_channels: Sequence[int] = (1536, 2048),
        residual: bool = True,
        mid_act: LayerArg = None,
        order: str = "depthwise_first",
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        checks.integer("num_classes", num_classes)
        checks.integer("in_chans", in_chans)
        checks.one_of("stem", stem, ["imagenet", "cifar"], show=repr)
        if middle_blocks < 0:
            raise ValueError(f"middle_blocks={middle_blocks!r} is not allowed; expected an integer >= 0")
        s1, s2 = stem_channels
        if stem == "imagenet":
            self.stem = nn.Sequential(
                ConvBNAct(in_chans, s1, 3, stride=2, padding=0), ConvBNAct(s1, s2, 3, padding=0)
            )
        else:
            self.stem = nn.Sequential(ConvBNAct(in_chans, s1, 3), ConvBNAct(s1, s2, 3))
        kw = dict(residual=residual, mid_act=mid_act, order=order)
        blocks, c = [], s2
        for i, out in enumerate(entry_channels):
            # the first block follows the stem's ReLU, so it does not start with one
            blocks.append(_XceptionBlock(c, (out, out), stride=2, start_with_relu=i > 0, **kw))
            c = out
        self.entry_flow = nn.Sequential(*blocks)
        blocks = []
        for _ in range(middle_blocks):
            blocks.append(_XceptionBlock(c, (middle_channels,) * 3, **kw))
            c = middle_channels
        self.middle_flow = nn.Sequential(*blocks)
        exit_block = _XceptionBlock(c, tuple(exit_channels), stride=2, **kw)
        c = exit_channels[-1]
        head = []
        for out in head_channels:
            head += [SeparableConv2d(c, out, 3, mid_act=mid_act, order=order), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            c = out
        self.exit_flow = nn.Sequential(exit_block, *head)
        self.num_features = c
        self.drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        self.fc = nn.Linear(c, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.exit_flow(self.middle_flow(self.entry_flow(self.stem(x))))  # (B, 2048, H/32, W/32)

    def forward(self, x: Tensor) -> Tensor:
        x = self.forward_features(x)
        x = torch.flatten(x.mean(dim=(2, 3), keepdim=True), 1)  # (B, C, 1, 1) -> (B, C)
        return self.fc(self.drop(x))


_VARIANTS: Dict[str, Dict[str, Any]] = {
    "xception": dict(drop_rate=0.5),  # Xception section 4.3: dropout 0.5 on ImageNet
    # same widths, stem without stride or cropping: 32 -> 16 -> 8 -> 4 (entry) -> 2 (exit)
    "xception_cifar": dict(stem="cifar", num_classes=10),
    # narrow and shallow (2 middle blocks) for a CPU lesson
    "xception_tiny": dict(
        stem="cifar",
        stem_channels=(16, 32),
        entry_channels=(64, 128, 192),
        middle_channels=192,
        middle_blocks=2,
        exit_channels=(192, 256),
        head_channels=(384, 512),
        num_classes=10,
    ),
}


def _xception(variant: str, **kwargs: Any) -> Xception:
    args = dict(_VARIANTS[variant])
    args.update(kwargs)
    return Xception(**args)


@register_model(
    family="xception", input_size=(3, 299, 299), num_classes=1000, test_input_size=(3, 32, 32), tags=("imagenet",),
    source="Xception Fig. 5, Table 3: 22,855,952 params",
)
def xception(**kwargs: Any) -> Xception:
    """Xception for ImageNet (299x299): 22,855,952 parameters at 1000 classes."""
    return _xception("xception", **kwargs)


@register_model(
    family="xception", input_size=(3, 32, 32), num_classes=10, test_input_size=(3, 32, 32), tags=("cifar",),
    source="Xception widths with a stride-1 padded stem for 32x32 inputs",
)
def xception_cifar(**kwargs: Any) -> Xception:
    """Xception for 32x32 inputs (same flows and widths; stem without downsampling)."""
    return _xception("xception_cifar", **kwargs)


@register_model(
    family="xception", input_size=(3, 32, 32), num_classes=10, tags=("cifar", "small"),
    source="a narrow 2-middle-block Xception sized for a CPU lesson",
)
def xception_tiny(**kwargs: Any) -> Xception:
    """A tiny Xception (widths 16-512, 2 middle blocks) for a few minutes on 2 CPU cores."""
    return _xception("xception_tiny", **kwargs)


@register_model(
    family="xception", input_size=(3, 32, 32), num_classes=10, tags=("cifar", "small"),
    source="lesson 02's Fig. 10 study: Xception sec. 4.6's separable stack without residuals",
)
def separable_stack(mid_act: LayerArg = None, width: int = 64, stages: int = 3,
                    num_classes: int = 10, in_chans: int = 3) -> nn.Sequential:
    """Lesson 02's network for the Fig. 10 question (the activation between depthwise and
    pointwise): a 3x3 stem, then `stages` x (2x max pool, SeparableConv2d with `mid_act`,
    BN, ReLU), global average pool, linear; no residual connections. 16,906 parameters
    at the defaults (mid_act adds none). The lesson builds the same network inline."""
    checks.integer("width", width)
    checks.integer("stages", stages)
    body = [nn.Conv2d(in_chans, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
            nn.ReLU(inplace=True)]
    for _ in range(stages):
        body += [nn.MaxPool2d(2), SeparableConv2d(width, width, 3, mid_act=mid_act),
                 nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
    return nn.Sequential(*body, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))
