"""Tests of the model zoo: every registered model, exact parameter counts, equivalences."""

import copy

import pytest
import torch
import torchvision

from course_utils.models import DenseNet, create_model, densenet_bc, list_models, model_info


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def n_params(model):
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------- every model, smoke
@pytest.mark.parametrize("name", list_models())
def test_every_model_trains_and_evaluates(name):
    """A few SGD steps on one small batch: every parameter gets a finite gradient, the
    weights move, and the loss on that batch goes down (the model can learn at all)."""
    torch.manual_seed(0)
    info = model_info(name)
    model = create_model(name)
    x = torch.randn(4, *info.test_input_size)
    y = torch.arange(4) % info.num_classes
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    before = [p.detach().clone() for p in model.parameters()]

    model.train()
    losses = []
    for step in range(3):
        out = model(x)
        assert out.shape == (4, info.num_classes) and torch.isfinite(out).all()
        loss = torch.nn.functional.cross_entropy(out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if step == 0:
            missing = [n for n, p in model.named_parameters() if p.grad is None]
            assert not missing, f"parameters without gradient: {missing[:5]}"
            assert all(torch.isfinite(p.grad).all() for p in model.parameters())
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses
    moved = [n for (n, p), b in zip(model.named_parameters(), before) if not torch.equal(p, b)]
    assert len(moved) == len(before), "some parameters did not change"

    model.eval()
    with torch.no_grad():
        out = model(x)
    assert out.shape == (4, info.num_classes) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", list_models())
def test_every_model_takes_num_classes_and_in_chans(name):
    """Fashion-MNIST comes as 1-channel 32x32 images: in_chans=1 must work everywhere."""
    info = model_info(name)
    model = create_model(name, num_classes=7, in_chans=1).eval()
    size = info.test_input_size[1:]
    with torch.no_grad():
        out = model(torch.randn(1, 1, *size))
    assert out.shape == (1, 7)


# ---------------------------------------------------------------- exact counts
EXACT = {
    "xception": 22_855_952,  # Xception Table 3
    "densenet121": 7_978_856,  # torchvision
    "densenet169": 14_149_480,
    "densenet201": 20_013_928,
    "densenet161": 28_681_000,
    "densenet_bc_100_12": 769_162,  # DenseNet paper "0.8M" at 10 classes
    "densenet121_cifar": 7_048_548,  # the Dense2Net report's backbone at 100 classes
    "res2net50": 25_699_120,  # Res2Net-50 26w x 4s
    "res2next29_6cx24wx4s": 23_705_732,  # ours; the paper says 24.3M (course_utils/models/README.md)
    "dense2net121": 6_762_724,  # ours (course_utils/models/README.md)
    "separable_stack": 16_906,  # lesson 02 prints the same count for its inline copy
}


@pytest.mark.parametrize("name", sorted(EXACT))
def test_exact_parameter_counts(name):
    assert n_params(create_model(name)) == EXACT[name]


@pytest.mark.parametrize(
    "name,num_classes,millions",
    [("densenet_bc_250_24", 10, 15.3), ("densenet_bc_190_40", 10, 25.6), ("res2next29_6cx24wx4s", 100, 24.3)],
)
def test_paper_parameter_counts_in_millions(name, num_classes, millions):
    count = n_params(create_model(name, num_classes=num_classes))
    if name.startswith("densenet"):
        assert round(count / 1e6, 1) == millions  # DenseNet paper Table 2
    else:
        assert abs(count / 1e6 - millions) / millions < 0.03  # within 3%: see course_utils/models/README.md


def test_densenet_bc_generic_builder():
    assert n_params(densenet_bc(100, 12)) == 769_162
    assert n_params(densenet_bc(40, 12)) == n_params(create_model("densenet_bc_40_12"))
    with pytest.raises(ValueError, match=r"depth=41 .*\(L - 4\) divisible by 6"):
        densenet_bc(41, 12)


# ---------------------------------------------------------------- torchvision parity
@pytest.mark.parametrize("name", ["densenet121", "densenet169", "densenet201", "densenet161"])
def test_torchvision_densenet_weights_load_and_match(name):
    torch.manual_seed(0)
    theirs = getattr(torchvision.models, name)(weights=None).eval()
    ours = create_model(name).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)  # no key mapping needed
    assert n_params(ours) == n_params(theirs)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)


def test_torchvision_densenet121_train_step_matches():
    torch.manual_seed(0)
    theirs = torchvision.models.densenet121(weights=None)
    ours = create_model("densenet121")
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 3, 64, 64)
    a, b = ours(x), theirs(x)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    a.sum().backward()
    b.sum().backward()
    g_ours = dict(ours.named_parameters())
    for n, p in theirs.named_parameters():
        torch.testing.assert_close(g_ours[n].grad, p.grad, rtol=1e-5, atol=1e-6, msg=n)


# ---------------------------------------------------------------- Xception options
def test_xception_options():
    base = create_model("xception")
    no_res = create_model("xception", residual=False)
    assert n_params(no_res) == 21_878_880  # the 4 projection shortcuts (1x1 conv + BN) are gone
    assert all(b.shortcut is None for b in no_res.modules() if hasattr(b, "shortcut"))
    relu = create_model("xception_tiny", mid_act="relu")
    assert n_params(relu) == n_params(create_model("xception_tiny"))  # activations have no weights
    assert all(m.mid_act is not None for m in relu.modules() if type(m).__name__ == "SeparableConv2d")
    assert n_params(create_model("xception", num_classes=10)) == 22_855_952 - 2049 * 990
    x = torch.randn(1, 3, 299, 299)
    with torch.no_grad():
        assert base.eval().forward_features(x).shape == (1, 2048, 10, 10)  # Fig. 5: 10x10x2048
        assert create_model("xception_cifar").eval().forward_features(torch.randn(1, 3, 32, 32)).shape == (1, 2048, 2, 2)


# ---------------------------------------------------------------- spectrum_net (lesson 03)
def test_spectrum_net_mid_act_and_parameter_matching():
    from course_utils.models.spectrum import matched_width, spectrum_params

    # the default is unchanged: a ReLU between the 1x1 and the segmented 3x3 of every block
    default = create_model("spectrum_net", segments=64)
    blocks = [m for m in default.modules() if type(m).__name__ == "SegmentedConv"]
    assert len(blocks) == 3 and all(isinstance(b.act1, torch.nn.ReLU) for b in blocks)
    bare = create_model("spectrum_net", segments=64, mid_act=None)
    blocks = [m for m in bare.modules() if type(m).__name__ == "SegmentedConv"]
    assert all(b.act1 is None and b.norm1 is not None and b.act2 is not None for b in blocks)
    assert n_params(bare) == n_params(default) == 17_290
    torch.manual_seed(0)
    a = create_model("spectrum_net", segments=4)
    torch.manual_seed(0)
    b = create_model("spectrum_net", segments=4, mid_act="relu")
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))  # same weights
    with pytest.raises(ValueError, match=r"mid_act='tanhh' is not allowed"):
        create_model("spectrum_net", mid_act="tanhh")

    # counted on the meta device = counted on a real model
    for s, c, kw in [(1, 23, {}), (3, 36, {}), (8, 48, dict(num_classes=100, in_chans=1))]:
        assert spectrum_params(s, c, **kw) == n_params(create_model("spectrum_net", segments=s, channels=c, **kw))
    # the width closest to the target, a multiple of the segment count; None: segments = width
    target = spectrum_params(64, 64)
    assert matched_width(target, None) == (64, 17_290)
    assert matched_width(target, 1) == (23, 17_053)
    w, p = matched_width(target, 3)
    assert (w, p) == (36, 17_398) and w % 3 == 0
    for s in (1, 3, None):  # no allowed width is closer than the one found
        w, p = matched_width(target, s)
        step = s or 1
        for other in (w - step, w + step):
            q = spectrum_params(s or other, other)
            assert abs(q - target) >= abs(p - target)
    with pytest.raises(ValueError, match="max_width"):
        matched_width(10**9, 1, max_width=64)
    with pytest.raises(ValueError, match="target_params"):
        matched_width(0, 1)


# ---------------------------------------------------------------- Dense2Net knobs
def test_dense2net_structure_and_knobs():
    m = create_model("dense2net121")
    layer = m.features.denseblock1.denselayer1
    assert type(layer.conv2).__name__ == "Res2NetModule"
    assert layer.conv1.out_channels == 128 and layer.conv2.scale == 4 and layer.conv2.width == 32
    assert layer.conv2.fusion.out_channels == 32 and layer.conv2.attn is None
    counts = {
        "scale=2": n_params(create_model("dense2net121", scale=2)),
        "scale=8": n_params(create_model("dense2net121", scale=8)),
        "groups=32": n_params(create_model("dense2net121", groups=32)),
        "se": n_params(create_model("dense2net121", attn_layer="se")),
    }
    assert counts == {"scale=2": 7_293_540, "scale=8": 6_096_420, "groups=32": 5_209_252, "se": 6_772_120}
    wide = create_model("dense2net121", width=48)
    assert wide.features.denseblock1.denselayer1.conv1.out_channels == 4 * 48
    assert create_model("dense2net121", attn_layer="se").features.denseblock1.denselayer1.conv2.attn is not None


@pytest.mark.parametrize(
    "name,kwargs,match",
    [
        ("dense2net121", dict(scale=0), r"scale=0 .*>= 1"),
        ("dense2net121", dict(scale=3), r"scale=3 does not divide in_channels=128"),
        ("dense2net121", dict(groups=5), r"groups=5 does not divide width=32"),
        ("dense2net_tiny", dict(width=0), r"width=0"),
        ("densenet121", dict(growth_rate=0), r"growth_rate=0 .*>= 1"),
        ("densenet_bc_100_12", dict(growth_rate=-4), r"growth_rate=-4"),
        ("densenet121_cifar", dict(compression=0.0), r"compression=0.0 .*\(0, 1\]"),
        ("dense2net121", dict(compression=1.2), r"compression=1.2 .*\(0, 1\]"),
        ("densenet121", dict(stem="big"), r"stem='big'"),
        ("res2net50", dict(scale=0), r"scale=0"),
        ("res2next29_6cx24wx4s", dict(cardinality=0), r"cardinality=0 .*>= 1"),
        ("res2net50", dict(planes=(8, 16, 32, 64), base_width=4), r"base_width=4 gives a split width of 0"),
        ("xception", dict(mid_act="tanhh"), r"mid_act='tanhh' is not allowed"),
    ],
)
def test_bad_model_configs(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        create_model(name, **kwargs)


def test_unknown_model_name():
    with pytest.raises(ValueError, match=r"unknown model name='densnet121'.*Did you mean: densenet121"):
        create_model("densnet121")
    with pytest.raises(ValueError, match=r"Allowed: one of list_models\(\): cifar_cnn"):
        create_model("resnet18")
    with pytest.raises(ValueError, match="unknown model name"):
        model_info("nope")


def test_list_models_patterns():
    names = list_models()
    assert names == sorted(names) and len(names) == len(set(names))
    assert list_models("dense2net*") == ["dense2net121", "dense2net_tiny"]
    assert set(list_models("densenet1*")) == {"densenet121", "densenet121_cifar", "densenet161", "densenet169"}
    assert list_models("nothing*") == []
    families = {model_info(n).family for n in names}
    assert families == {"xception", "densenet", "dense2net", "res2net", "cnn", "spectrum"}
    for fam in families:  # at least one small CPU-lesson member per family
        assert any("small" in model_info(n).tags for n in names if model_info(n).family == fam), fam


# ---------------------------------------------------------------- memory-efficient mode
@pytest.mark.parametrize("name", ["densenet_tiny", "dense2net_tiny"])
def test_memory_efficient_model_is_identical(name):
    torch.manual_seed(0)
    plain = create_model(name)
    eff = create_model(name, memory_efficient=True)
    eff.load_state_dict(plain.state_dict())
    assert all(l.memory_efficient for l in eff.modules() if type(l).__name__ == "DenseLayer")
    x = torch.randn(4, 3, 16, 16)
    y = torch.randint(0, 10, (4,))
    losses = []
    for m in (plain, eff):
        m.train()
        loss = torch.nn.functional.cross_entropy(m(x), y)
        loss.backward()
        losses.append(loss)
    torch.testing.assert_close(losses[1], losses[0], rtol=0, atol=0)
    grads = dict(plain.named_parameters())
    for n, p in eff.named_parameters():
        torch.testing.assert_close(p.grad, grads[n].grad, rtol=1e-5, atol=1e-7, msg=n)
    bufs = dict(plain.named_buffers())
    for n, b in eff.named_buffers():
        torch.testing.assert_close(b, bufs[n], rtol=0, atol=0, msg=n)
    plain.eval(), eff.eval()
    with torch.no_grad():
        torch.testing.assert_close(eff(x), plain(x), rtol=0, atol=0)


def test_densenet_is_the_one_class():
    assert isinstance(create_model("dense2net121"), DenseNet)
    assert isinstance(create_model("densenet_bc_40_12"), DenseNet)
    m = copy.deepcopy(create_model("densenet_tiny"))
    assert m.features.conv0.kernel_size == (3, 3) and not hasattr(m.features, "pool0")
