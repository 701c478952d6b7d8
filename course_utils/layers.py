"""Building blocks of the course, one tested copy of each.

Lesson order: reference convolutions (01) -> separable convolutions (02) -> the
Inception spectrum (03) -> DenseNet layers (04; in dense_layers.py, re-exported here)
-> Res2Net module (05) -> Dense2Net (06).

Every block is configured by arguments (no copied classes). Optional features take a
layer or a name that one factory resolves (``create_attn``, ``create_act``), returning
None when the feature is off. Bad configurations raise ``ValueError`` naming the
parameter, the value and what is allowed (the checks of :mod:`course_utils.checks`).

Symbols follow the papers: ``growth_rate`` k, ``compression`` theta (DenseNet);
``scale`` s, split width w, ``groups`` C (Res2Net paper Eq. 1 / Dense2Net report Eq. 3);
``segments`` (Xception section 1.2); ``depth_multiplier`` (Xception Fig. 5).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import checks
from .dense_layers import DenseBlock, DenseLayer, Transition  # noqa: F401  (lesson 04, re-exported)

__all__ = [
    "conv2d_naive",
    "conv2d_unfold",
    "create_act",
    "create_attn",
    "ConvBNAct",
    "SeparableConv2d",
    "SegmentedConv",
    "InceptionModule",
    "SimplifiedInception",
    "ReformulatedInception",
    "SqueezeExcite",
    "Res2NetModule",
    "DenseLayer",
    "DenseBlock",
    "Transition",
]

IntPair = Union[int, Tuple[int, int]]
LayerArg = Union[None, str, Callable[..., nn.Module]]


# ------------------------------------------------------- lesson 01: reference convs
def _conv_geometry(x: Tensor, weight: Tensor, stride, padding, dilation, groups):
    sh, sw = checks.int_pair("stride", stride)
    ph, pw = checks.int_pair("padding", padding)
    dh, dw = checks.int_pair("dilation", dilation)
    checks.integer("groups", groups)
    if x.dim() != 4 or weight.dim() != 4:
        raise ValueError(
            f"x.dim()={x.dim()}, weight.dim()={weight.dim()}; expected x (B, C_in, H, W) and "
            "weight (C_out, C_in/groups, kH, kW)"
        )
    c_in, c_out = x.shape[1], weight.shape[0]
    checks.divides("groups", groups, "in_channels", c_in)
    checks.divides("groups", groups, "out_channels", c_out)
    if weight.shape[1] != c_in // groups:
        raise ValueError(
            f"weight.shape[1]={weight.shape[1]}; expected in_channels/groups = {c_in // groups}"
        )
    kh, kw = weight.shape[2], weight.shape[3]
    h_out = (x.shape[2] + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    w_out = (x.shape[3] + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if h_out < 1 or w_out < 1:
        raise ValueError(f"input of size {tuple(x.shape[2:])} is too small for this kernel/padding")
    return (sh, sw), (ph, pw), (dh, dw), (kh, kw), (h_out, w_out)


def conv2d_naive(
    x: Tensor,
    weight: Tensor,
    bias: Optional[Tensor] = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    groups: int = 1,
) -> Tensor:
    """2-D convolution (cross-correlation) written as plain loops, for lesson 01.

    out[b, o, i, j] = bias[o] + sum_{c, u, v} x_pad[b, g*C_g + c, i*s + u*d, j*s + v*d] * weight[o, c, u, v]
    where g is the group of output channel o and C_g = C_in / groups. Loops run over
    groups, output channels and output positions; the sum over (c, u, v) and the batch
    are vectorised so that small examples finish in a blink. Equal to ``F.conv2d``.
    """
    (sh, sw), (ph, pw), (dh, dw), (kh, kw), (h_out, w_out) = _conv_geometry(
        x, weight, stride, padding, dilation, groups
    )
    c_in_g = x.shape[1] // groups
    c_out_g = weight.shape[0] // groups
    x_pad = F.pad(x, (pw, pw, ph, ph))  # (B, C_in, H + 2ph, W + 2pw)
    out = x.new_zeros(x.shape[0], weight.shape[0], h_out, w_out)
    for g in range(groups):
        x_g = x_pad[:, g * c_in_g:(g + 1) * c_in_g]  # (B, C_in/groups, H', W')
        for o in range(g * c_out_g, (g + 1) * c_out_g):
            for i in range(h_out):
                for j in range(w_out):
                    top, left = i * sh, j * sw
                    # the receptive field of out[:, o, i, j], dilated by (dh, dw)
                    patch = x_g[:, :, top:top + dh * (kh - 1) + 1:dh, left:left + dw * (kw - 1) + 1:dw]
                    out[:, o, i, j] = (patch * weight[o]).sum(dim=(1, 2, 3))  # (B,)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


def conv2d_unfold(
    x: Tensor,
    weight: Tensor,
    bias: Optional[Tensor] = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    groups: int = 1,
) -> Tensor:
    """2-D convolution as im2col (``F.unfold``) followed by one batched matmul.

    Every receptive field becomes a column of length C_in/groups * kH * kW; the kernel
    becomes a matrix of shape (C_out/groups, C_in/groups * kH * kW); the convolution is
    their product, once per group. Equal to ``F.conv2d``.
    """
    (sh, sw), (ph, pw), (dh, dw), (kh, kw), (h_out, w_out) = _conv_geometry(
        x, weight, stride, padding, dilation, groups
    )
    b = x.shape[0]
    c_out = weight.shape[0]
    cols = F.unfold(x, (kh, kw), dilation=(dh, dw), padding=(ph, pw), stride=(sh, sw))  # (B, C_in*kH*kW, L)
    cols = cols.view(b, groups, -1, h_out * w_out)  # (B, G, C_in/G*kH*kW, L)
    w_mat = weight.reshape(groups, c_out // groups, -1)  # (G, C_out/G, C_in/G*kH*kW)
    out = torch.einsum("gok,bgkl->bgol", w_mat, cols)  # (B, G, C_out/G, L)
    out = out.reshape(b, c_out, h_out, w_out)  # (B, C_out, H_out, W_out)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


# ------------------------------------------------------------------- factories
_ACTS = {"relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU, "silu": nn.SiLU, "sigmoid": nn.Sigmoid}
_OFF = (None, False, "", "none", "identity")


def create_act(act_layer: LayerArg, inplace: bool = False, name: str = "act_layer") -> Optional[nn.Module]:
    """Turn an activation name ("relu", "elu", ...) or a module class into a module.

    Returns None when off (None, "none", "identity", ""). ReLU and ELU get ``inplace``.
    ``name`` is the caller's parameter name, used in the error for an unknown name.
    """
    if act_layer in _OFF:
        return None
    if isinstance(act_layer, str):
        checks.one_of(name, act_layer, ["none", *_ACTS], show=repr)
        act_layer = _ACTS[act_layer]
    if act_layer in (nn.ReLU, nn.ELU):
        return act_layer(inplace=inplace)
    return act_layer()


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al.): rescale channels by a gate learnt from their means.

    s = sigmoid(W2 act(W1 mean_hw(x))), y = x * s; W1 maps C -> C/r, W2 maps C/r -> C.

    Args:
        channels: C, the channels of the input.
        reduction: r, the reduction ratio of the hidden layer (16 in the SE paper).
        rd_channels: the hidden width, overriding C // r (at least 1).
    """

    def __init__(
        self,
        channels: int,
        reduction: int = 16,  # SE paper, section 6.1
        rd_channels: Optional[int] = None,
        act_layer: LayerArg = "relu",
        gate_layer: LayerArg = "sigmoid",
    ) -> None:
        super().__init__()
        checks.integer("channels", channels)
        checks.integer("reduction", reduction)
        if rd_channels is None:
            rd_channels = max(1, channels // reduction)
        checks.integer("rd_channels", rd_channels)
        self.fc1 = nn.Conv2d(channels, rd_channels, kernel_size=1, bias=True)
        self.act = create_act(act_layer, inplace=True) or nn.Identity()
        self.fc2 = nn.Conv2d(rd_channels, channels, kernel_size=1, bias=True)
        self.gate = create_act(gate_layer) or nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
        s = self.gate(self.fc2(self.act(self.fc1(s))))  # (B, C, 1, 1)
        return x * s


_ATTNS = {"se": SqueezeExcite}


def create_attn(attn_layer: LayerArg, channels: int, **kwargs) -> Optional[nn.Module]:
    """One factory for the optional attention layer: a name ("se"), a class, or off.

    Returns None when off (None, False, "", "none"); extra keyword arguments go to the
    layer (e.g. ``reduction=8`` for SE).
    """
    if attn_layer in _OFF:
        return None
    if isinstance(attn_layer, str):
        checks.one_of("attn_layer", attn_layer, [None, "none", *_ATTNS], show=repr)
        attn_layer = _ATTNS[attn_layer]
    if not callable(attn_layer):
        raise ValueError(f"attn_layer={attn_layer!r} is not allowed; expected None, 'se' or a module class")
    return attn_layer(channels, **kwargs)


def _norm(norm_layer: Optional[Callable[[int], nn.Module]], channels: int) -> Optional[nn.Module]:
    return None if norm_layer is None else norm_layer(channels)


class ConvBNAct(nn.Sequential):
    """conv -> norm -> activation, the post-activation unit of Inception, Xception, Res2Net.

    ``padding=None`` keeps the spatial size at stride 1 (dilation * (kernel_size - 1) // 2).
    ``norm_layer=None`` or ``act_layer=None`` drops that step; the conv has a bias only
    when there is no norm (unless ``bias`` says otherwise). Submodules: conv, bn, act.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: Optional[int] = None,
        dilation: int = 1,
        groups: int = 1,
        norm_layer: Optional[Callable[[int], nn.Module]] = nn.BatchNorm2d,
        act_layer: LayerArg = "relu",
        bias: Optional[bool] = None,
        inplace: bool = True,
    ) -> None:
        checks.divides("groups", groups, "in_channels", in_channels)
        checks.divides("groups", groups, "out_channels", out_channels)
        if padding is None:
            padding = dilation * (kernel_size - 1) // 2
        if bias is None:
            bias = norm_layer is None
        layers = OrderedDict()
        layers["conv"] = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias=bias
        )
        norm = _norm(norm_layer, out_channels)
        if norm is not None:
            layers["bn"] = norm
        act = create_act(act_layer, inplace=inplace)
        if act is not None:
            layers["act"] = act
        super().__init__(layers)


# ------------------------------------------------ lesson 02: separable convolutions
class SeparableConv2d(nn.Module):
    """Depthwise separable convolution (Xception section 1.2, Fig. 10).

    ``order="depthwise_first"`` (TensorFlow/Keras, Xception): a kxk depthwise conv with
    ``depth_multiplier`` m outputs per input channel, then a 1x1 pointwise conv.
    ``order="pointwise_first"`` (the "extreme" Inception module, Fig. 4): a 1x1 conv to
    C_out/m channels, then the kxk depthwise conv with m outputs per channel.
    ``mid_act`` is the optional non-linearity between the two (none / "relu" / "elu";
    Xception found none best, Fig. 10). Submodules: depthwise, mid_act, pointwise.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: Optional[int] = None,
        dilation: int = 1,
        depth_multiplier: int = 1,  # Xception Fig. 5: "depth multiplier of 1"
        order: str = "depthwise_first",
        mid_act: LayerArg = None,  # Xception Fig. 10: no intermediate activation is best
        bias: bool = False,  # followed by BatchNorm in Xception (Fig. 5 caption)
    ) -> None:
        super().__init__()
        checks.integer("in_channels", in_channels)
        checks.integer("out_channels", out_channels)
        checks.integer("depth_multiplier", depth_multiplier)
        checks.one_of("order", order, ["depthwise_first", "pointwise_first"], show=repr)
        if padding is None:
            padding = dilation * (kernel_size - 1) // 2
        self.order = order
        if order == "depthwise_first":
            mid = in_channels * depth_multiplier
            self.depthwise = nn.Conv2d(
                in_channels, mid, kernel_size, stride, padding, dilation, groups=in_channels, bias=bias
            )
            self.pointwise = nn.Conv2d(mid, out_channels, 1, bias=bias)
        else:
            checks.divides("depth_multiplier", depth_multiplier, "out_channels", out_channels)
            mid = out_channels // depth_multiplier
            self.pointwise = nn.Conv2d(in_channels, mid, 1, bias=bias)
            self.depthwise = nn.Conv2d(
                mid, out_channels, kernel_size, stride, padding, dilation, groups=mid, bias=bias
            )
        self.mid_act = create_act(mid_act, name="mid_act")

    def forward(self, x: Tensor) -> Tensor:
        first, second = (
            (self.depthwise, self.pointwise) if self.order == "depthwise_first" else (self.pointwise, self.depthwise)
        )
        x = first(x)
        if self.mid_act is not None:
            x = self.mid_act(x)
        return second(x)


class SegmentedConv(nn.Module):
    """The spectrum between a regular and a separable convolution (Xception section 1.2).

    A 1x1 conv maps ``in_channels`` to ``mid_channels``; a kxk conv then runs over
    ``segments`` independent channel segments (a grouped conv). segments=1 is a regular
    kxk conv after the 1x1; segments=mid_channels is the "extreme" form (Fig. 4), a
    pointwise-first separable conv; Inception modules sit in between (3-4 segments).

    ``norm_layer`` / ``act_layer`` (off by default) follow each of the two convs, as in
    Inception (Fig. 3). Submodules: pointwise (+ norm1, act1), spatial (+ norm2, act2).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        segments: int,
        kernel_size: int = 3,
        stride: int = 1,
        mid_channels: Optional[int] = None,
        norm_layer: Optional[Callable[[int], nn.Module]] = None,
        act_layer: LayerArg = None,
        bias: bool = False,
    ) -> None:
        super().__init__()
        mid_channels = out_channels if mid_channels is None else mid_channels
        checks.integer("in_channels", in_channels)
        checks.divides("segments", segments, "mid_channels", mid_channels)
        checks.divides("segments", segments, "out_channels", out_channels)
        self.segments = segments
        self.pointwise = nn.Conv2d(in_channels, mid_channels, 1, bias=bias)
        self.norm1 = _norm(norm_layer, mid_channels)
        self.act1 = create_act(act_layer, inplace=True)
        self.spatial = nn.Conv2d(
            mid_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2, groups=segments, bias=bias
        )
        self.norm2 = _norm(norm_layer, out_channels)
        self.act2 = create_act(act_layer, inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        for layer in (self.pointwise, self.norm1, self.act1, self.spatial, self.norm2, self.act2):
            if layer is not None:
                x = layer(x)
        return x


# ---------------------------------------------------- lesson 03: Inception spectrum
class InceptionModule(nn.Module):
    """The canonical Inception V3-style module (Xception Fig. 1).

    Four towers, concatenated on channels: 1x1; 1x1 -> 3x3; 1x1 -> 3x3 -> 3x3;
    3x3 average pool -> 1x1. Every conv is conv-BN-ReLU. Default widths are those of
    Inception V3's first 35x35 module in torchvision's code (Mixed_5b: 64, 48->64,
    64->96->96, pool 32: 256 outputs), whose 48->64 tower is a 5x5 convolution there;
    this module follows the figure (Inception V3 Fig. 5, Xception Fig. 1) and makes it a
    3x3, so it has 49,152 fewer weights than Mixed_5b (lesson 03 counts both).
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int = 64,
        ch3x3_reduce: int = 48,
        ch3x3: int = 64,
        ch3x3dbl_reduce: int = 64,
        ch3x3dbl: int = 96,
        pool_proj: int = 32,
        norm_layer: Optional[Callable[[int], nn.Module]] = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        unit = lambda i, o, k: ConvBNAct(i, o, k, norm_layer=norm_layer)  # noqa: E731
        self.branch1x1 = unit(in_channels, ch1x1, 1)
        self.branch3x3 = nn.Sequential(unit(in_channels, ch3x3_reduce, 1), unit(ch3x3_reduce, ch3x3, 3))
        self.branch3x3dbl = nn.Sequential(
            unit(in_channels, ch3x3dbl_reduce, 1), unit(ch3x3dbl_reduce, ch3x3dbl, 3), unit(ch3x3dbl, ch3x3dbl, 3)
        )
        self.branch_pool = nn.Sequential(
            nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False), unit(in_channels, pool_proj, 1)
        )
        self.out_channels = ch1x1 + ch3x3 + ch3x3dbl + pool_proj

    def forward(self, x: Tensor) -> Tensor:
        towers = [self.branch1x1(x), self.branch3x3(x), self.branch3x3dbl(x), self.branch_pool(x)]
        return torch.cat(towers, dim=1)  # (B, ch1x1 + ch3x3 + ch3x3dbl + pool_proj, H, W)


class SimplifiedInception(nn.Module):
    """The simplified Inception module (Xception Fig. 2).

    ``towers`` parallel towers, each a 1x1 conv to ``tower_channels`` then a 3x3 conv,
    concatenated: output channels = towers * tower_channels. ``norm_layer``/``act_layer``
    follow every conv (Inception style; pass None for a purely linear module).
    """

    def __init__(
        self,
        in_channels: int,
        tower_channels: int,
        towers: int = 3,  # Xception Fig. 2 draws three towers
        kernel_size: int = 3,
        norm_layer: Optional[Callable[[int], nn.Module]] = nn.BatchNorm2d,
        act_layer: LayerArg = "relu",
    ) -> None:
        super().__init__()
        checks.integer("towers", towers)
        self.towers = nn.ModuleList(
            nn.Sequential(
                ConvBNAct(in_channels, tower_channels, 1, norm_layer=norm_layer, act_layer=act_layer),
                ConvBNAct(tower_channels, tower_channels, kernel_size, norm_layer=norm_layer, act_layer=act_layer),
            )
            for _ in range(towers)
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([tower(x) for tower in self.towers], dim=1)  # (B, towers * tower_channels, H, W)


class ReformulatedInception(SegmentedConv):
    """The strict reformulation of Fig. 2 (Xception Fig. 3): one big 1x1 conv, then
    3x3 convs over ``towers`` non-overlapping segments of its output channels.

    It is a :class:`SegmentedConv` with segments = towers; :meth:`from_simplified`
    builds one computing exactly the same function as a given :class:`SimplifiedInception`.
    """

    def __init__(
        self,
        in_channels: int,
        tower_channels: int,
        towers: int = 3,
        kernel_size: int = 3,
        norm_layer: Optional[Callable[[int], nn.Module]] = nn.BatchNorm2d,
        act_layer: LayerArg = "relu",
    ) -> None:
        super().__init__(
            in_channels,
            towers * tower_channels,
            segments=towers,
            kernel_size=kernel_size,
            norm_layer=norm_layer,
            act_layer=act_layer,
            bias=norm_layer is None,
        )

    @classmethod
    def from_simplified(cls, module: SimplifiedInception) -> "ReformulatedInception":
        """Stack the towers' weights: 1x1 kernels along output channels, 3x3 kernels as groups."""
        first = [tower[0] for tower in module.towers]
        second = [tower[1] for tower in module.towers]
        conv_a, conv_b = first[0].conv, second[0].conv
        norm_layer = type(first[0].bn) if "bn" in first[0]._modules else None
        act = first[0]._modules.get("act")
        new = cls(
            conv_a.in_channels,
            conv_a.out_channels,
            towers=len(module.towers),
            kernel_size=conv_b.kernel_size[0],
            norm_layer=norm_layer,
            act_layer=type(act) if act is not None else None,
        )
        state = {}
        for name, parts in (("pointwise", first), ("spatial", second)):
            state[f"{name}.weight"] = torch.cat([p.conv.weight for p in parts])
            if parts[0].conv.bias is not None:
                state[f"{name}.bias"] = torch.cat([p.conv.bias for p in parts])
        for name, parts in (("norm1", first), ("norm2", second)):
            if norm_layer is not None:
                for key in parts[0].bn.state_dict():
                    tensors = [p.bn.state_dict()[key] for p in parts]
                    state[f"{name}.{key}"] = tensors[0] if tensors[0].dim() == 0 else torch.cat(tensors)
        new.load_state_dict(state)
        return new.to(conv_a.weight.device, conv_a.weight.dtype)


# ---------------------------------------------------------- lesson 05: Res2Net module
class Res2NetModule(nn.Module):
    """The Res2Net module: split, hierarchical residual 3x3 convs, concatenate, 1x1 fusion.

    The input (``in_channels`` = s * w channels) is split into s subsets x_1..x_s of
    width w. ``form`` chooses the hierarchy:

    - ``"paper"`` (default): the Res2Net paper's Eq. 1, as its official code, timm and
      the implementation the Dense2Net report cites (its ref. [13]) compute it::

          y_1 = x_1,   y_2 = K_2(x_2),   y_i = K_i(x_i + y_{i-1})  for 2 < i <= s

    - ``"report_eq3"``: the Dense2Net report's Eq. 3 as printed, which also adds y_1 = x_1
      into the second subset::

          y_1 = x_1,   y_i = K_i(x_i + y_{i-1})  for 1 < i <= s

    The two forms have the same parameters (same names, same shapes) and differ only in
    that one addition. Each K_i is a 3x3 conv-BN-ReLU with ``groups`` (cardinality, C).
    The y_i are concatenated and fused by a 1x1 conv to ``out_channels`` (then BN if
    ``fusion_norm``), then the optional attention layer (``attn_layer="se"``, placed at
    the end as in the report's Fig. 7).

    ``stype="stage"`` is the variant for the first block of a stage: the subsets do not add
    (y_i = K_i(x_i), K_i with ``stride``), and y_1 is average pooled (3x3, ``stride``,
    padding 1, zeros counted), so that all subsets keep one resolution. As in the official
    code and timm, that pool is there at stride 1 too (res2net50's first block), where it
    smooths the identity subset instead of passing it through.
    With s = 1 there is one subset and it is convolved (a plain 3x3 conv), so that
    scale=1 degenerates to the ordinary bottleneck.

    Args:
        in_channels: s * w, the channels that are split.
        out_channels: channels after the 1x1 fusion.
        scale: s >= 1, the number of subsets.
        groups: C, cardinality of each K_i; must divide w.
        stride: stride of K_i (> 1 only with ``stype="stage"``).
        stype: "normal" or "stage".
        form: "paper" (Res2Net paper Eq. 1, the default) or "report_eq3" (Dense2Net
            report Eq. 3: y_2 = K_2(x_2 + y_1)). No effect with ``stype="stage"`` or
            scale 1, which have no additions.
    """

    FORMS = ("paper", "report_eq3")

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        scale: int = 4,  # Res2Net paper and Dense2Net report default
        groups: int = 1,
        stride: int = 1,
        stype: str = "normal",
        attn_layer: LayerArg = None,
        fusion_norm: bool = True,  # False inside pre-activation DenseNet layers
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: LayerArg = "relu",
        form: str = "paper",  # Res2Net paper Eq. 1; "report_eq3": Dense2Net report Eq. 3
    ) -> None:
        super().__init__()
        checks.one_of("form", form, self.FORMS, show=repr)
        checks.integer("scale", scale)
        checks.divides("scale", scale, "in_channels", in_channels)
        width = in_channels // scale
        checks.divides("groups", groups, "width", width)
        checks.integer("stride", stride)
        checks.one_of("stype", stype, ["normal", "stage"], show=repr)
        if stride > 1 and stype != "stage":
            raise ValueError(f"stride={stride} needs stype='stage' (got stype={stype!r}); allowed: stride=1 or stage")
        self.scale, self.width, self.stype, self.form = scale, width, stype, form
        n_convs = max(1, scale - 1)
        self.convs = nn.ModuleList(
            ConvBNAct(width, width, 3, stride=stride, groups=groups, norm_layer=norm_layer, act_layer=act_layer)
            for _ in range(n_convs)
        )
        self.pool = (
            nn.AvgPool2d(3, stride=stride, padding=1) if (stype == "stage" and scale > 1) else None
        )
        self.fusion = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.fusion_norm = norm_layer(out_channels) if fusion_norm else None
        self.attn = create_attn(attn_layer, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        if self.scale == 1:
            ys = [self.convs[0](x)]
        else:
            xs = x.split(self.width, dim=1)  # s x (B, w, H, W)
            y = xs[0] if self.pool is None else self.pool(xs[0])
            ys = [y]
            for i, (conv, x_i) in enumerate(zip(self.convs, xs[1:]), start=2):
                alone = self.stype == "stage" or (i == 2 and self.form == "paper")
                y = conv(x_i if alone else x_i + y)  # y_i = K_i(x_i) or K_i(x_i + y_{i-1})
                ys.append(y)
        out = self.fusion(torch.cat(ys, dim=1))  # (B, s*w, H', W') -> (B, out_channels, H', W')
        if self.fusion_norm is not None:
            out = self.fusion_norm(out)
        if self.attn is not None:
            out = self.attn(out)
        return out
