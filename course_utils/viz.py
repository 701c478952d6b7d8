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
