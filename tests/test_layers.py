"""Unit tests of course_utils.layers: numbers and equivalences, on small CPU inputs."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import layers as L

ATOL = 1e-5


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _randn(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g)


# ------------------------------------------------------------- reference convolutions
CONV_CASES = [
    # (C_in, C_out, kernel, stride, padding, dilation, groups)
    (3, 4, (3, 3), 1, 0, 1, 1),
    (3, 4, (3, 3), 1, 1, 1, 1),
    (4, 6, (3, 3), 2, 1, 1, 1),
    (4, 6, (3, 2), (2, 1), (1, 0), 1, 1),
    (4, 6, (3, 3), 1, 2, 2, 1),
    (4, 6, (3, 3), 1, 1, 1, 2),
    (6, 6, (3, 3), 2, 1, 1, 6),  # depthwise
    (4, 8, (1, 1), 1, 0, 1, 4),
    (6, 4, (5, 5), 3, 2, (2, 1), 2),
]


@pytest.mark.parametrize("impl", [L.conv2d_naive, L.conv2d_unfold], ids=["naive", "unfold"])
@pytest.mark.parametrize("case", CONV_CASES, ids=[str(c) for c in CONV_CASES])
def test_reference_conv_equals_F_conv2d(impl, case):
    c_in, c_out, k, stride, padding, dilation, groups = case
    x = _randn(2, c_in, 9, 8, seed=1)
    w = _randn(c_out, c_in // groups, *k, seed=2)
    b = _randn(c_out, seed=3)
    expected = F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    got = impl(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=1e-5)
    no_bias = impl(x, w, None, stride=stride, padding=padding, dilation=dilation, groups=groups)
    torch.testing.assert_close(no_bias, expected - b.view(1, -1, 1, 1), atol=ATOL, rtol=1e-5)


def test_reference_conv_gradients_flow():
    x = _randn(1, 2, 5, 5).requires_grad_()
    w = _randn(3, 2, 3, 3, seed=1).requires_grad_()
    L.conv2d_unfold(x, w, padding=1).sum().backward()
    gx, gw = x.grad.clone(), w.grad.clone()
    x.grad = w.grad = None
    F.conv2d(x, w, padding=1).sum().backward()
    torch.testing.assert_close(gx, x.grad)
    torch.testing.assert_close(gw, w.grad)


@pytest.mark.parametrize("impl", [L.conv2d_naive, L.conv2d_unfold])
def test_reference_conv_bad_groups(impl):
    with pytest.raises(ValueError, match=r"groups=3 .*in_channels=4"):
        impl(_randn(1, 4, 5, 5), _randn(6, 1, 3, 3), groups=3)


# ------------------------------------------------------------------ factories, SE
def test_create_act():
    assert L.create_act(None) is None and L.create_act("none") is None
    assert isinstance(L.create_act("relu"), nn.ReLU)
    assert isinstance(L.create_act("elu"), nn.ELU)
    assert isinstance(L.create_act(nn.GELU), nn.GELU)
    with pytest.raises(ValueError, match="act_layer='swishy'"):
        L.create_act("swishy")


def test_create_attn_factory():
    assert L.create_attn(None, 32) is None
    assert L.create_attn("none", 32) is None
    assert L.create_attn(False, 32) is None
    se = L.create_attn("se", 32, reduction=8)
    assert isinstance(se, L.SqueezeExcite)
    assert se.fc1.out_channels == 4 and se.fc2.out_channels == 32
    assert isinstance(L.create_attn(L.SqueezeExcite, 16), L.SqueezeExcite)
    with pytest.raises(ValueError, match="attn_layer='cbam'"):
        L.create_attn("cbam", 32)


def test_squeeze_excite_math():
    se = L.SqueezeExcite(8, reduction=4)
    assert se.fc1.out_channels == 2
    x = _randn(2, 8, 5, 5)
    s = torch.sigmoid(se.fc2(torch.relu(se.fc1(x.mean((2, 3), keepdim=True)))))
    torch.testing.assert_close(se(x), x * s)
    # no weights: a gate of sigmoid(bias) = 0.5 everywhere
    nn.init.zeros_(se.fc2.weight)
    nn.init.zeros_(se.fc2.bias)
    torch.testing.assert_close(se(x), 0.5 * x)
    assert L.SqueezeExcite(8, reduction=16).fc1.out_channels == 1  # at least one channel
    with pytest.raises(ValueError, match="reduction=0"):
        L.SqueezeExcite(8, reduction=0)


def test_conv_bn_act():
    m = L.ConvBNAct(3, 8, 3, stride=2)
    assert list(m._modules) == ["conv", "bn", "act"] and m.conv.bias is None
    assert m(_randn(1, 3, 9, 9)).shape == (1, 8, 5, 5)
    bare = L.ConvBNAct(3, 8, 1, norm_layer=None, act_layer=None)
    assert list(bare._modules) == ["conv"] and bare.conv.bias is not None


# ----------------------------------------------------------- separable convolutions
def test_separable_depthwise_first_equals_two_convs():
    m = L.SeparableConv2d(4, 6, 3, stride=2, depth_multiplier=2)
    assert m.depthwise.weight.shape == (8, 1, 3, 3) and m.pointwise.weight.shape == (6, 8, 1, 1)
    x = _randn(2, 4, 7, 7)
    ref = F.conv2d(F.conv2d(x, m.depthwise.weight, stride=2, padding=1, groups=4), m.pointwise.weight)
    torch.testing.assert_close(m(x), ref)
    assert sum(p.numel() for p in m.parameters()) == 4 * 2 * 9 + 8 * 6


def test_separable_pointwise_first_and_mid_act():
    x = _randn(2, 4, 6, 6)
    m = L.SeparableConv2d(4, 6, order="pointwise_first", mid_act="relu")
    assert m.pointwise.weight.shape == (6, 4, 1, 1) and m.depthwise.weight.shape == (6, 1, 3, 3)
    ref = F.conv2d(torch.relu(F.conv2d(x, m.pointwise.weight)), m.depthwise.weight, padding=1, groups=6)
    torch.testing.assert_close(m(x), ref)
    elu = L.SeparableConv2d(4, 6, mid_act="elu")
    assert isinstance(elu.mid_act, nn.ELU)
    plain = copy.deepcopy(elu)
    plain.mid_act = None
    assert not torch.allclose(elu(x), plain(x))  # the intermediate activation matters
    mult = L.SeparableConv2d(4, 6, order="pointwise_first", depth_multiplier=3)
    assert mult.pointwise.out_channels == 2 and mult(x).shape == (2, 6, 6, 6)
    with pytest.raises(ValueError, match="depth_multiplier=4 does not divide out_channels=6"):
        L.SeparableConv2d(4, 6, order="pointwise_first", depth_multiplier=4)
    with pytest.raises(ValueError, match="order='sideways'"):
        L.SeparableConv2d(4, 6, order="sideways")


# ------------------------------------------------------------------ the spectrum
def test_segmented_conv_one_segment_is_regular_conv():
    m = L.SegmentedConv(5, 8, segments=1)
    ref = nn.Sequential(nn.Conv2d(5, 8, 1, bias=False), nn.Conv2d(8, 8, 3, padding=1, bias=False))
    ref[0].weight.data.copy_(m.pointwise.weight)
    ref[1].weight.data.copy_(m.spatial.weight)
    x = _randn(2, 5, 7, 7)
    torch.testing.assert_close(m(x), ref(x))


def test_segmented_conv_all_segments_is_extreme_inception():
    m = L.SegmentedConv(5, 8, segments=8)
    sep = L.SeparableConv2d(5, 8, order="pointwise_first")
    sep.pointwise.weight.data.copy_(m.pointwise.weight)
    sep.depthwise.weight.data.copy_(m.spatial.weight)
    x = _randn(2, 5, 7, 7)
    torch.testing.assert_close(m(x), sep(x))
    # parameters fall along the spectrum: 1x1 part fixed, 3x3 part = 8 * 8 * 9 / segments
    counts = [sum(p.numel() for p in L.SegmentedConv(5, 8, s).parameters()) for s in (1, 2, 4, 8)]
    assert counts == [40 + 576, 40 + 288, 40 + 144, 40 + 72]


def test_segmented_conv_bad_segments():
    with pytest.raises(ValueError, match=r"segments=3 does not divide mid_channels=8"):
        L.SegmentedConv(5, 8, segments=3)
    with pytest.raises(ValueError, match="segments=0"):
        L.SegmentedConv(5, 8, segments=0)


def test_inception_module_shapes():
    m = L.InceptionModule(32)
    assert m.out_channels == 256
    assert m(_randn(2, 32, 9, 9)).shape == (2, 256, 9, 9)


@pytest.mark.parametrize("norm", [nn.BatchNorm2d, None], ids=["bn", "no-norm"])
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_simplified_inception_equals_reformulation(norm, train):
    torch.manual_seed(0)
    fig2 = L.SimplifiedInception(6, tower_channels=4, towers=3, norm_layer=norm)
    for mod in fig2.modules():  # non-trivial BN parameters and statistics
        if isinstance(mod, nn.BatchNorm2d):
            for t in (mod.weight, mod.bias, mod.running_mean):
                t.data.uniform_(-0.5, 0.5)
            mod.running_var.data.uniform_(0.5, 1.5)
    fig3 = L.ReformulatedInception.from_simplified(fig2)
    assert isinstance(fig3, L.SegmentedConv) and fig3.segments == 3
    assert sum(p.numel() for p in fig2.parameters()) == sum(p.numel() for p in fig3.parameters())
    fig2.train(train)
    fig3.train(train)
    x = _randn(2, 6, 8, 8)
    torch.testing.assert_close(fig3(x), fig2(x), atol=ATOL, rtol=1e-5)


# ------------------------------------------------------------------ Res2Net module
def _hierarchy_reference(m: L.Res2NetModule, x, form):
    """Res2Net paper Eq. 1 (form "paper") or the report's Eq. 3 ("report_eq3"), written
    out with the module's own convs."""
    xs = list(x.split(m.width, dim=1))
    ys = [xs[0]]
    for i in range(1, m.scale):
        add = ys[i - 1] if (form == "report_eq3" or i > 1) else 0  # paper: y_2 = K_2(x_2)
        ys.append(m.convs[i - 1](xs[i] + add))
    out = m.fusion(torch.cat(ys, 1))
    return m.fusion_norm(out) if m.fusion_norm is not None else out


@pytest.mark.parametrize("form", ["paper", "report_eq3"])
@pytest.mark.parametrize("scale,groups", [(2, 1), (4, 1), (4, 2), (8, 1)])
def test_res2net_module_hierarchy(scale, groups, form):
    torch.manual_seed(0)
    m = L.Res2NetModule(32, 12, scale=scale, groups=groups, form=form).eval()
    x = _randn(2, 32, 6, 6)
    assert m.width == 32 // scale and len(m.convs) == scale - 1 and m.form == form
    torch.testing.assert_close(m(x), _hierarchy_reference(m, x, form))
    other = "paper" if form == "report_eq3" else "report_eq3"
    assert not torch.allclose(m(x), _hierarchy_reference(m, x, other), atol=1e-4)  # the forms differ
    assert m.convs[0].conv.groups == groups


def test_res2net_module_default_is_the_paper_form():
    torch.manual_seed(0)
    m = L.Res2NetModule(32, 12, scale=4).eval()
    assert m.form == "paper"
    x = _randn(2, 32, 6, 6)
    torch.testing.assert_close(m(x), _hierarchy_reference(m, x, "paper"))


def test_res2net_module_parameter_count():
    s, w, out = 4, 8, 16
    m = L.Res2NetModule(s * w, out, scale=s, fusion_norm=False)
    hier = (s - 1) * (w * w * 9 + 2 * w)  # 3x3 convs + their BN
    assert sum(p.numel() for p in m.parameters()) == hier + s * w * out
    se = L.Res2NetModule(s * w, out, scale=s, fusion_norm=False, attn_layer="se")
    rd = max(1, out // 16)
    assert sum(p.numel() for p in se.parameters()) == hier + s * w * out + (out * rd + rd) + (rd * out + out)
    assert isinstance(se.attn, L.SqueezeExcite)


def test_res2net_module_scale1_is_plain_conv():
    m = L.Res2NetModule(8, 4, scale=1, fusion_norm=False).eval()
    x = _randn(2, 8, 5, 5)
    torch.testing.assert_close(m(x), m.fusion(m.convs[0](x)))


def test_res2net_module_stage_variant():
    torch.manual_seed(0)
    m = L.Res2NetModule(16, 8, scale=4, stride=2, stype="stage").eval()
    x = _randn(2, 16, 8, 8)
    assert m(x).shape == (2, 8, 4, 4)
    xs = x.split(4, dim=1)
    ys = [F.avg_pool2d(xs[0], 3, 2, 1)] + [conv(xi) for conv, xi in zip(m.convs, xs[1:])]
    torch.testing.assert_close(m(x), m.fusion_norm(m.fusion(torch.cat(ys, 1))))
    # stride 1 (res2net50's first block): the identity subset is still pooled, as in the
    # official code and timm (a 3x3 average with stride 1, zeros counted at the border)
    m1 = L.Res2NetModule(16, 8, scale=4, stype="stage").eval()
    ys1 = [F.avg_pool2d(xs[0], 3, 1, 1)] + [conv(xi) for conv, xi in zip(m1.convs, xs[1:])]
    torch.testing.assert_close(m1(x), m1.fusion_norm(m1.fusion(torch.cat(ys1, 1))))
    assert L.Res2NetModule(16, 8, scale=1, stype="stage").pool is None  # one subset: no pool


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(in_channels=32, out_channels=8, scale=0), r"scale=0 .*>= 1"),
        (dict(in_channels=30, out_channels=8, scale=4), r"scale=4 does not divide in_channels=30"),
        (dict(in_channels=32, out_channels=8, scale=4, groups=3), r"groups=3 does not divide width=8"),
        (dict(in_channels=32, out_channels=8, stride=2), r"stride=2 needs stype='stage'"),
        (dict(in_channels=32, out_channels=8, stype="bottom"), r"stype='bottom'"),
        (dict(in_channels=32, out_channels=8, form="eq3"), r"form='eq3' is not allowed; .*'paper', 'report_eq3'"),
    ],
)
def test_res2net_module_bad_configs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        L.Res2NetModule(**kwargs)


# ------------------------------------------------------------------ DenseNet layers
def test_dense_layer_and_block_shapes():
    layer = L.DenseLayer(16, growth_rate=12, bn_size=4)
    assert layer.conv1.out_channels == 48 and layer.conv2.out_channels == 12
    assert layer([_randn(2, 10, 6, 6), _randn(2, 6, 6, 6)]).shape == (2, 12, 6, 6)
    block = L.DenseBlock(3, 16, growth_rate=12)
    assert list(block.keys()) == ["denselayer1", "denselayer2", "denselayer3"]
    assert block.out_channels == 16 + 3 * 12
    assert block(_randn(2, 16, 6, 6)).shape == (2, 52, 6, 6)
    trans = L.Transition(52, compression=0.5)
    assert trans.out_channels == 26 and trans(_randn(2, 52, 6, 6)).shape == (2, 26, 3, 3)
    assert L.Transition(52, compression=1.0).out_channels == 52


def test_dense_layer_matches_formula():
    torch.manual_seed(0)
    layer = L.DenseLayer(8, growth_rate=4).eval()
    a, b = _randn(2, 5, 6, 6), _randn(2, 3, 6, 6, seed=1)
    x = torch.cat([a, b], 1)
    ref = layer.conv2(torch.relu(layer.norm2(layer.conv1(torch.relu(layer.norm1(x))))))
    torch.testing.assert_close(layer([a, b]), ref)


@pytest.mark.parametrize("compression", [0, 0.0, -0.5, 1.5, 2])
def test_transition_bad_compression(compression):
    with pytest.raises(ValueError, match=rf"compression={compression!r} .*\(0, 1\]"):
        L.Transition(32, compression=compression)


def test_dense_layer_bad_growth_rate():
    for k in (0, -12):
        with pytest.raises(ValueError, match=rf"growth_rate={k} .*>= 1"):
            L.DenseLayer(16, growth_rate=k)
        with pytest.raises(ValueError, match=rf"growth_rate={k}"):
            L.DenseBlock(2, 16, growth_rate=k)


def _dense2net_conv2(mid, k):
    return L.Res2NetModule(mid, k, scale=4, fusion_norm=False, attn_layer="se")


@pytest.mark.parametrize("conv2_layer", [None, _dense2net_conv2], ids=["densenet", "dense2net"])
def test_memory_efficient_block_is_identical(conv2_layer):
    torch.manual_seed(0)
    plain = L.DenseBlock(3, 8, growth_rate=4, conv2_layer=conv2_layer)
    eff = copy.deepcopy(plain)
    for layer in eff.values():
        layer.memory_efficient = True
    x1 = _randn(4, 8, 6, 6).requires_grad_()
    x2 = x1.detach().clone().requires_grad_()
    out1, out2 = plain(x1), eff(x2)
    torch.testing.assert_close(out2, out1, rtol=0, atol=0)
    g = _randn(*out1.shape, seed=5)
    out1.backward(g)
    out2.backward(g)
    torch.testing.assert_close(x2.grad, x1.grad, rtol=1e-6, atol=1e-6)
    for (n, p1), (_, p2) in zip(plain.named_parameters(), eff.named_parameters()):
        torch.testing.assert_close(p2.grad, p1.grad, rtol=1e-6, atol=1e-6, msg=n)
    for (n, b1), (_, b2) in zip(plain.named_buffers(), eff.named_buffers()):
        torch.testing.assert_close(b2, b1, rtol=0, atol=0, msg=n)  # BN statistics updated once
