"""Lesson 03 — a fast CIFAR-10 teacher: its figures. Each function returns a new figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from kdtutor.figures.common import new_figure


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
        histories: ``{label: kdtutor.images.history.History}``.
    """
    fig, (ax_loss, ax_acc) = new_figure(2)
    for i, (label, h) in enumerate(histories.items()):
        color = f"C{i}"
        ep = h.column("epoch")
        ax_loss.plot(ep, h.column("train_loss"), "--", color=color, label=f"{label} (train)")
        ax_acc.plot(ep, [100 * a for a in h.column("train_acc")], "--", color=color, label=f"{label} (train)")
        val_ep, val_acc = h.points("val_acc")  # the validated epochs: all, unless it validated every k
        style = "-" if len(val_ep) == len(ep) else "-o"
        if val_ep:
            ax_loss.plot(*h.points("val_loss"), style, color=color, markersize=3, label=f"{label} (val)")
            ax_acc.plot(val_ep, [100 * a for a in val_acc], style, color=color, markersize=3, label=f"{label} (val)")
    ax_loss.set(xlabel="epoch", ylabel="loss (nats)", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax_acc.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def class_balance(labels: torch.Tensor, classes: list[str], title: str):
    """Bar chart: number of examples per class. ``labels (N,) int64``."""
    counts = torch.bincount(labels.cpu(), minlength=len(classes)).tolist()
    fig, (ax,) = new_figure(width=7)
    ax.bar(range(len(classes)), counts, color="C0")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set(xlabel="class", ylabel="number of images", title=title)
    fig.tight_layout()
    return fig


def augmentation_examples(clean: torch.Tensor, views: torch.Tensor, title: str, n: int = 8):
    """Top row: original images; bottom row: their augmented views. Both ``(B, C, H, W)``, any range."""
    n = min(n, len(clean))
    fig, axes = plt.subplots(2, n, figsize=(1.3 * n, 3.0))
    for row, (imgs, name) in enumerate([(clean, "original"), (views, "augmented")]):
        for j in range(n):
            img = imgs[j].detach().float().cpu()
            img = (img - img.min()) / (img.max() - img.min() + 1e-8)  # show normalised images too
            axes[row, j].imshow(img.permute(1, 2, 0).squeeze(-1).numpy())
            axes[row, j].set_xticks([]), axes[row, j].set_yticks([])
        axes[row, 0].set_ylabel(name)
    fig.suptitle(title)
    fig.supxlabel("example")
    fig.tight_layout()
    return fig


def lr_schedule(factors, base_lr: float, title: str, steps_per_epoch: int | None = None):
    """The learning rate at each training step (``factors`` × ``base_lr``)."""
    fig, (ax,) = new_figure()
    x = np.arange(len(factors))
    if steps_per_epoch:
        x = x / steps_per_epoch
    ax.plot(x, base_lr * np.asarray(factors))
    ax.set(xlabel="epoch" if steps_per_epoch else "step", ylabel="learning rate", title=title)
    fig.tight_layout()
    return fig

