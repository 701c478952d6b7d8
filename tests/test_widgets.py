"""Widgets: their pure functions, and each explorer driven without a browser."""
import pytest
import torch
from torch import nn

from course_utils import profile, widgets


def test_divisors():
    assert widgets.divisors(12) == [1, 2, 3, 4, 6, 12]
    assert widgets.divisors(1) == [1]
    with pytest.raises(ValueError, match="n=0"):
        widgets.divisors(0)


def test_segmented_cost_matches_hand_formula():
    # 1x1: cin*c ; spatial grouped 3x3: c * (c/s) * 9 ; MACs = params * H * W (no bias)
    for c, s, cin in [(64, 1, 64), (64, 4, 32), (64, 64, 16), (48, 3, 48)]:
        r = widgets.segmented_cost(c, s, cin, size=8)
        params = cin * c + c * (c // s) * 9
        assert r["params"] == params
        assert r["macs"] == params * 8 * 8


def test_spectrum_ends_are_the_regular_and_the_extreme_form():
    rows = widgets.spectrum_table(32, size=4)
    assert [r["segments"] for r in rows] == widgets.divisors(32)
    regular = nn.Sequential(nn.Conv2d(32, 32, 1, bias=False), nn.Conv2d(32, 32, 3, padding=1, bias=False))
    extreme = nn.Sequential(nn.Conv2d(32, 32, 1, bias=False),
                            nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False))
    assert rows[0]["params"] == profile.count_params(regular)
    assert rows[-1]["params"] == profile.count_params(extreme)
    assert rows[0]["macs"] == profile.count_macs(regular, (1, 32, 4, 4))
    # cost falls monotonically along the spectrum
    assert all(a["params"] > b["params"] for a, b in zip(rows, rows[1:]))


def test_spectrum_explorer_updates_on_control_changes():
    e = widgets.SpectrumExplorer(channels=64, segments=4, size=8, plot=False)
    before = e.table.value
    assert f"{widgets.segmented_cost(64, 4, None, 8)['params']:,} parameters" in before
    e.set(segments=16)
    want = widgets.segmented_cost(64, 16, None, 8)
    assert f"{want['params']:,} parameters" in e.table.value and e.table.value != before
    # a channel count whose divisors do not include the current segments moves segments
    e.set(segments=64)
    e.set(channels=48)
    assert e.controls["segments"].value == 48 and e.controls["segments"].options == tuple(widgets.divisors(48))
    assert f"{widgets.segmented_cost(48, 48, None, 8)['params']:,} parameters" in e.text


def test_explorer_falls_back_to_text_without_a_frontend():
    e = widgets.SpectrumExplorer(channels=32, segments=2, size=8, plot=False)
    bundle = e._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"] == e.text and "segments" in bundle["text/plain"]
    with pytest.raises(ValueError, match="'depth' is not a control"):
        e.set(depth=3)


def test_spectrum_plot_path_redraws(monkeypatch):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    shown = []
    monkeypatch.setattr(plt, "show", lambda *a, **k: shown.append(plt.gcf()))
    e = widgets.SpectrumExplorer(channels=16, segments=4, size=8, plot=True)
    e.set(segments=8)
    assert len(shown) == 2  # one figure at construction, one after the change
    line = shown[-1].axes[0].lines[0]
    assert list(line.get_xdata()) == widgets.divisors(16)
    assert list(line.get_ydata()) == [r["params"] for r in widgets.spectrum_table(16, size=8)]


# ------------------------------------------------------------------ Dense2Net explorer
def test_allowed_scales_and_groups_divide_the_bottleneck():
    assert widgets.allowed_scales(12) == [1, 2, 3, 4, 6, 8]        # divisors of 48 up to 8
    assert widgets.allowed_scales(32) == [1, 2, 4, 8]              # divisors of 128 up to 8
    assert widgets.allowed_groups(32, 4) == [1, 2, 4, 8, 16, 32]   # divisors of w = 32
    assert widgets.allowed_groups(12, 8) == [1, 2, 3, 6]           # w = 6
    with pytest.raises(ValueError, match="scale=5 is not allowed for growth_rate=12"):
        widgets.allowed_groups(12, 5)
    with pytest.raises(ValueError, match="groups=4 is not allowed.*allowed: 1, 2, 3, 6"):
        widgets.dense2net_config(12, 8, groups=4)
    with pytest.raises(ValueError, match="growth_rate=0"):
        widgets.allowed_scales(0)
    # every offered (s, C) builds a Dense2Net whose Res2Net modules split the 48-channel
    # bottleneck into s subsets of the width the explorer shows, convolved with C groups,
    # and whose parameter count is the one the explorer shows
    from course_utils.layers import Res2NetModule
    from course_utils.models import create_model

    for s in widgets.allowed_scales(12):
        for g in widgets.allowed_groups(12, s):
            cost = widgets.dense2net_cost("tiny", 12, s, g, False)
            with torch.device("meta"):
                net = create_model("dense2net_tiny", num_classes=10,
                                   **widgets.dense2net_config(12, s, g, False))
            mods = [m for m in net.modules() if isinstance(m, Res2NetModule)]
            assert mods and all((m.scale, m.width) == (s, cost["width"]) for m in mods)
            convs = [c for m in mods for c in m.convs.modules() if isinstance(c, nn.Conv2d)]
            assert convs and all((c.groups, c.in_channels) == (g, cost["width"]) for c in convs)
            assert profile.count_params(net) == cost["params"]


def test_dense2net_cost_counts_the_zoo_models():
    from course_utils.models import create_model

    c = widgets.dense2net_cost("report", growth_rate=32, scale=4)
    assert c["params"] == 6_762_724 and c["baseline_params"] == 7_048_548   # models README
    se = widgets.dense2net_cost("report", growth_rate=32, scale=4, se=True)
    assert se["params"] == 6_772_120
    t = widgets.dense2net_cost("tiny", growth_rate=16, scale=8, groups=2, se=True)
    m = create_model("dense2net_tiny", growth_rate=16, scale=8, groups=2, attn_layer="se")
    assert t["params"] == profile.count_params(m)
    assert t["macs"] == profile.count_macs(m, (1, 3, 32, 32))
    base = create_model("densenet_tiny", growth_rate=16)
    assert t["baseline_params"] == profile.count_params(base)
    with pytest.raises(ValueError, match="backbone='huge'"):
        widgets.dense2net_cost("huge")


def test_format_dense2net_shows_each_backbone():
    costs = [widgets.dense2net_cost(b, 12, 4, 1, False) for b in widgets.BACKBONES]
    text = widgets.format_dense2net(costs)
    assert "k=12, scale s=4 (split width w=12), groups C=1, SE off" in text
    for c in costs:
        assert f"{c['params']:,} parameters" in text and c["baseline"] in text


def test_dense2net_explorer_updates_and_keeps_controls_valid():
    e = widgets.Dense2NetExplorer(growth_rate=12, scale=4)
    first = e.summary.value
    e.set(scale=8)
    want = widgets.dense2net_cost("tiny", 12, 8, 1, False)["params"]
    assert f"{want:,} parameters" in e.summary.value and e.summary.value != first
    assert e.controls["groups"].options == tuple(widgets.allowed_groups(12, 8))
    e.set(se=True)
    assert f"{widgets.dense2net_cost('tiny', 12, 8, 1, True)['params']:,} parameters" in e.summary.value
    e.set(groups=6)
    # growth rate 32: scale 8 stays (divides 128) but groups 6 no longer divides w = 16
    e.set(growth_rate=32)
    assert e.config == {"growth_rate": 32, "scale": 8, "groups": 4, "se": True}
    assert e.controls["scale"].options == tuple(widgets.allowed_scales(32))
    assert f"{widgets.dense2net_cost('report', 32, 8, 4, True)['params']:,} parameters" in e.text
    # scale 3 is allowed at k = 12 only
    e.set(growth_rate=12, scale=3)
    e.set(growth_rate=16)
    assert e.config["scale"] in widgets.allowed_scales(16) and e.config["scale"] <= 3
    bundle = e._repr_mimebundle_()
    assert bundle["text/plain"] == e.text and "application/vnd.jupyter.widget-view+json" in bundle
    with pytest.raises(ValueError, match="groups=5 is not allowed"):
        widgets.Dense2NetExplorer(growth_rate=12, scale=4, groups=5)
    with pytest.raises(ValueError, match="growth_rate=10 is not allowed"):
        widgets.Dense2NetExplorer(growth_rate=10, scale=4)


def test_dense2net_explorer_buttons(one_torch_thread):
    from course_utils import data

    bundle = data.synthetic_bundle(64, 32, 32, num_classes=4, seed=1, batch_size=32)
    e = widgets.Dense2NetExplorer(growth_rate=8, scale=2, data=bundle, latency_batch=2,
                                  train_config=dict(epochs=1, batch_size=32))
    lat = e.measure_latency(runs=1)
    assert set(lat["ms"]) == set(widgets.BACKBONES) and all(v > 0 for v in lat["ms"].values())
    text = e.show_summary(depth=3)
    assert "Total params: " + f"{widgets.dense2net_cost('tiny', 8, 2, 1, False)['params']:,}" in text
    rec = e.train()
    assert rec["config"] == e.config and len(rec["history"]) == 1
    # the summary names the model the button trained, with its arguments
    assert rec["summary"]["config"]["model"] == "dense2net_tiny"
    assert rec["summary"]["config"]["model_args"] == {"growth_rate": 8, "scale": 2, "groups": 1,
                                                      "attn_layer": None}
    assert e.results == [rec] and "best validation accuracy" in e.status.value
    # a click goes through the same code; errors show in the widget instead of raising
    e.data = None
    e.buttons["train"].click()
    assert "RuntimeError: no data" in e.status.value


def test_dense2net_explorer_train_overlays_every_run_with_a_band_per_repeated_setting(one_torch_thread):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.collections import PolyCollection

    from course_utils import data

    bundle = data.synthetic_bundle(32, 16, 16, num_classes=4, seed=2, batch_size=16)
    e = widgets.Dense2NetExplorer(growth_rate=8, scale=2, data=bundle,
                                  train_config=dict(epochs=1, batch_size=16, seed=5))
    assert e.next_seed() == 5
    e.buttons["train"].click()                  # the button's handler: setting A, seed 5
    assert "Error" not in e.status.value, e.status.value
    e.buttons["train"].click()                  # A again: its next seed
    e.set(scale=4)
    rec = e.train()                             # setting B, its first seed
    a, b = "k=8 s=2 C=1 SE off", "k=8 s=4 C=1 SE off"
    assert [(r["setting"], r["seed"]) for r in e.results] == [(a, 5), (a, 6), (b, 5)]
    assert rec is e.results[-1] and rec["summary"]["config"]["model_args"]["scale"] == 4
    assert rec["summary"].get("test_acc") is None   # the button chooses on validation only
    assert e.next_seed() == 6 and e.next_seed(dict(e.config, scale=2)) == 7
    # one figure holds all three runs, labelled by setting and seed, and one band (A's)
    for ax in e.figure.axes:
        labels = [line.get_label() for line in ax.lines]
        assert sorted(labels) == sorted([f"{a}, seed 5", f"{a}, seed 6", f"{b}, seed 5"])
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(bands) == 1 and bands[0].get_label() == f"{a}: mean +- 1 std (2 seeds)"
    # the band is mean +- std of A's two runs at the epoch
    ax = e.figure.axes[0]
    va = [100 * r["history"][0]["val_acc"] for r in e.results[:2]]
    (band,) = [c for c in ax.collections if isinstance(c, PolyCollection)]
    verts = band.get_paths()[0].vertices[:, 1]
    m, sd = sum(va) / 2, abs(va[0] - va[1]) / 2 ** 0.5
    assert min(verts) == pytest.approx(m - sd) and max(verts) == pytest.approx(m + sd)
    assert f"{a}: 2 run(s), seed(s) 5, 6" in e.status.value and f"{b}: 1 run(s)" in e.status.value
    assert "1 seed: no spread" in widgets.format_runs(e.results[2:])


def test_runs_figure_draws_a_live_run_dashed_and_no_band_for_one_seed():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hist = [{"epoch": 1, "val_acc": 0.3, "train_acc": 0.4}, {"epoch": 2, "val_acc": 0.5, "train_acc": 0.6}]
    runs = [{"setting": "A", "seed": 0, "history": hist},
            {"setting": "A", "seed": 1, "history": hist[:1], "done": False}]
    fig = widgets.runs_figure(runs, metrics=("val_acc",))
    ax = fig.axes[0]
    assert [line.get_linestyle() for line in ax.lines] == ["-", "--"]
    assert ax.lines[1].get_label() == "A, seed 1 (training)"
    assert not ax.collections  # a finished run and a live one: one seed, no band
    assert list(ax.lines[0].get_ydata()) == [30.0, 50.0]
    plt.close(fig)
