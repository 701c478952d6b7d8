"""Plots the lessons share: image grids, class balance, augmentation strips."""

from __future__ import annotations

import numpy as np
import torch


def _to_hwc(img: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [0, 1] -> (H, W, C) or (H, W) for matplotlib."""
    a = img.detach().cpu().clamp(0, 1).numpy()
    return a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)


def image_grid(images: torch.Tensor, labels, classes, per_class: int = 8, title: str = ""):
    """A grid with one row per class and `per_class` images in each: images (N, C, H, W)
    in [0, 1], labels (N,)."""
    import matplotlib.pyplot as plt

    labels = np.asarray(labels)
    k = len(classes)
    fig, axes = plt.subplots(k, per_class, figsize=(per_class * 0.9, k * 0.95), squeeze=False)
    for c in range(k):
        idx = np.flatnonzero(labels == c)[:per_class]
        for j in range(per_class):
            ax = axes[c, j]
            ax.set_xticks([]), ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            if j < len(idx):
                ax.imshow(_to_hwc(images[idx[j]]), cmap="gray", vmin=0, vmax=1)
            if j == 0:
                ax.set_ylabel(classes[c], rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def class_balance(counts: dict[str, np.ndarray], classes, title: str = ""):
    """Side-by-side bars of images per class, one colour per split."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 2.8))
    width = 0.8 / max(1, len(counts))
    x = np.arange(len(classes))
    for i, (name, c) in enumerate(counts.items()):
        ax.bar(x + i * width, c, width, label=f"{name} ({int(np.sum(c))})")
    ax.set_xticks(x + width * (len(counts) - 1) / 2, classes, rotation=30, ha="right",
                  fontsize=8)
    ax.set_ylabel("images")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def image_strip(images, titles, title: str = ""):
    """One row of images (list of (C, H, W) in [0, 1]) with a caption under each."""
    import matplotlib.pyplot as plt

    n = len(images)
    fig, axes = plt.subplots(1, n, figsize=(n * 1.3, 1.7), squeeze=False)
    for ax, im, t in zip(axes[0], images, titles):
        ax.imshow(_to_hwc(im), cmap="gray", vmin=0, vmax=1)
        ax.set_title(t, fontsize=7)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------
# Training curves and ablation results
# --------------------------------------------------------------------------------------
def _history_records(history):
    """A list of per-epoch dicts from a list, a metrics.jsonl path or a run folder."""
    if isinstance(history, (str, bytes)) or hasattr(history, "__fspath__"):
        import json
        from pathlib import Path

        p = Path(history)
        p = p / "metrics.jsonl" if p.is_dir() else p
        return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
    return list(history)


def plot_history(history, title: str = "", show_lr: bool = True):
    """Accuracy and loss curves, train vs validation, side by side (the Dense2Net
    report's Figs. 8-11 show these two panels for DenseNet and Dense2Net).

    history: fit's FitResult.history, a metrics.jsonl file or a run folder. Accuracies
    are plotted in percent. Dotted vertical lines mark the epochs where the LR dropped
    (step or plateau schedules), when `show_lr`.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    recs = _history_records(history)
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(9, 3.2))
    if not recs:
        for ax in (ax_acc, ax_loss):
            ax.text(0.5, 0.5, "no epochs yet", ha="center", va="center", transform=ax.transAxes)
        return fig
    ep = [r["epoch"] for r in recs]
    for ax, key, ylabel, scale in ((ax_acc, "acc", "accuracy (%)", 100.0),
                                   (ax_loss, "loss", "cross-entropy loss", 1.0)):
        ax.plot(ep, [scale * r[f"train_{key}"] for r in recs], "-o", ms=3, label="train")
        ax.plot(ep, [scale * r[f"val_{key}"] for r in recs], "-o", ms=3, label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if show_lr:  # a step down after a flat stretch (step / plateau), not a smooth decay
            for i in range(1, len(recs)):
                a, b = recs[i - 1], recs[i]
                flat = i >= 2 and abs(recs[i - 2]["lr"] - a["lr"]) <= 1e-6 * a["lr"]
                if flat and b["lr"] <= 0.5 * a["lr"] and b["epoch"] == a["epoch"] + 1:
                    ax.axvline(b["epoch"] - 0.5, color="grey", ls=":", lw=1)
    best = max(recs, key=lambda r: r["val_acc"])
    ax_acc.set_title(f"accuracy (best val {100 * best['val_acc']:.1f}% at epoch {best['epoch']})",
                     fontsize=9)
    ax_loss.set_title("loss", fontsize=9)
    ax_acc.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def ablation_bars(rows, title: str = "", metric_label: str = "validation accuracy (%)",
                  pyplot: bool = True):
    """The report's values and ours on two panels, each on its own scale (ours, a few
    epochs on a small subset, would be dwarfed on the report's axis). Our bars carry the
    standard deviation over seeds as an error bar only where there are at least two seeds
    (std not None) and it is not zero; a row that failed gets no bar and its status.

    rows: dicts with "name", "report" (percent or None), "ours_mean", "ours_std"
    (percent or None) and optionally "status". pyplot=False draws on a bare
    matplotlib Figure, for saving to a file without touching pyplot or the backend.
    """
    rows = list(rows)
    n = len(rows)
    x = np.arange(n)
    size = (max(7, 1.3 * n + 3), 3.6)
    if pyplot:
        import matplotlib.pyplot as plt

        fig, (ax_rep, ax_ours) = plt.subplots(1, 2, figsize=size)
    else:
        from matplotlib.figure import Figure

        fig = Figure(figsize=size)
        ax_rep, ax_ours = fig.subplots(1, 2)
    labels = [r["name"] for r in rows]
    rep = [r.get("report") for r in rows]
    ax_rep.bar(x, [v if v is not None else 0 for v in rep], 0.6, color="#bbbbbb")
    ax_rep.set_title("the report (Table 1, CIFAR-100)", fontsize=8)
    ours = [r.get("ours_mean") for r in rows]
    ax_ours.bar(x, [v if v is not None else 0 for v in ours], 0.6, color="#4c72b0")
    bars = [(i, v, r.get("ours_std")) for i, (r, v) in enumerate(zip(rows, ours))
            if v is not None and r.get("ours_std")]
    if bars:   # only rows with a spread: no caps drawn for a single seed or a zero std
        ax_ours.errorbar([b[0] for b in bars], [b[1] for b in bars], yerr=[b[2] for b in bars],
                         fmt="none", ecolor="black", capsize=3, lw=1)
    seeds = "; error bars: std over seeds" if bars else "; one seed per row: no error bars"
    ax_ours.set_title("ours" + seeds, fontsize=8)
    for i, (r, v) in enumerate(zip(rows, ours)):
        if v is None:
            ax_ours.text(i, 0.5, r.get("status", "failed"), rotation=90, ha="center",
                         va="bottom", fontsize=7, color="crimson")
        else:
            ax_ours.text(i, v, f"{v:.1f}", ha="center", va="bottom", fontsize=6)
    for ax, vals in ((ax_rep, rep), (ax_ours, ours)):
        ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(metric_label, fontsize=8)
        top = [v for v in vals if v is not None]
        top += [b[1] + b[2] for b in bars] if ax is ax_ours else []
        if top:
            ax.set_ylim(0, min(100, max(top) * 1.15 + 1))
        ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


METRIC_NAMES = {"val_acc": "validation accuracy (%)", "train_acc": "training accuracy (%)",
                "val_loss": "validation loss", "train_loss": "training loss"}


def seed_band(ax, histories, metric: str, *, color=None, band: str = "std", label=None):
    """Draw on `ax` the spread of several seeds' curves of one configuration (band="std":
    mean +- one standard deviation; "range": min to max) over the epochs all of them
    reached; nothing with fewer than 2 histories. Returns (epochs, mean) of the seeds, or
    None for no history."""
    runs = [_history_records(h) for h in histories]
    runs = [r for r in runs if r]
    if not runs:
        return None
    scale = 100 if metric.endswith("acc") else 1
    n = min(len(r) for r in runs)
    epochs = [r["epoch"] for r in runs[0][:n]]
    ys = np.array([[rec[metric] * scale for rec in r[:n]] for r in runs])
    mean = ys.mean(axis=0)
    if len(runs) >= 2:
        if band == "std":
            sd = ys.std(axis=0, ddof=1)
            lo, hi = mean - sd, mean + sd
        else:
            lo, hi = ys.min(axis=0), ys.max(axis=0)
        ax.fill_between(epochs, lo, hi, color=color, alpha=0.2, lw=0, label=label)
    return epochs, mean


def compare_runs(histories: dict, metrics=("val_acc", "train_loss"), title: str = ""):
    """Curves of several runs side by side, one panel per metric (e.g. Xception's Figs. 9
    and 10: variants of one network trained alike). `histories`: {label: history}, each
    history as plot_history accepts (list of epoch dicts, metrics.jsonl, or run folder)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    names = METRIC_NAMES
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        for label, h in histories.items():
            recs = _history_records(h)
            ys = [r[m] * (100 if m.endswith("acc") else 1) for r in recs]
            ax.plot([r["epoch"] for r in recs], ys, marker="o", ms=3, label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))   # epochs are whole numbers
        ax.set_ylabel(names.get(m, m))
        ax.set_title(names.get(m, m).split(" (")[0], fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def seed_curves(groups: dict, metrics=("val_acc", "train_acc"), title: str = "", band: str = "std"):
    """Curves of configurations run with several seeds: each configuration's mean over
    its seeds as a line, the spread as a band (band="std": mean +- one standard
    deviation; "range": min to max), drawn only where there are 2 or more seeds.
    `groups`: {label: [history, ...]} (each history as plot_history accepts); a
    course_utils.compare.Study gives them as {k: list(study.runs[k][s].history ...)}."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if band not in ("std", "range"):
        raise ValueError(f"band: {band!r}; allowed: 'std', 'range'")
    names = METRIC_NAMES
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for i, (label, hists) in enumerate(groups.items()):
            color = colors[i % len(colors)]
            drawn = seed_band(ax, hists, m, color=color, band=band)
            if drawn is not None:
                ax.plot(*drawn, marker="o", ms=3, color=color, label=f"{label} ({len(hists)} seeds)")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(names.get(m, m))
        ax.set_title(names.get(m, m).split(" (")[0] + (" (band: +-1 std)" if band == "std"
                                                        else " (band: min-max)"), fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------
# Lessons 04-05: feature reuse in a dense block, receptive fields of a
# Res2Net module's outputs
# --------------------------------------------------------------------------------------
def feature_reuse_heatmap(matrices, titles=None, target_labels=None, title: str = "",
                          annotate: bool = True, vmax: float = 1.0):
    """Heat maps in the manner of the DenseNet paper's Fig. 5, one panel per dense block.

    matrices: 2-D arrays (sources x targets); entry (s, t) is how strongly target layer t
    reads source s (the mean absolute weight, normalised per target). Row 0 is the
    block's input, row s the output of layer s. NaN marks "no connection" (a layer
    cannot read a later one) and is left blank. target_labels: one list of column labels
    per matrix (default 1..n). Returns the figure.
    """
    import matplotlib.pyplot as plt

    mats = [np.asarray(m, dtype=float) for m in matrices]
    if not mats or any(m.ndim != 2 for m in mats):
        raise ValueError("matrices must be a non-empty list of 2-D arrays (sources x targets)")
    n = len(mats)
    titles = list(titles) if titles is not None else [f"block {i + 1}" for i in range(n)]
    if len(titles) != n:
        raise ValueError(f"titles has {len(titles)} entries; expected one per matrix ({n})")
    if target_labels is not None and len(target_labels) != n:
        raise ValueError(f"target_labels has {len(target_labels)} entries; expected {n}")
    cmap = plt.get_cmap("viridis").with_extremes(bad="white")
    width = sum(0.55 * m.shape[1] + 0.9 for m in mats) + 0.8
    height = 0.5 * max(m.shape[0] for m in mats) + 1.3
    fig, axes = plt.subplots(1, n, figsize=(width, height), squeeze=False)
    im = None
    for i, (ax, m) in enumerate(zip(axes[0], mats)):
        im = ax.imshow(np.ma.masked_invalid(m), cmap=cmap, vmin=0.0, vmax=vmax, aspect="equal")
        cols = (list(target_labels[i]) if target_labels is not None
                else [str(j + 1) for j in range(m.shape[1])])
        if len(cols) != m.shape[1]:
            raise ValueError(f"target_labels[{i}] has {len(cols)} labels; matrix {i} has "
                             f"{m.shape[1]} columns")
        ax.set_xticks(range(m.shape[1]), cols, fontsize=8)
        ax.set_yticks(range(m.shape[0]), ["input"] + [str(s) for s in range(1, m.shape[0])],
                      fontsize=8)
        ax.set_xlabel("target layer", fontsize=8)
        if i == 0:
            ax.set_ylabel("source layer", fontsize=8)
        ax.set_title(titles[i], fontsize=9)
        if annotate:
            for (r, c), v in np.ndenumerate(m):
                if np.isfinite(v):
                    ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=6,
                            color="black" if v > 0.6 * vmax else "white")
    fig.colorbar(im, ax=list(axes[0]), fraction=0.03, pad=0.02)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def support_box(grad_map, eps: float = 0.0):
    """(top, left, height, width) of the smallest box holding every entry with
    |value| > eps of a 2-D map (e.g. the input gradient of one output), or None."""
    g = np.abs(np.asarray(grad_map.detach().cpu() if isinstance(grad_map, torch.Tensor)
                          else grad_map, dtype=float))
    if g.ndim != 2:
        raise ValueError(f"grad_map has {g.ndim} dimensions; expected a 2-D map (H, W)")
    rows, cols = np.flatnonzero((g > eps).any(1)), np.flatnonzero((g > eps).any(0))
    if rows.size == 0:
        return None
    return int(rows[0]), int(cols[0]), int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def receptive_field_maps(maps, titles=None, image=None, title: str = "", eps: float = 0.0,
                         crop=None):
    """One panel per output: the magnitude of its input gradient (brighter = more paths),
    with the receptive field (the box around the non-zero gradient) outlined. With
    `image` ((C, H, W) in [0, 1], the same H, W as the maps) a first panel shows the
    image with every box drawn on it, one colour per output. `crop` (an int) shows only
    a crop x crop window of each map, centred on the middle of all the boxes (the image
    panel stays whole). Returns the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    maps = [np.abs(np.asarray(m.detach().cpu() if isinstance(m, torch.Tensor) else m,
                              dtype=float)) for m in maps]
    if not maps or any(m.ndim != 2 for m in maps):
        raise ValueError("maps must be a non-empty list of 2-D arrays (H, W)")
    titles = list(titles) if titles is not None else [f"output {i + 1}" for i in range(len(maps))]
    if len(titles) != len(maps):
        raise ValueError(f"titles has {len(titles)} entries; expected one per map ({len(maps)})")
    if image is not None and tuple(image.shape[-2:]) != maps[0].shape:
        raise ValueError(f"image is {tuple(image.shape[-2:])} pixels but the maps are "
                         f"{maps[0].shape}; expected the same size")
    boxes = [support_box(m, eps) for m in maps]
    if crop is not None and (not isinstance(crop, int) or crop < 1):
        raise ValueError(f"crop={crop!r} is not allowed; expected None or an integer >= 1")
    r0 = c0 = 0
    found = [b for b in boxes if b is not None]
    if crop is not None and found:
        mid_r = (min(b[0] for b in found) + max(b[0] + b[2] for b in found) - 1) // 2
        mid_c = (min(b[1] for b in found) + max(b[1] + b[3] for b in found) - 1) // 2
        r0 = int(np.clip(mid_r - crop // 2, 0, max(0, maps[0].shape[0] - crop)))
        c0 = int(np.clip(mid_c - crop // 2, 0, max(0, maps[0].shape[1] - crop)))
    colours = plt.get_cmap("autumn")(np.linspace(0, 0.85, len(maps)))
    n = len(maps) + (image is not None)
    fig, axes = plt.subplots(1, n, figsize=(2.0 * n, 2.35), squeeze=False)
    axes = list(axes[0])
    if image is not None:
        ax = axes.pop(0)
        ax.imshow(_to_hwc(image), cmap="gray", vmin=0, vmax=1)
        for box, col, t in zip(boxes, colours, titles):
            if box is not None:
                top, left, h, w = box
                ax.add_patch(Rectangle((left - 0.5, top - 0.5), w, h, fill=False, lw=1.2,
                                       edgecolor=col, label=t))
        ax.set_title("receptive fields", fontsize=8)
        ax.axis("off")
    for ax, m, box, col, t in zip(axes, maps, boxes, colours, titles):
        shown = m if crop is None else m[r0:r0 + crop, c0:c0 + crop]
        ax.imshow(shown / m.max() if m.max() > 0 else shown, cmap="viridis", vmin=0, vmax=1)
        if box is not None:
            top, left, h, w = box
            ax.add_patch(Rectangle((left - c0 - 0.5, top - r0 - 0.5), w, h, fill=False, lw=1.2,
                                   edgecolor=col))
            t = f"{t}: {h}x{w}"
        ax.set_title(t, fontsize=8)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
