"""Res2Net / Res2NeXt (Gao et al., "Res2Net: A New Multi-scale Backbone Architecture").

A ResNet whose bottleneck 3x3 conv is a :class:`~course_utils.layers.Res2NetModule`.
One module, :class:`Res2Net`; variants are dicts of its arguments (timm's
``dict(layers=[3, 4, 6, 3], base_width=26, scale=4)``); thin builders register them.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional, Sequence

import torch
from torch import Tensor, nn

from ..layers import ConvBNAct, Res2NetModule, _check_positive
from ._registry import register_model

__all__ = ["Res2Net"]


class _Bottle2neck(nn.Module):
    """1x1 conv (to s * w) -> Res2Net module (hierarchy + 1x1 fusion to 4 * planes, BN) -> + shortcut -> ReLU.

    w = floor(planes * base_width / 64) * cardinality, as in the Res2Net reference code
    ("26w" is w at planes = 64; "6c x 24w" is 6 groups of 24 channels at planes = 64).
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        base_width: int = 26,
        scale: int = 4,
        cardinality: int = 1,
        attn_layer: Any = None,
        first: bool = False,
    ) -> None:
        super().__init__()
        _check_positive("base_width", base_width)
        _check_positive("cardinality", cardinality)
        width = int(math.floor(planes * base_width / 64.0)) * cardinality
        if width < 1:
            raise ValueError(f"base_width={base_width} gives a split width of 0 at planes={planes}; expected more")
        out_channels = planes * self.expansion
        self.conv1 = ConvBNAct(in_channels, width * scale, kernel_size=1)
        self.res2 = Res2NetModule(
            width * scale,
            out_channels,
            scale=scale,
            groups=cardinality,
            stride=stride,
            stype="stage" if first else "normal",
            attn_layer=attn_layer,
            fusion_norm=True,
        )
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.res2(self.conv1(x))
        return self.relu(out + shortcut)


class Res2Net(nn.Module):
    """Res2Net / Res2NeXt with an ImageNet or a CIFAR stem.

    Args:
        layers: bottleneck blocks per stage ((3, 4, 6, 3) for Res2Net-50, (3, 3, 3) for -29).
        planes: bottleneck base width per stage (outputs are 4x); default 64, 128, 256, ...
        base_width: w at planes = 64 (26 for "26w").
        scale: s, subsets per Res2Net module.
        cardinality: C, groups of every 3x3 conv (1 for Res2Net, 6 or 8 for Res2NeXt-29).
        attn_layer: "se" for squeeze-excitation in every block (Res2Net-SE).
        stem: "imagenet" (7x7/2 conv, BN, ReLU, 3x3/2 max pool) or "cifar" (3x3 conv, BN, ReLU).
        stem_width: channels of the stem (64 in both papers' nets).
    """

    def __init__(
        self,
        layers: Sequence[int] = (3, 4, 6, 3),
        planes: Optional[Sequence[int]] = None,
        base_width: int = 26,
        scale: int = 4,
        cardinality: int = 1,
        attn_layer: Any = None,
        num_classes: int = 1000,
        in_chans: int = 3,
        stem: str = "imagenet",
        stem_width: int = 64,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        _check_positive("scale", scale)
        _check_positive("num_classes", num_classes)
        _check_positive("in_chans", in_chans)
        planes = tuple(planes) if planes is not None else tuple(64 * 2**i for i in range(len(layers)))
        if len(planes) != len(layers):
            raise ValueError(f"planes={planes!r} has {len(planes)} entries; expected one per stage ({len(layers)})")
        if stem == "imagenet":
            self.stem = nn.Sequential(
                ConvBNAct(in_chans, stem_width, kernel_size=7, stride=2),
                nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
            )
        elif stem == "cifar":
            self.stem = ConvBNAct(in_chans, stem_width, kernel_size=3)
        else:
            raise ValueError(f"stem={stem!r} is not allowed; expected 'imagenet' or 'cifar'")
        channels = stem_width
        stages = []
        for i, (n_blocks, p) in enumerate(zip(layers, planes)):
            _check_positive(f"layers[{i}]", n_blocks)
            blocks = []
            for j in range(n_blocks):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(
                    _Bottle2neck(channels, p, stride, base_width, scale, cardinality, attn_layer, first=(j == 0))
                )
                channels = p * _Bottle2neck.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.num_features = channels
        self.drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        self.fc = nn.Linear(channels, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.stages(self.stem(x))  # (B, 4 * planes[-1], H/r, W/r)

    def forward(self, x: Tensor) -> Tensor:
        x = self.forward_features(x)
        x = torch.flatten(x.mean(dim=(2, 3), keepdim=True), 1)  # (B, C, 1, 1) -> (B, C)
        return self.fc(self.drop(x))


_VARIANTS: Dict[str, Dict[str, Any]] = {
    # Res2Net paper Table 1 / reference code: Res2Net-50 26w x 4s
    "res2net50": dict(layers=(3, 4, 6, 3), base_width=26, scale=4),
    # Res2Net paper Table 3 (CIFAR-100): Res2NeXt-29, 6c x 24w x 4scale
    "res2next29_6cx24wx4s": dict(
        layers=(3, 3, 3), base_width=24, cardinality=6, scale=4, stem="cifar", num_classes=100
    ),
    # small and narrow; the second block of stage 1 is a "normal" one, so the hierarchical
    # additions of Eq. 3 are used (a stage block has none); a few minutes per epoch on 2 CPU cores
    "res2net_tiny": dict(
        layers=(2, 1, 1), planes=(16, 32, 64), base_width=32, scale=4, stem="cifar", stem_width=16, num_classes=10
    ),
}


def _res2net(variant: str, **kwargs: Any) -> Res2Net:
    args = dict(_VARIANTS[variant])
    args.update(kwargs)
    return Res2Net(**args)


@register_model(
    family="res2net", input_size=(3, 224, 224), num_classes=1000, test_input_size=(3, 32, 32), tags=("imagenet",),
    source="Res2Net paper Table 1 (26w x 4s); reference code: 25,699,120 params",
)
def res2net50(**kwargs: Any) -> Res2Net:
    """Res2Net-50, 26w x 4s, for ImageNet."""
    return _res2net("res2net50", **kwargs)


@register_model(
    family="res2net", input_size=(3, 32, 32), num_classes=100, test_input_size=(3, 16, 16), tags=("cifar",),
    source="Res2Net paper Table 3: Res2NeXt-29, 6c x 24w x 4scale, 24.3M (see course_utils/models/README.md)",
)
def res2next29_6cx24wx4s(**kwargs: Any) -> Res2Net:
    """Res2NeXt-29, 6c x 24w x 4s, for CIFAR-100."""
    return _res2net("res2next29_6cx24wx4s", **kwargs)


@register_model(
    family="res2net", input_size=(3, 32, 32), num_classes=10, tags=("cifar", "small"),
    source="a 4-block Res2Net (scale 4) sized for a CPU lesson",
)
def res2net_tiny(**kwargs: Any) -> Res2Net:
    """A tiny CIFAR Res2Net (blocks 2-1-1, planes 16-32-64, w=8 at planes 16, s=4)."""
    return _res2net("res2net_tiny", **kwargs)
