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
