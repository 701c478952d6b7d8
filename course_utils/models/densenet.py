"""DenseNet (Huang et al. 2017), CIFAR DenseNet-BC, and Dense2Net (Songkakul & Starliper).

One module, :class:`DenseNet`; variants are dicts of its arguments; thin public
builders register them. Module names follow torchvision (features.conv0,
features.denseblock1.denselayer1.norm1, ..., features.norm5, classifier), so a
torchvision DenseNet ``state_dict`` loads without any key mapping.

Dense2Net is the same network with every dense layer's 3x3 conv replaced by a
:class:`~course_utils.layers.Res2NetModule` (report Fig. 6): ``conv2_layer`` is the
one argument that differs.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from typing import Any, Callable, Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import checks
from ..layers import DenseBlock, Res2NetModule, Transition
from ._registry import register_model

__all__ = ["DenseNet", "densenet_bc", "dense2net_layer"]


class DenseNet(nn.Module):
    """DenseNet / DenseNet-BC / Dense2Net.

    Args:
        growth_rate: k, channels added by every dense layer.
        block_config: layers per dense block (e.g. (6, 12, 24, 16) for DenseNet-121).
        num_init_features: channels of the stem (2k for DenseNet-BC).
        bn_size: bottleneck factor (bottleneck width bn_size * k).
        compression: theta in (0, 1], transition output = floor(theta * C).
        drop_rate: dropout after each dense layer (0 in all the papers' ImageNet runs).
        stem: "imagenet" (7x7/2 conv, BN, ReLU, 3x3/2 max pool) or "cifar" (one 3x3 conv).
        memory_efficient: checkpoint concatenation + bottleneck (same results, less memory).
        conv2_layer: replaces each dense layer's 3x3 conv (Dense2Net: a Res2Net module).
        mid_channels: bottleneck width overriding bn_size * k (Dense2Net's s * w).
    """

    def __init__(
        self,
        growth_rate: int = 32,
        block_config: Sequence[int] = (6, 12, 24, 16),
        num_init_features: int = 64,
        bn_size: int = 4,
        compression: float = 0.5,
        drop_rate: float = 0.0,
        num_classes: int = 1000,
        in_chans: int = 3,
        stem: str = "imagenet",
        memory_efficient: bool = False,
        conv2_layer: Optional[Callable[[int, int], nn.Module]] = None,
        mid_channels: Optional[int] = None,
    ) -> None:
        super().__init__()
        checks.integer("growth_rate", growth_rate)
        checks.integer("num_classes", num_classes)
        checks.integer("in_chans", in_chans)
        checks.integer("num_init_features", num_init_features)
        if len(block_config) == 0:
            raise ValueError(f"block_config={block_config!r} is not allowed; expected at least one block")
        if stem == "imagenet":
            layers = OrderedDict(
                conv0=nn.Conv2d(in_chans, num_init_features, kernel_size=7, stride=2, padding=3, bias=False),
                norm0=nn.BatchNorm2d(num_init_features),
                relu0=nn.ReLU(inplace=True),
                pool0=nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
            )
        elif stem == "cifar":
            layers = OrderedDict(
                conv0=nn.Conv2d(in_chans, num_init_features, kernel_size=3, stride=1, padding=1, bias=False)
            )
        else:
            raise ValueError(f"stem={stem!r} is not allowed; expected 'imagenet' or 'cifar'")
        self.features = nn.Sequential(layers)

        channels = num_init_features
        for i, num_layers in enumerate(block_config):
            block = DenseBlock(
                num_layers,
                channels,
                growth_rate,
                bn_size=bn_size,
                drop_rate=drop_rate,
                memory_efficient=memory_efficient,
                conv2_layer=conv2_layer,
                mid_channels=mid_channels,
            )
            self.features.add_module(f"denseblock{i + 1}", block)
            channels = block.out_channels
            if i != len(block_config) - 1:
                trans = Transition(channels, compression=compression)
                self.features.add_module(f"transition{i + 1}", trans)
                channels = trans.out_channels
        self.features.add_module("norm5", nn.BatchNorm2d(channels))
        self.num_features = channels
        self.classifier = nn.Linear(channels, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        return F.relu(self.features(x), inplace=True)  # (B, C, H/r, W/r)

    def forward(self, x: Tensor) -> Tensor:
        x = self.forward_features(x)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)  # (B, C, 1, 1) -> (B, C)
        return self.classifier(x)


# --------------------------------------------------------------------------- variants
def _bc_cifar(depth: int, growth_rate: int) -> Dict[str, Any]:
    """DenseNet-BC for CIFAR (DenseNet paper, section 3): 3 blocks of (L-4)/6 layers, stem 2k."""
    if not isinstance(depth, int) or depth < 10 or (depth - 4) % 6 != 0:
        raise ValueError(f"depth={depth!r} is not allowed; expected L with (L - 4) divisible by 6 (e.g. 40, 100, 190, 250)")
    checks.integer("growth_rate", growth_rate)
    n = (depth - 4) // 6
    return dict(growth_rate=growth_rate, block_config=(n, n, n), num_init_features=2 * growth_rate, stem="cifar")


# timm-style: a variant is the dict of DenseNet arguments that differ from the defaults.
_VARIANTS: Dict[str, Dict[str, Any]] = {
    # torchvision / DenseNet paper Table 1 (ImageNet)
    "densenet121": dict(growth_rate=32, block_config=(6, 12, 24, 16), num_init_features=64),
    "densenet169": dict(growth_rate=32, block_config=(6, 12, 32, 32), num_init_features=64),
    "densenet201": dict(growth_rate=32, block_config=(6, 12, 48, 32), num_init_features=64),
    "densenet161": dict(growth_rate=48, block_config=(6, 12, 36, 24), num_init_features=96),
    # DenseNet paper Table 2 (CIFAR, C10 class count)
    "densenet_bc_100_12": dict(_bc_cifar(100, 12), num_classes=10),
    "densenet_bc_250_24": dict(_bc_cifar(250, 24), num_classes=10),
    "densenet_bc_190_40": dict(_bc_cifar(190, 40), num_classes=10),
    "densenet_bc_40_12": dict(_bc_cifar(40, 12), num_classes=10),  # small, for CPU lessons
    # the Dense2Net report's backbone: DenseNet-121 layout on CIFAR-100 (report section 3.2, 4.2)
    "densenet121_cifar": dict(
        growth_rate=32, block_config=(6, 12, 24, 16), num_init_features=64, stem="cifar", num_classes=100
    ),
    # small DenseNet-BC-style net whose Dense2Net twin trains in minutes on 2 CPU cores
    "densenet_tiny": dict(growth_rate=12, block_config=(4, 4, 4), num_init_features=24, stem="cifar", num_classes=10),
}


def _densenet(variant: str, **kwargs: Any) -> DenseNet:
    args = dict(_VARIANTS[variant])
    args.update(kwargs)
    return DenseNet(**args)


def densenet_bc(depth: int = 100, growth_rate: int = 12, **kwargs: Any) -> DenseNet:
    """CIFAR DenseNet-BC with depth L and growth rate k (not registered; any valid L, k)."""
    args = dict(_bc_cifar(depth, growth_rate), num_classes=10)
    args.update(kwargs)
    return DenseNet(**args)


_IMAGENET = dict(family="densenet", input_size=(3, 224, 224), num_classes=1000, test_input_size=(3, 32, 32), tags=("imagenet",))
_CIFAR = dict(family="densenet", input_size=(3, 32, 32), num_classes=10, tags=("cifar",))


@register_model(**_IMAGENET, source="DenseNet paper Table 1; torchvision: 7,978,856 params")
def densenet121(**kwargs: Any) -> DenseNet:
    """DenseNet-121 (k=32, blocks 6-12-24-16), torchvision's structure and names."""
    return _densenet("densenet121", **kwargs)


@register_model(**_IMAGENET, source="DenseNet paper Table 1; torchvision: 14,149,480 params")
def densenet169(**kwargs: Any) -> DenseNet:
    """DenseNet-169 (k=32, blocks 6-12-32-32)."""
    return _densenet("densenet169", **kwargs)


@register_model(**_IMAGENET, source="DenseNet paper Table 1; torchvision: 20,013,928 params")
def densenet201(**kwargs: Any) -> DenseNet:
    """DenseNet-201 (k=32, blocks 6-12-48-32)."""
    return _densenet("densenet201", **kwargs)


@register_model(**_IMAGENET, source="DenseNet paper Table 1; torchvision: 28,681,000 params")
def densenet161(**kwargs: Any) -> DenseNet:
    """DenseNet-161 (k=48, blocks 6-12-36-24, stem 96)."""
    return _densenet("densenet161", **kwargs)


@register_model(**_CIFAR, source="DenseNet paper Table 2: DenseNet-BC (L=100, k=12) 0.8M")
def densenet_bc_100_12(**kwargs: Any) -> DenseNet:
    """CIFAR DenseNet-BC, L=100, k=12: 769,162 params at 10 classes."""
    return _densenet("densenet_bc_100_12", **kwargs)


@register_model(**dict(_CIFAR, test_input_size=(3, 16, 16)), source="DenseNet paper Table 2: DenseNet-BC (L=250, k=24) 15.3M")
def densenet_bc_250_24(**kwargs: Any) -> DenseNet:
    """CIFAR DenseNet-BC, L=250, k=24."""
    return _densenet("densenet_bc_250_24", **kwargs)


@register_model(**dict(_CIFAR, test_input_size=(3, 16, 16)), source="DenseNet paper Table 2: DenseNet-BC (L=190, k=40) 25.6M")
def densenet_bc_190_40(**kwargs: Any) -> DenseNet:
    """CIFAR DenseNet-BC, L=190, k=40."""
    return _densenet("densenet_bc_190_40", **kwargs)


@register_model(**dict(_CIFAR, tags=("cifar", "small")), source="DenseNet-BC (L=40, k=12), sized for a CPU lesson")
def densenet_bc_40_12(**kwargs: Any) -> DenseNet:
    """CIFAR DenseNet-BC, L=40, k=12: a few minutes per epoch on 2 CPU cores."""
    return _densenet("densenet_bc_40_12", **kwargs)


@register_model(**dict(_CIFAR, tags=("cifar", "small")), source="DenseNet-BC, 3 blocks of 4 layers, k=12: the baseline of dense2net_tiny")
def densenet_tiny(**kwargs: Any) -> DenseNet:
    """A tiny CIFAR DenseNet-BC (k=12, 4-4-4): the baseline twin of ``dense2net_tiny``."""
    return _densenet("densenet_tiny", **kwargs)


@register_model(
    **dict(_CIFAR, num_classes=100, test_input_size=(3, 16, 16)),
    source="Dense2Net report section 4.2 backbone (DenseNet-BC, k=32, 6-12-24-16): 7,048,548 params",
)
def densenet121_cifar(**kwargs: Any) -> DenseNet:
    """DenseNet-121 for CIFAR (3x3 stem of 2k channels, no max pool), the report's baseline."""
    return _densenet("densenet121_cifar", **kwargs)


# --------------------------------------------------------------------------- Dense2Net
def dense2net_layer(
    scale: int = 4,  # report section 4.2.3: "Our default scale is set to 4"
    groups: int = 1,  # report appendix: --groups default 1 (section 4.2.4 tries 32)
    attn_layer: Any = None,  # report section 4.2.5: SE at the end of the bottleneck, off by default
    form: str = "paper",  # the hierarchy: Res2Net paper Eq. 1, or "report_eq3" (report Eq. 3 as printed)
) -> Callable[[int, int], nn.Module]:
    """The ``conv2_layer`` of Dense2Net: Res2Net module from bn_size*k (= s*w) to k channels.

    No BN after the 1x1 fusion: the dense layer is pre-activation, the next layer's BN
    normalises its output (as the 3x3 conv it replaces). ``form`` is
    :class:`~course_utils.layers.Res2NetModule`'s (same parameters either way).
    """
    checks.one_of("form", form, Res2NetModule.FORMS, show=repr)
    return functools.partial(
        Res2NetModule, scale=scale, groups=groups, attn_layer=attn_layer, fusion_norm=False, form=form
    )


def _dense2net(
    variant: str,
    scale: int = 4,
    groups: int = 1,
    attn_layer: Any = None,
    width: Optional[int] = None,
    form: str = "paper",
    **kwargs: Any,
) -> DenseNet:
    checks.integer("scale", scale)
    mid_channels = None
    if width is not None:
        checks.integer("width", width)
        mid_channels = width * scale
    conv2_layer = dense2net_layer(scale, groups, attn_layer, form)
    return _densenet(variant, conv2_layer=conv2_layer, mid_channels=mid_channels, **kwargs)


_D2N = dict(family="dense2net", input_size=(3, 32, 32))


@register_model(
    **_D2N, num_classes=100, test_input_size=(3, 16, 16), tags=("cifar",),
    source="Dense2Net report Fig. 6 / Table 1 (DenseNet-121 CIFAR backbone, scale 4)",
)
def dense2net121(
    scale: int = 4,
    groups: int = 1,
    attn_layer: Any = None,
    width: Optional[int] = None,
    form: str = "paper",
    **kwargs: Any,
) -> DenseNet:
    """Dense2Net-121: the report's model (Fig. 6), DenseNet-121-CIFAR with Res2Net 3x3 stages.

    Args:
        scale: s, subsets per Res2Net module (report default 4; Table 1 tries 2 and 8).
        groups: C, cardinality of every 3x3 conv in the hierarchy (Table 1 tries 32).
        attn_layer: "se" adds squeeze-excitation at the end of every layer (Table 1).
        width: w, split width; the bottleneck then has s * w channels instead of
            bn_size * k = 128 (so by default w = 128 / s).
        form: "paper" (default: y_2 = K_2(x_2), the Res2Net paper's Eq. 1, which the code
            the report cites computes) or "report_eq3" (the report's Eq. 3 as printed,
            y_2 = K_2(x_2 + y_1)). Same parameter count.
    """
    return _dense2net("densenet121_cifar", scale, groups, attn_layer, width, form, **kwargs)


@register_model(
    **_D2N, num_classes=10, tags=("cifar", "small"),
    source="densenet_tiny with Res2Net modules (scale 4), sized for a CPU lesson",
)
def dense2net_tiny(
    scale: int = 4,
    groups: int = 1,
    attn_layer: Any = None,
    width: Optional[int] = None,
    form: str = "paper",
    **kwargs: Any,
) -> DenseNet:
    """A tiny Dense2Net (k=12, blocks 4-4-4, scale 4, w=12) for a few minutes on 2 CPU cores.

    Arguments as :func:`dense2net121` (``form="report_eq3"``: the report's Eq. 3 as printed).
    """
    return _dense2net("densenet_tiny", scale, groups, attn_layer, width, form, **kwargs)
