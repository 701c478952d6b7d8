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
# Training curves and ablation results (added with the training engine, issue 5)
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
                flat = i < 2 or abs(recs[i - 2]["lr"] - a["lr"]) <= 1e-6 * a["lr"]
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


def ablation_bars(rows, title: str = "", metric_label: str = "validation accuracy (%)"):
    """Grouped bars per configuration: the report's value next to ours (mean, with the
    standard deviation over seeds as an error bar). A row that failed gets no bar of
    ours and the word "failed" instead.

    rows: dicts with "name", "report" (percent or None), "ours_mean", "ours_std"
    (percent or None) and optionally "status".
    """
    import matplotlib.pyplot as plt

    rows = list(rows)
    n = len(rows)
    x = np.arange(n)
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * n + 2), 3.6))
    rep = [r.get("report") for r in rows]
    ours = [r.get("ours_mean") for r in rows]
    err = [r.get("ours_std") or 0.0 for r in rows]
    w = 0.38
    if any(v is not None for v in rep):
        ax.bar(x - w / 2, [v if v is not None else 0 for v in rep], w, label="report (Table 1)",
               color="#bbbbbb")
    ax.bar(x + w / 2, [v if v is not None else 0 for v in ours], w,
           yerr=[e if v is not None else 0 for v, e in zip(ours, err)], capsize=3, label="ours",
           color="#4c72b0")
    for i, (r, v) in enumerate(zip(rows, ours)):
        if v is None:
            ax.text(i + w / 2, 1, r.get("status", "failed"), rotation=90, ha="center",
                    va="bottom", fontsize=7, color="crimson")
        else:
            ax.text(i + w / 2, v + 0.5, f"{v:.1f}", ha="center", va="bottom", fontsize=6)
    ax.set_xticks(x, [r["name"] for r in rows], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(metric_label)
    vals = [v for v in rep + ours if v is not None]
    if vals:
        ax.set_ylim(0, min(100, max(vals) * 1.15 + 2))
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def compare_runs(histories: dict, metrics=("val_acc", "train_loss"), title: str = ""):
    """Curves of several runs side by side, one panel per metric (e.g. Xception's Figs. 9
    and 10: variants of one network trained alike). `histories`: {label: history}, each
    history as plot_history accepts (list of epoch dicts, metrics.jsonl, or run folder)."""
    import matplotlib.pyplot as plt

    names = {"val_acc": "validation accuracy (%)", "train_acc": "training accuracy (%)",
             "val_loss": "validation loss", "train_loss": "training loss"}
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        for label, h in histories.items():
            recs = _history_records(h)
            ys = [r[m] * (100 if m.endswith("acc") else 1) for r in recs]
            ax.plot([r["epoch"] for r in recs], ys, marker="o", ms=3, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(names.get(m, m))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
