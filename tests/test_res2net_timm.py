"""Our Res2Net computes timm's Res2Net function (Res2Net paper Eq. 1), given timm's weights.

timm's randomly initialised weights (no download: pretrained=False) are loaded into ours
through course_utils.models.res2net.load_timm_res2net_state, BatchNorm statistics and
affine parameters first set to random values, and both networks run in eval mode in
float64 on one thread: whole network, single blocks ('stage' blocks at stride 1 and 2,
normal blocks) and other scales. Also: the report's Eq. 3 option computes another
function with the same parameters.
"""

import pytest
import torch
from torch import nn

from course_utils import layers as L
from course_utils.models import create_model
from course_utils.models.res2net import load_timm_res2net_state, timm_res2net_state
from course_utils.profile import count_params

try:
    import timm
except ImportError:  # pragma: no cover - timm is in the test extra
    timm = None

needs_timm = pytest.mark.skipif(timm is None, reason="needs timm (the test extra: pip install -e .[test])")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

REL_TOL = 1e-10  # float64; max |ours - timm| / max |timm| measured ~2e-15


def _randomize_bn(model: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                for t, lo, span in ((m.weight, 0.5, 1.0), (m.running_var, 0.5, 1.0)):
                    t.copy_(lo + span * torch.rand(t.shape, generator=g, dtype=t.dtype))
                for t in (m.bias, m.running_mean):
                    t.copy_(0.1 * torch.randn(t.shape, generator=g, dtype=t.dtype))


def _pair(scale=4, **timm_kwargs):
    """(timm model, ours) with the same weights, eval mode, float64."""
    torch.manual_seed(0)
    theirs = timm.create_model("res2net50_26w_4s", pretrained=False, block_args=dict(scale=scale), **timm_kwargs)
    theirs = theirs.double().eval()
    _randomize_bn(theirs, seed=1)
    ours = create_model("res2net50", scale=scale, **({"layers": timm_kwargs["layers"]} if "layers" in timm_kwargs else {}))
    ours = ours.double().eval()
    result = load_timm_res2net_state(ours, theirs.state_dict())
    assert not result.missing_keys and not result.unexpected_keys
    return theirs, ours


def _rel_diff(a, b) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


@needs_timm
def test_res2net50_computes_timms_function():
    theirs, ours = _pair()
    assert count_params(ours) == count_params(theirs) == 25_699_120
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        want, got = theirs(x), ours(x)
    assert _rel_diff(got, want) < REL_TOL, f"relative max |diff| = {_rel_diff(got, want):.2e}"
    # the first block is a stage block at stride 1: its identity subset is pooled, as timm's
    first = ours.stages[0][0].res2
    assert first.stype == "stage" and first.pool is not None and first.pool.stride == 1


@needs_timm
def test_single_blocks_agree_stage_and_normal():
    theirs, ours = _pair()
    g = torch.Generator().manual_seed(3)
    for (n, j), (i, _) in [((2, 0), (1, 0)), ((4, 0), (3, 0)), ((1, 1), (0, 1)), ((3, 2), (2, 2)), ((1, 0), (0, 0))]:
        t_block, o_block = getattr(theirs, f"layer{n}")[j], ours.stages[i][j]
        assert (t_block.is_first, o_block.res2.stype) == (j == 0, "stage" if j == 0 else "normal")
        x = torch.randn(2, t_block.conv1.in_channels, 16, 16, generator=g, dtype=torch.float64)
        with torch.no_grad():
            a, b = t_block(x), o_block(x)
        assert a.shape == b.shape
        assert _rel_diff(b, a) < REL_TOL, f"layer{n}.{j}: relative max |diff| = {_rel_diff(b, a):.2e}"
    stride2 = ours.stages[1][0].res2
    assert stride2.stype == "stage" and stride2.pool is not None and stride2.convs[0].conv.stride == (2, 2)


@needs_timm
@pytest.mark.parametrize("scale", [1, 2, 6, 8])
def test_other_scales_agree(scale):
    theirs, ours = _pair(scale=scale, layers=[1, 2, 1, 1])
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    with torch.no_grad():
        assert _rel_diff(ours(x), theirs(x)) < REL_TOL


@needs_timm
def test_mapping_rejects_foreign_keys():
    ours = create_model("res2net50", layers=(1, 1, 1, 1))
    with pytest.raises(ValueError, match=r"no place in this Res2Net: \['layer9.0.conv1.weight'"):
        timm_res2net_state(ours, {"layer9.0.conv1.weight": torch.zeros(1)})


# ------------------------------------------------------- the report's Eq. 3 as an option
def test_report_eq3_form_is_another_function_with_the_same_parameters():
    torch.manual_seed(0)
    paper = L.Res2NetModule(32, 16, scale=4).eval()
    eq3 = L.Res2NetModule(32, 16, scale=4, form="report_eq3").eval()
    assert count_params(paper) == count_params(eq3)
    eq3.load_state_dict(paper.state_dict())  # same names and shapes: same weights
    x = torch.randn(2, 32, 8, 8)
    with torch.no_grad():
        a, b = paper(x), eq3(x)
        assert (a - b).abs().max() > 1e-3
        x0 = x.clone()
        x0[:, :8] = 0  # x_1 = 0: the added y_1 is 0, so the forms agree
        torch.testing.assert_close(paper(x0), eq3(x0))


def test_dense2net_form_keyword_and_unchanged_counts():
    default, eq3 = create_model("dense2net121"), create_model("dense2net121", form="report_eq3")
    assert count_params(default) == count_params(eq3) == 6_762_724  # scale 4, as before the change
    assert default.features.denseblock1.denselayer1.conv2.form == "paper"
    assert {m.form for m in eq3.modules() if isinstance(m, L.Res2NetModule)} == {"report_eq3"}
    tiny, tiny_eq3 = create_model("dense2net_tiny").eval(), create_model("dense2net_tiny", form="report_eq3").eval()
    assert count_params(tiny) == count_params(tiny_eq3) == 94_954
    tiny_eq3.load_state_dict(tiny.state_dict())
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert (tiny(x) - tiny_eq3(x)).abs().max() > 1e-6
    with pytest.raises(ValueError, match=r"form='eq3' is not allowed; allowed: 'paper', 'report_eq3'"):
        create_model("dense2net_tiny", form="eq3")
