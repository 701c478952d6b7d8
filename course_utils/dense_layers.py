"""Lesson 04's building blocks: the DenseNet-BC layer, dense block and transition.

Part of :mod:`course_utils.layers` (which re-exports them: ``layers.DenseLayer``), kept
in a file of their own. Dense2Net is a DenseNet whose layers take a Res2Net module as
their 3x3 stage (``conv2_layer``, report Fig. 6). Bad configurations raise
``ValueError`` naming the parameter, the value and what is allowed.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from contextlib import contextmanager
from typing import Callable, Iterator, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import Tensor, nn

from . import checks

__all__ = ["DenseBlock", "DenseLayer", "Transition"]


@contextmanager
def _frozen_running_stats(module: nn.Module) -> Iterator[None]:
    """Keep BatchNorm running statistics unchanged while a checkpoint recomputes.

    With momentum 0 the running-stat update is x <- 1 * x + 0 * batch = x, exactly.
    The batch counter is restored afterwards.
    """
    saved = []
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.track_running_stats:
            saved.append((m, m.momentum, m.num_batches_tracked.clone()))
            m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum, count in saved:
            m.momentum = momentum
            m.num_batches_tracked.copy_(count)


class DenseLayer(nn.Module):
    """One DenseNet-BC layer H_l: BN-ReLU-1x1 conv to bn_size*k, BN-ReLU-3x3 conv to k.

    Input: the list of all preceding feature maps [x_0, ..., x_{l-1}], concatenated
    here (DenseNet Eq. 2). ``conv2_layer(in_channels, out_channels)`` replaces the 3x3
    conv; Dense2Net passes a Res2Net module (report Fig. 6). Submodule names follow
    torchvision (norm1, relu1, conv1, norm2, relu2, conv2) so its weights load as-is.

    ``memory_efficient=True`` checkpoints, in training, the concatenation, the bottleneck
    (norm1, relu1, conv1) and the pre-activation of the 3x3 stage (norm2, relu2): their
    outputs are recomputed in the backward pass instead of stored (Pleiss et al. 2017;
    torchvision checkpoints up to conv1 only, the two cheap elementwise steps more save
    another 2 * bn_size * k channels per layer). Outputs, gradients and BN running
    statistics are the same as without it.

    Args:
        in_channels: channels of the concatenated input.
        growth_rate: k, the channels this layer adds.
        bn_size: bottleneck width factor (bottleneck has bn_size * k channels).
        mid_channels: overrides the bottleneck width bn_size * k.
    """

    def __init__(
        self,
        in_channels: int,
        growth_rate: int,
        bn_size: int = 4,  # DenseNet paper, section 3: "4k feature-maps"
        drop_rate: float = 0.0,
        memory_efficient: bool = False,
        conv2_layer: Optional[Callable[[int, int], nn.Module]] = None,
        mid_channels: Optional[int] = None,
    ) -> None:
        super().__init__()
        checks.integer("growth_rate", growth_rate)
        checks.integer("bn_size", bn_size)
        if not 0.0 <= drop_rate < 1.0:
            raise ValueError(f"drop_rate={drop_rate!r} is not allowed; expected 0 <= drop_rate < 1")
        mid = bn_size * growth_rate if mid_channels is None else mid_channels
        checks.integer("mid_channels", mid)
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, mid, kernel_size=1, stride=1, bias=False)
        self.norm2 = nn.BatchNorm2d(mid)
        self.relu2 = nn.ReLU(inplace=True)
        if conv2_layer is None:
            self.conv2 = nn.Conv2d(mid, growth_rate, kernel_size=3, stride=1, padding=1, bias=False)
        else:
            self.conv2 = conv2_layer(mid, growth_rate)
        self.drop_rate = float(drop_rate)
        self.memory_efficient = memory_efficient

    def bottleneck(self, *features: Tensor) -> Tensor:
        """Concatenate, BN-ReLU-1x1 conv, BN-ReLU: the input of the 3x3 stage."""
        x = torch.cat(features, dim=1)  # l x (B, C_j, H, W) -> (B, sum C_j, H, W)
        x = self.conv1(self.relu1(self.norm1(x)))  # (B, bn_size*k, H, W)
        return self.relu2(self.norm2(x))

    def _checkpointed_bottleneck(self, features: Sequence[Tensor]) -> Tensor:
        calls = []

        def run(*xs: Tensor) -> Tensor:
            calls.append(1)
            if len(calls) == 1:  # the forward pass
                return self.bottleneck(*xs)
            with _frozen_running_stats(self):  # the recomputation in backward
                return self.bottleneck(*xs)

        return cp.checkpoint(run, *features, use_reentrant=False)

    def forward(self, features: Union[Tensor, List[Tensor]]) -> Tensor:
        if isinstance(features, Tensor):
            features = [features]
        need_grad = torch.is_grad_enabled() and any(f.requires_grad for f in features)
        if self.memory_efficient and self.training and need_grad:
            out = self._checkpointed_bottleneck(features)
        else:
            out = self.bottleneck(*features)
        out = self.conv2(out)  # (B, k, H, W)
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        return out


class DenseBlock(nn.ModuleDict):
    """A dense block: ``num_layers`` DenseLayers, each fed with all earlier outputs.

    Output channels: in_channels + num_layers * k. Layers are named denselayer1..n
    (torchvision's names). Extra keyword arguments go to every :class:`DenseLayer`.
    """

    def __init__(self, num_layers: int, in_channels: int, growth_rate: int, **layer_kwargs) -> None:
        super().__init__()
        checks.integer("num_layers", num_layers)
        checks.integer("growth_rate", growth_rate)
        for i in range(num_layers):
            self[f"denselayer{i + 1}"] = DenseLayer(in_channels + i * growth_rate, growth_rate, **layer_kwargs)
        self.out_channels = in_channels + num_layers * growth_rate

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, dim=1)  # (B, C_in + num_layers * k, H, W)


def _compressed_channels(in_channels: int, compression: float) -> int:
    if not isinstance(compression, (int, float)) or not 0.0 < compression <= 1.0:
        raise ValueError(f"compression={compression!r} is not allowed; expected theta in (0, 1]")
    return max(1, int(math.floor(compression * in_channels)))


class Transition(nn.Sequential):
    """DenseNet transition layer: BN-ReLU-1x1 conv to floor(theta * C) channels, 2x2 avg pool.

    Args:
        in_channels: C.
        compression: theta in (0, 1] (0.5 for DenseNet-BC).
        out_channels: overrides floor(theta * C).
    """

    def __init__(self, in_channels: int, compression: float = 0.5, out_channels: Optional[int] = None) -> None:
        out = _compressed_channels(in_channels, compression) if out_channels is None else out_channels
        super().__init__(
            OrderedDict(
                norm=nn.BatchNorm2d(in_channels),
                relu=nn.ReLU(inplace=True),
                conv=nn.Conv2d(in_channels, out, kernel_size=1, stride=1, bias=False),
                pool=nn.AvgPool2d(kernel_size=2, stride=2),
            )
        )
        self.out_channels = out
