"""Res2Net / Res2NeXt (Gao et al., "Res2Net: A New Multi-scale Backbone Architecture").

A ResNet whose bottleneck 3x3 conv is a :class:`~course_utils.layers.Res2NetModule`.
One module, :class:`Res2Net`; variants are dicts of its arguments (timm's
``dict(layers=[3, 4, 6, 3], base_width=26, scale=4)``); thin builders register them.
Every block computes the Res2Net paper's Eq. 1 (the module's default ``form="paper"``).
:func:`load_timm_res2net_state` loads a timm ``res2net50_26w_4s``-style ``state_dict``.
"""

from __future__ import annotations

import math
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence

import torch
from torch import Tensor, nn

from .. import checks
from ..layers import ConvBNAct, Res2NetModule
from ._registry import register_model

__all__ = ["Res2Net", "load_timm_res2net_state", "timm_res2net_state"]


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
        checks.integer("base_width", base_width)
        checks.integer("cardinality", cardinality)
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
        checks.integer("scale", scale)
        checks.integer("num_classes", num_classes)
        checks.integer("in_chans", in_chans)
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
            checks.integer(f"layers[{i}]", n_blocks)
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


# ------------------------------------------------------------------- timm weights
def _timm_subset_order(scale: int) -> List[int]:
    """Our subset j (0-based) is timm's subset order[j]: timm's last subset is our first."""
    return [0] if scale == 1 else [scale - 1] + list(range(scale - 1))


def _channel_index(scale: int, width: int) -> Tensor:
    order = _timm_subset_order(scale)
    return torch.cat([torch.arange(k * width, (k + 1) * width) for k in order])


_TIMM_BLOCK_KEY = re.compile(r"layer(\d+)\.(\d+)\.(.+)")
_TIMM_BLOCK_PARTS = [  # (timm name, ours, which dim is split into subsets: 0 out, 1 in, None)
    (re.compile(r"conv1\.weight"), "conv1.conv.weight", 0),
    (re.compile(r"bn1\.(weight|bias|running_mean|running_var)"), "conv1.bn.{0}", 0),
    (re.compile(r"bn1\.(num_batches_tracked)"), "conv1.bn.{0}", None),
    (re.compile(r"convs\.(\d+)\.weight"), "res2.convs.{0}.conv.weight", None),
    (re.compile(r"bns\.(\d+)\.(.+)"), "res2.convs.{0}.bn.{1}", None),
    (re.compile(r"conv3\.weight"), "res2.fusion.weight", 1),
    (re.compile(r"bn3\.(.+)"), "res2.fusion_norm.{0}", None),
    (re.compile(r"se\.(fc1|fc2)\.(weight|bias)"), "res2.attn.{0}.{1}", None),
    (re.compile(r"downsample\.([01])\.(.+)"), "downsample.{0}.{1}", None),
]
_TIMM_TOP_PARTS = [
    (re.compile(r"conv1\.weight"), "stem.0.conv.weight"),
    (re.compile(r"bn1\.(.+)"), "stem.0.bn.{0}"),
    (re.compile(r"fc\.(weight|bias)"), "fc.{0}"),
]


def timm_res2net_state(model: "Res2Net", timm_state_dict: Mapping[str, Tensor]) -> Dict[str, Tensor]:
    """Rename and permute a timm Res2Net ``state_dict`` into ``model``'s keys and order.

    For timm's ``Bottle2neck`` networks with the plain ResNet stem and downsample
    (``res2net50_26w_4s``, ``_48w_2s``, ``_14w_8s``, ``_26w_6s``, ``_26w_8s``,
    ``res2net101_26w_4s``, ``res2next50``; not the ``d`` variants, whose stem and
    shortcut differ). See :func:`load_timm_res2net_state` for what is permuted and why.
    Raises ``ValueError`` naming every timm key it cannot place.
    """
    blocks = {(i, j): block for i, stage in enumerate(model.stages) for j, block in enumerate(stage)}
    out: Dict[str, Tensor] = {}
    unknown = []
    for key, value in timm_state_dict.items():
        m = _TIMM_BLOCK_KEY.fullmatch(key)
        if m is not None:
            i, j, rest = int(m.group(1)) - 1, int(m.group(2)), m.group(3)
            block = blocks.get((i, j))
            for pattern, ours, dim in _TIMM_BLOCK_PARTS if block is not None else []:
                part = pattern.fullmatch(rest)
                if part is not None:
                    if dim is not None:  # split into subsets: put them in our order
                        value = value.index_select(dim, _channel_index(block.res2.scale, block.res2.width))
                    out[f"stages.{i}.{j}." + ours.format(*part.groups())] = value
                    break
            else:
                unknown.append(key)
            continue
        for pattern, ours in _TIMM_TOP_PARTS:
            part = pattern.fullmatch(key)
            if part is not None:
                out[ours.format(*part.groups())] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(
            f"timm_state_dict has keys with no place in this Res2Net: {unknown[:8]}"
            f"{' ...' if len(unknown) > 8 else ''}; expected a timm Bottle2neck Res2Net of the same layout"
        )
    return out


def load_timm_res2net_state(model: "Res2Net", timm_state_dict: Mapping[str, Tensor], strict: bool = True):
    """Load the weights of a timm Res2Net (``timm.create_model("res2net50_26w_4s")``) into ``model``.

    Returns what ``model.load_state_dict`` returns. Key names are mapped (timm ->
    ours): ``conv1``/``bn1`` -> ``stem.0.conv``/``stem.0.bn``; ``layer{n}.{j}`` ->
    ``stages.{n-1}.{j}``, inside which ``conv1``/``bn1`` -> ``conv1.conv``/``conv1.bn``,
    ``convs.k``/``bns.k`` -> ``res2.convs.k.conv``/``res2.convs.k.bn``, ``conv3``/``bn3``
    -> ``res2.fusion``/``res2.fusion_norm``, ``se`` -> ``res2.attn``; ``downsample`` and
    ``fc`` keep their names.

    **The subsets are permuted.** timm (like the official Res2Net code it adapts) convolves
    the *first* s - 1 subsets and keeps the *last* one as the identity subset, concatenated
    last (average pooled in a 'stage' block); its ``convs[0]`` takes subset 1 alone and
    ``convs[k]`` takes subset k+1 plus the previous output. We number as the paper does
    (Eq. 1): y_1 = x_1 is the identity subset, first in the concatenation, and
    ``convs[k]`` is K_{k+2}. So our subset j is timm's subset j - 1 for j >= 2, and our
    subset 1 is timm's subset s: with 0-based subsets of width w, our channel block j
    takes timm's block ``[s-1, 0, 1, ..., s-2][j]``. That permutation is applied to the
    output channels (rows) of every block's first 1x1 conv and to its BN's vectors, so
    that the 1x1 conv emits the subsets in our order, and to the input channels (columns)
    of the fusion conv (timm's ``conv3``), so that it reads our concatenation as timm's
    reads its own. The 3x3 convs K_i map one to one (``convs.k`` -> ``res2.convs.k``).
    The stem, the shortcut and ``fc`` are not permuted.

    With these weights, our model in its default ``form="paper"`` computes timm's
    function, block by block and as a whole, 'stage' blocks included (stride 1 and 2:
    both pool the identity subset, as the official code does).
    A model built with ``form="report_eq3"`` loads the same weights but computes another
    function (y_2 = K_2(x_2 + y_1)).
    """
    return model.load_state_dict(timm_res2net_state(model, timm_state_dict), strict=strict)


_VARIANTS: Dict[str, Dict[str, Any]] = {
    # Res2Net paper Table 1 / reference code: Res2Net-50 26w x 4s
    "res2net50": dict(layers=(3, 4, 6, 3), base_width=26, scale=4),
    # Res2Net paper (TPAMI) Table 4 (CIFAR-100): Res2NeXt-29, 6c x 24w x 4scale
    "res2next29_6cx24wx4s": dict(
        layers=(3, 3, 3), base_width=24, cardinality=6, scale=4, stem="cifar", num_classes=100
    ),
    # small and narrow; the second block of stage 1 is a "normal" one, so the hierarchical
    # additions of Eq. 1 are used (a stage block has none); a few minutes per epoch on 2 CPU cores
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
    source="Res2Net paper (TPAMI) Table 4: Res2NeXt-29, 6c x 24w x 4scale, 24.3M (see course_utils/models/README.md)",
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
