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

from . import checks, profile
from .callbacks import Callback
from .layers import SegmentedConv


# --------------------------------------------------------------------- pure functions
def divisors(n: int) -> list[int]:
    """All d with n % d == 0, ascending: the segment counts a layer of n channels allows."""
    checks.integer("n", n, 1)
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
            ax.plot(xs, [r["macs"] for r in rows], "s--",
                    label=f"MACs ({self.size}x{self.size} input)")
            ax.axvline(cur["segments"], color="gray", lw=1)
            ax.set_xscale("log", base=2), ax.set_yscale("log")
            ax.set_xlabel("segments (1 = regular conv, channels = extreme / separable)")
            ax.legend(fontsize=8)
            fig.tight_layout()
            plt.show()


__all__ = ["divisors", "segmented_cost", "spectrum_table", "format_spectrum",
           "SpectrumExplorer"]


# ------------------------------------------------------------ Dense2Net (lesson 06)
# The two backbones the explorer prices every configuration on. Both have DenseNet-BC's
# bottleneck of bn_size * k = 4k channels, which Dense2Net splits into s subsets of
# w = 4k / s channels (report sec. 3.1-3.2), so one (k, s, C) is valid on both.
BACKBONES = {
    "tiny": dict(model="dense2net_tiny", baseline="densenet_tiny", num_classes=10,
                 label="tiny (blocks 4-4-4, 10 classes): the one this CPU trains"),
    "report": dict(model="dense2net121", baseline="densenet121_cifar", num_classes=100,
                   label="report (DenseNet-121 layout 6-12-24-16, 100 classes)"),
}
BN_SIZE = 4
GROWTH_RATES = (8, 12, 16, 24, 32)


def allowed_scales(growth_rate: int, max_scale: int = 8, bn_size: int = BN_SIZE) -> list[int]:
    """The scales s that split the 4k-channel bottleneck into equal subsets (s divides
    bn_size * k), up to max_scale."""
    checks.integer("growth_rate", growth_rate)
    return [s for s in divisors(bn_size * growth_rate) if s <= max_scale]


def allowed_groups(growth_rate: int, scale: int, bn_size: int = BN_SIZE) -> list[int]:
    """The cardinalities C of the 3x3 convolutions: C must divide the split width
    w = bn_size * k / s (both the input and the output of every K_i have w channels)."""
    checks.integer("growth_rate", growth_rate)
    checks.integer("scale", scale)
    mid = bn_size * growth_rate
    if mid % scale:
        raise ValueError(f"scale={scale} is not allowed for growth_rate={growth_rate}: it must "
                         f"divide the bottleneck width {bn_size}*k = {mid}; allowed: "
                         f"{', '.join(map(str, divisors(mid)))}")
    return divisors(mid // scale)


def dense2net_config(growth_rate: int = 12, scale: int = 4, groups: int = 1,
                     se: bool = False) -> dict:
    """Model arguments of one explorer configuration, after checking it."""
    if groups not in allowed_groups(growth_rate, scale):
        raise ValueError(f"groups={groups} is not allowed for growth_rate={growth_rate}, "
                         f"scale={scale}: it must divide the split width w = "
                         f"{BN_SIZE * growth_rate // scale}; allowed: "
                         f"{', '.join(map(str, allowed_groups(growth_rate, scale)))}")
    return dict(growth_rate=growth_rate, scale=scale, groups=groups,
                attn_layer="se" if se else None)


@functools.lru_cache(maxsize=256)
def dense2net_cost(backbone: str = "tiny", growth_rate: int = 12, scale: int = 4,
                   groups: int = 1, se: bool = False, size: int = 32) -> dict:
    """Parameters and MACs (one size x size RGB image) of a Dense2Net configuration on a
    backbone of BACKBONES, and of the DenseNet with the same backbone and growth rate, as
    course_utils.profile counts them on the real modules."""
    checks.one_of("backbone", backbone, tuple(BACKBONES))
    b = BACKBONES[backbone]
    args = dense2net_config(growth_rate, scale, groups, se)
    params, macs = _count_on_meta(b["model"], b["num_classes"], size, **args)
    base_params, base_macs = _count_on_meta(b["baseline"], b["num_classes"], size,
                                            growth_rate=growth_rate)
    return {"backbone": backbone, "model": b["model"], "growth_rate": growth_rate,
            "scale": scale, "groups": groups, "se": se, "width": BN_SIZE * growth_rate // scale,
            "params": params, "macs": macs, "baseline": b["baseline"],
            "baseline_params": base_params, "baseline_macs": base_macs}


@functools.lru_cache(maxsize=256)
def _count_on_meta(name: str, num_classes: int, size: int, **args) -> tuple[int, int]:
    """Parameters and MACs of a zoo model built on the meta device: shapes only, no
    memory and no arithmetic, so a DenseNet-121 is counted in well under a second."""
    import torch

    from .models import create_model

    with torch.device("meta"):
        net = create_model(name, num_classes=num_classes, **args)
    params = profile.count_params(net)
    # BatchNorm has no multiply-accumulates that FlopCounterMode counts, yet decomposing it
    # on the meta device was most of the counting time (about 60% for a DenseNet-121):
    # count the MACs with every BN replaced by an identity (same count, a third of the time)
    for mod in list(net.modules()):
        for cname, child in list(mod.named_children()):
            if isinstance(child, torch.nn.modules.batchnorm._BatchNorm):
                setattr(mod, cname, torch.nn.Identity())
    return params, profile.count_macs(net, (1, 3, size, size))


def format_dense2net(costs: list[dict]) -> str:
    """A few lines per backbone: this configuration against the DenseNet it replaces."""
    c0 = costs[0]
    lines = [f"Dense2Net k={c0['growth_rate']}, scale s={c0['scale']} (split width "
             f"w={c0['width']}), groups C={c0['groups']}, SE {'on' if c0['se'] else 'off'}"]
    for c in costs:
        lines.append(f"  {c['model']:<14} {c['params']:>11,} parameters  {c['macs'] / 1e6:9.1f} M MACs"
                     f"   vs {c['baseline']}: {c['baseline_params']:,} "
                     f"({c['params'] / c['baseline_params'] - 1:+.1%} params, "
                     f"{c['macs'] / c['baseline_macs'] - 1:+.1%} MACs)")
    return "\n".join(lines)


def setting_label(cfg: dict) -> str:
    """The short name of an explorer configuration: 'k=12 s=4 C=1 SE off'."""
    return (f"k={cfg['growth_rate']} s={cfg['scale']} C={cfg['groups']} "
            f"SE {'on' if cfg['se'] else 'off'}")


def runs_figure(results: list, metrics=("val_acc", "train_acc"), title: str = "",
                band: bool = True):
    """Every training run of the explorer on one figure: one curve per run, coloured by
    its setting and labelled with the setting and the seed; where a setting has 2 or more
    finished runs (seeds), their mean +- one standard deviation as a band (the style of
    viz.seed_curves), drawn only then. `results`: dicts with "setting", "seed", "history"
    (fit's records) and optionally "done" (False: a run still training, drawn dashed and
    left out of the band). Returns the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from . import viz

    names = viz.METRIC_NAMES
    groups: dict = {}  # setting -> its runs, settings in the order of their first run
    for r in results:
        groups.setdefault(r["setting"], []).append(r)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 3.3), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        scale = 100 if m.endswith("acc") else 1
        for i, (setting, runs) in enumerate(groups.items()):
            color = colors[i % len(colors)]
            for r in runs:
                h = list(r["history"])
                if not h:
                    continue
                live = not r.get("done", True)
                ax.plot([e["epoch"] for e in h], [e[m] * scale for e in h], color=color,
                        lw=1.2, alpha=0.85, marker="o", ms=3, ls="--" if live else "-",
                        label=f"{setting}, seed {r['seed']}" + (" (training)" if live else ""))
            done = [list(r["history"]) for r in runs if r.get("done", True) and r["history"]]
            if band and len(done) >= 2:
                viz.seed_band(ax, done, m, color=color,
                              label=f"{setting}: mean +- 1 std ({len(done)} seeds)")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(names.get(m, m))
        ax.set_title(names.get(m, m).split(" (")[0] + " (band: +-1 std, 2+ seeds)", fontsize=9)
        ax.grid(alpha=0.3)
    if any(ax.get_legend_handles_labels()[0] for ax in axes[0]):
        axes[0][0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def format_runs(results: list) -> str:
    """The explorer's runs as text, one block per setting: each seed's final validation
    and training accuracy, and mean +- std where the setting has 2 or more seeds."""
    from . import stats

    groups: dict = {}
    for r in results:
        groups.setdefault(r["setting"], []).append(r)
    lines = []
    for setting, runs in groups.items():
        val = [100 * r["history"][-1]["val_acc"] for r in runs]
        train = [100 * r["history"][-1]["train_acc"] for r in runs]
        seeds = ", ".join(str(r["seed"]) for r in runs)
        line = f"{setting}: {len(runs)} run(s), seed(s) {seeds}; final validation accuracy "
        mv, sv = stats.mean_std(val)
        mt, st = stats.mean_std(train)
        if sv is None:
            line += f"{mv:.1f}%, training {mt:.1f}% (1 seed: no spread)"
        else:
            line += f"{mv:.1f} +- {sv:.1f}%, training {mt:.1f} +- {st:.1f}% (mean +- std)"
        lines.append(line)
    return "\n".join(lines)


class _CurveCallback(Callback):
    """Redraw the explorer's runs, the one in training included, into its Output after
    every epoch (LivePlot updates a display handle of the cell instead, which a button
    callback does not own)."""

    def __init__(self, explorer, current: dict):
        self.explorer, self.current = explorer, current

    def on_epoch_end(self, record, history):
        self.current["history"] = list(history)
        self.explorer.draw_runs(extra=[self.current])


class Dense2NetExplorer(_Explorer):
    """Lesson 06: growth rate, scale, groups and SE -> parameters and MACs of Dense2Net
    on the tiny and on the report's backbone, against DenseNet (recomputed on every
    change: cached, a fraction of a second). Latency, the torchinfo summary and a quick
    training run are behind buttons: slow work never runs on a tick. The train button
    keeps every run of the session and draws them together (runs_figure): each run's
    curve labelled by its setting and seed, a setting clicked again trains its next seed
    (next_seed), and a setting with 2+ seeds gets a band of mean +- std.

    data: a data.DataBundle for the train button (None: the button says it needs one).
    train_config: TrainConfig fields for that run (epochs, lr, time_limit_s, ...); its
    seed is the first seed of every setting.
    """

    def __init__(self, growth_rate: int = 12, scale: int = 4, groups: int = 1,
                 se: bool = False, data=None, train_config: dict | None = None,
                 device: str = "cpu", latency_batch: int = 32):
        import ipywidgets as W

        dense2net_config(growth_rate, scale, groups, se)  # a bad start fails here, named
        checks.one_of("growth_rate", growth_rate, GROWTH_RATES)
        self.data, self.device, self.latency_batch = data, device, latency_batch
        self.train_config = dict(train_config or {})
        self.results: list[dict] = []  # one entry per training run, in order
        self.figure = None  # the last figure of every run (draw_runs)
        self.latency: dict = {}
        c = W.Layout(width="340px")
        self.controls = {
            "growth_rate": W.SelectionSlider(options=list(GROWTH_RATES), value=growth_rate,
                                             description="growth k", continuous_update=False,
                                             layout=c),
            "scale": W.SelectionSlider(options=allowed_scales(growth_rate), value=scale,
                                       description="scale s", continuous_update=False, layout=c),
            "groups": W.Dropdown(options=allowed_groups(growth_rate, scale), value=groups,
                                 description="groups C", layout=W.Layout(width="200px")),
            "se": W.Checkbox(value=se, description="SE", indent=False),
        }
        wide = W.Layout(width="auto")
        self.buttons = {
            "latency": W.Button(description="measure latency", icon="clock-o", layout=wide),
            "summary": W.Button(description="torchinfo summary", icon="list", layout=wide),
            "train": W.Button(description="train (quick)", icon="play", button_style="primary",
                              layout=wide),
        }
        self.summary = W.HTML()
        self.status = W.HTML()
        self.details = W.Output(layout=W.Layout(max_height="420px", overflow="auto"))
        self.curve = W.Output()
        self.ui = W.VBox([W.HBox([self.controls["growth_rate"], self.controls["scale"]]),
                          W.HBox([self.controls["groups"], self.controls["se"]]),
                          self.summary, W.HBox(list(self.buttons.values())), self.status,
                          self.details, self.curve])
        self.controls["growth_rate"].observe(self._on_growth, names="value")
        self.controls["scale"].observe(self._on_scale, names="value")
        self.controls["groups"].observe(self._refresh, names="value")
        self.controls["se"].observe(self._refresh, names="value")
        self.buttons["latency"].on_click(lambda _: self._guard(self.measure_latency))
        self.buttons["summary"].on_click(lambda _: self._guard(self.show_summary))
        self.buttons["train"].on_click(lambda _: self._guard(self.train))
        self._refresh()

    # ---- state
    @property
    def config(self) -> dict:
        v = {k: w.value for k, w in self.controls.items()}
        return dict(growth_rate=v["growth_rate"], scale=v["scale"], groups=v["groups"],
                    se=bool(v["se"]))

    def costs(self) -> list[dict]:
        return [dense2net_cost(b, **self.config) for b in BACKBONES]

    @property
    def text(self) -> str:
        return format_dense2net(self.costs())

    # ---- dependent controls
    def _set_options(self, name, allowed):
        w = self.controls[name]
        keep = w.value if w.value in allowed else max(d for d in allowed if d <= w.value)
        self._updating = True
        try:
            w.options = allowed
            w.value = keep
        finally:
            self._updating = False

    def _on_growth(self, change):
        self._set_options("scale", allowed_scales(change["new"]))
        self._on_scale(None)

    def _on_scale(self, change):
        self._set_options("groups", allowed_groups(self.controls["growth_rate"].value,
                                                   self.controls["scale"].value))
        self._refresh()

    def _refresh(self, *_):
        if getattr(self, "_updating", False):
            return
        self.summary.value = _pre(self.text)
        self.status.value = ""

    def _guard(self, fn):
        """Button handler: show errors in the widget instead of losing them in a log."""
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - shown to the student, not swallowed
            self.status.value = _pre(f"{type(e).__name__}: {e}")

    # ---- slow work, behind buttons (also callable from code)
    def _model(self, backbone: str, num_classes=None, in_chans: int = 3):
        from .models import create_model

        b = BACKBONES[backbone]
        cfg = dense2net_config(**self.config)
        return create_model(b["model"], num_classes=num_classes or b["num_classes"],
                            in_chans=in_chans, **cfg)

    def measure_latency(self, runs: int = 5) -> dict:
        """Median forward latency (eval, batch latency_batch, 32x32) on both backbones."""
        self.status.value = _pre("measuring latency ...")
        res = {}
        for b in BACKBONES:
            p = profile.profile_model(self._model(b), (self.latency_batch, 3, 32, 32),
                                      device=self.device, memory=False, runs=runs, warmup=1)
            res[b] = p.latency_ms
        self.latency = {"config": self.config, "batch": self.latency_batch, "ms": res}
        text = (f"forward latency, batch {self.latency_batch}, 32x32, {self.device} (median of {runs}):\n"
                + "\n".join(f"  {BACKBONES[b]['model']:<14} {ms:8.1f} ms "
                            f"({ms / self.latency_batch:.2f} ms per image)" for b, ms in res.items()))
        self.details.clear_output(wait=True)
        with self.details:
            print(text)
        self.status.value = ""
        return self.latency

    def show_summary(self, backbone: str = "tiny", depth: int = 4) -> str:
        """The torchinfo table of the current configuration (tiny backbone by default)."""
        text = str(profile.summary(self._model(backbone), (1, 3, 32, 32), depth=depth))
        self.details.clear_output(wait=True)
        with self.details:
            print(text)
        return text

    def next_seed(self, config: dict | None = None) -> int:
        """The seed the train button uses for a setting: train_config's seed (default 0)
        plus the number of runs already made of that setting in this session, so that
        each click of one setting adds a seed and the k-th runs of two settings share
        theirs (same data order, same initial weights where the shapes allow)."""
        setting = setting_label(self.config if config is None else config)
        base = int(self.train_config.get("seed", 0))
        return base + sum(r["setting"] == setting for r in self.results)

    def draw_runs(self, extra=()):
        """Redraw every run of this session (and `extra`, a run still training) into the
        curve output: runs_figure. Keeps the figure in `self.figure`; returns it."""
        import matplotlib.pyplot as plt
        from IPython.display import display

        info = self.data.info if self.data is not None else None
        fig = runs_figure(list(self.results) + list(extra),
                          title="dense2net_tiny, every run of this session"
                                + (f" - {info.title}" if info else ""))
        self.figure = fig
        self.curve.clear_output(wait=True)
        with self.curve:
            display(fig)
        plt.close(fig)
        return fig

    def train(self) -> dict:
        """Train the current configuration on the tiny backbone with `data` (quick mode)
        with the next seed of this setting (next_seed), drawing every run of the session
        live (draw_runs: each run's curve, a band where a setting has 2+ seeds). Returns
        and keeps {config, setting, seed, history, summary, params}. Validation only:
        the test split is not used (choose on validation; lesson 06's study tests once)."""
        import dataclasses

        import torch

        from .train import TrainConfig, fit

        if self.data is None:
            raise RuntimeError("no data: create the explorer with data=data.get_loaders(...) "
                               "to train from the button")
        cfg = dict(self.config)
        setting, seed = setting_label(cfg), self.next_seed(cfg)
        info = self.data.info
        kw = dict(epochs=2, lr=0.1, momentum=0.9, weight_decay=1e-4, batch_size=128,
                  schedule="cosine", device=self.device, progress=False, out=None, verbose=False)
        kw.update(self.train_config)
        kw["seed"] = seed
        torch.manual_seed(seed)  # the initial weights come from the seed, as in compare.Study
        model = self._model("tiny", num_classes=info.num_classes, in_chans=info.in_chans)
        title = f"dense2net_tiny {setting}, seed {seed} - {info.title}"
        self.status.value = _pre(f"training {title} for {kw['epochs']} epoch(s) ...")
        current = {"config": cfg, "setting": setting, "seed": seed, "history": [], "done": False}
        res = fit(model, dataclasses.replace(self.data, test=None), TrainConfig(**kw),
                  callbacks=[_CurveCallback(self, current)])
        rec = {"config": cfg, "setting": setting, "seed": seed, "history": res.history,
               "summary": res.summary, "params": profile.count_params(model)}
        self.results.append(rec)
        self.draw_runs()
        best = res.summary.get("best_val_acc")
        self.status.value = _pre(
            f"trained {title}: {len(res.history)} epoch(s), best validation accuracy "
            f"{100 * best:.1f}%\nevery run of this session (press train again for another "
            f"seed of a setting):\n" + format_runs(self.results))
        return rec


__all__ += ["BACKBONES", "allowed_scales", "allowed_groups", "dense2net_config",
            "dense2net_cost", "format_dense2net", "setting_label", "runs_figure", "format_runs",
            "Dense2NetExplorer"]
