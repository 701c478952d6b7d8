"""Interactive explorers for the lessons, over pure functions that tests call directly.

Each explorer is an object with
- `.controls`: the ipywidgets it is driven by (sliders, toggles, buttons);
- `.set(**values)`: set controls from code (tests and papermill use this);
- `.text`: the current numbers as plain text;
- a display that is the widget in JupyterLab and, where no widget frontend exists
  (papermill, nbconvert, a plain Python console), that same text instead of a blank.

Only cheap work runs on a control change; anything slow sits behind a button.
"""

from __future__ import annotations

import functools
import html


from . import profile
from .layers import SegmentedConv


# --------------------------------------------------------------------- pure functions
def divisors(n: int) -> list[int]:
    """All d with n % d == 0, ascending: the segment counts a layer of n channels allows."""
    if n < 1:
        raise ValueError(f"n={n} must be >= 1")
    return [d for d in range(1, n + 1) if n % d == 0]


@functools.lru_cache(maxsize=512)
def segmented_cost(channels: int, segments: int, in_channels: int | None = None,
                   size: int = 32, kernel_size: int = 3) -> dict:
    """Parameters and MACs of a 1x1 conv (in_channels -> channels) followed by a kxk conv
    over `segments` channel segments, on a size x size input (Xception sec. 1.2), as
    counted by course_utils.profile on the real module (no bias, no BN)."""
    cin = channels if in_channels is None else in_channels
    m = SegmentedConv(cin, channels, segments=segments, kernel_size=kernel_size)
    pw = m.pointwise.weight.numel()
    return {"segments": segments, "channels_per_segment": channels // segments,
            "params": profile.count_params(m), "params_1x1": pw,
            "params_spatial": m.spatial.weight.numel(),
            "macs": profile.count_macs(m, (1, cin, size, size))}


def spectrum_table(channels: int, in_channels: int | None = None, size: int = 32,
                   kernel_size: int = 3) -> list[dict]:
    """segmented_cost for every allowed segment count, from a regular conv (1 segment) to
    the extreme form (one segment per channel)."""
    return [segmented_cost(channels, s, in_channels, size, kernel_size) for s in divisors(channels)]


def format_spectrum(rows: list[dict], highlight: int | None = None) -> str:
    lines = [f"{'segments':>8} {'ch/seg':>6} {'params':>10} {'MACs':>13} {'vs 1 segment':>12}"]
    base = rows[0]["params"]
    for r in rows:
        mark = " <" if r["segments"] == highlight else ""
        lines.append(f"{r['segments']:8d} {r['channels_per_segment']:6d} {r['params']:10,d} "
                     f"{r['macs']:13,d} {r['params'] / base:11.1%}{mark}")
    return "\n".join(lines)


# ------------------------------------------------------------------------ plumbing
class _Explorer:
    """Common display logic: widget in a frontend, text elsewhere."""

    controls: dict
    ui = None

    @property
    def text(self) -> str:  # pragma: no cover - each explorer defines it
        raise NotImplementedError

    def set(self, **values) -> None:
        for name, value in values.items():
            if name not in self.controls:
                raise ValueError(f"{name!r} is not a control of {type(self).__name__}; "
                                 f"allowed: {', '.join(self.controls)}")
            self.controls[name].value = value

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = self.ui._repr_mimebundle_(include=include, exclude=exclude) or {}
        bundle = dict(bundle)
        bundle["text/plain"] = self.text  # what papermill/nbconvert/a console shows
        return bundle

    def __repr__(self) -> str:
        return self.text


def _pre(text: str) -> str:
    return f"<pre style='font-size:12px;line-height:1.3'>{html.escape(text)}</pre>"


# ------------------------------------------------------------- spectrum (lesson 03)
class SpectrumExplorer(_Explorer):
    """Lesson 03: segments and channels -> parameters and MACs of the segmented module,
    as a table and a log-scale plot over the whole spectrum. Nothing is retrained."""

    def __init__(self, channels: int = 64, segments: int = 4, in_channels: int | None = None,
                 size: int = 32, plot: bool = True):
        import ipywidgets as W

        self.in_channels, self.size, self.plot = in_channels, size, plot
        self.controls = {
            "channels": W.Dropdown(options=[16, 32, 48, 64, 96, 128, 192, 256], value=channels,
                                   description="channels"),
            "segments": W.SelectionSlider(options=divisors(channels), value=segments,
                                          description="segments", continuous_update=False),
        }
        self.table = W.HTML()
        self.out = W.Output()
        self.ui = W.VBox([W.HBox(list(self.controls.values())), self.table, self.out])
        self.controls["channels"].observe(self._on_channels, names="value")
        self.controls["segments"].observe(self._refresh, names="value")
        self._refresh()

    def _on_channels(self, change):
        seg = self.controls["segments"]
        allowed = divisors(change["new"])
        keep = seg.value if seg.value in allowed else max(d for d in allowed if d <= seg.value)
        self._updating = True  # one refresh at the end, not one per trait change
        try:
            seg.options = allowed
            seg.value = keep
        finally:
            self._updating = False
        self._refresh()

    @property
    def rows(self) -> list[dict]:
        return spectrum_table(self.controls["channels"].value, self.in_channels, self.size)

    @property
    def current(self) -> dict:
        return segmented_cost(self.controls["channels"].value, self.controls["segments"].value,
                              self.in_channels, self.size)

    @property
    def text(self) -> str:
        c = self.current
        ch = self.controls["channels"].value
        head = (f"1x1 conv + 3x3 conv over {c['segments']} segment(s) of {ch} channels "
                f"on {self.size}x{self.size}: {c['params']:,} parameters, {c['macs']:,} MACs")
        return head + "\n" + format_spectrum(self.rows, highlight=c["segments"])

    def _refresh(self, *_):
        if getattr(self, "_updating", False):
            return
        self.table.value = _pre(self.text)
        if not self.plot:
            return
        import matplotlib.pyplot as plt

        rows, cur = self.rows, self.current
        self.out.clear_output(wait=True)
        with self.out:
            fig, ax = plt.subplots(figsize=(6, 2.6))
            xs = [r["segments"] for r in rows]
            ax.plot(xs, [r["params"] for r in rows], "o-", label="parameters")
            ax.plot(xs, [r["macs"] / (self.size * self.size) for r in rows], "s--",
                    label="MACs per pixel")
            ax.axvline(cur["segments"], color="gray", lw=1)
            ax.set_xscale("log", base=2), ax.set_yscale("log")
            ax.set_xlabel("segments (1 = regular conv, channels = extreme / separable)")
            ax.legend(fontsize=8)
            fig.tight_layout()
            plt.show()


def explore_spectrum(**kwargs) -> SpectrumExplorer:
    return SpectrumExplorer(**kwargs)


__all__ = ["divisors", "segmented_cost", "spectrum_table", "format_spectrum",
           "SpectrumExplorer", "explore_spectrum"]
