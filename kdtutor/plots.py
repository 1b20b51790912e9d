"""Every figure of the course. Each function draws on a new figure and returns it.

Conventions: every axis is labelled (with units where there are any), every
figure has a title, and data from the stand-in data set say so in the title
(pass ``Dataset.name`` through). In a notebook write ``fig = plots.something(...)``
so the figure shows once.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch


def _new(ncols: int = 1, nrows: int = 1, width: float = 5.0, height: float = 3.6, **kw):
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kw)
    return fig, axes.ravel()


# =========================================================================== lesson 01


# =========================================================================== lesson 02


# =========================================================================== lesson 03
def image_grid(images: torch.Tensor, labels: torch.Tensor, classes: list[str], title: str,
               per_class: int = 8):
    """A grid with ``per_class`` images of each class (rows = classes). ``images (N, C, H, W) uint8``."""
    n_cls = len(classes)
    fig, axes = plt.subplots(n_cls, per_class, figsize=(per_class * 0.9, n_cls * 0.95))
    for c in range(n_cls):
        idx = (labels == c).nonzero().flatten()[:per_class]
        for j in range(per_class):
            ax = axes[c, j]
            ax.set_xticks([]), ax.set_yticks([])
            if j < len(idx):
                img = images[idx[j]].permute(1, 2, 0).cpu().numpy()
                ax.imshow(img.squeeze(-1) if img.shape[-1] == 1 else img, cmap="gray_r" if img.shape[-1] == 1 else None)
        axes[c, 0].set_ylabel(classes[c], rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(title)
    fig.supxlabel("examples (columns)", fontsize=9)
    fig.tight_layout()
    return fig


def learning_curves(histories: dict, title: str):
    """Loss and accuracy per epoch, train and validation, for one or more runs.

    Args:
        histories: ``{label: kdtutor.train.History}``.
    """
    fig, (ax_loss, ax_acc) = _new(2)
    for i, (label, h) in enumerate(histories.items()):
        color = f"C{i}"
        ep = h.column("epoch")
        ax_loss.plot(ep, h.column("train_loss"), "--", color=color, label=f"{label} (train)")
        ax_loss.plot(ep, h.column("val_loss"), "-", color=color, label=f"{label} (val)")
        ax_acc.plot(ep, [100 * a for a in h.column("train_acc")], "--", color=color, label=f"{label} (train)")
        ax_acc.plot(ep, [100 * a for a in h.column("val_acc")], "-", color=color, label=f"{label} (val)")
    ax_loss.set(xlabel="epoch", ylabel="loss (nats)", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    ax_acc.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# =========================================================================== lesson 04


# =========================================================================== lesson 05
