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
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax_acc.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def class_balance(labels: torch.Tensor, classes: list[str], title: str):
    """Bar chart: number of examples per class. ``labels (N,) int64``."""
    counts = torch.bincount(labels.cpu(), minlength=len(classes)).tolist()
    fig, (ax,) = _new(width=7)
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
    fig, (ax,) = _new()
    x = np.arange(len(factors))
    if steps_per_epoch:
        x = x / steps_per_epoch
    ax.plot(x, base_lr * np.asarray(factors))
    ax.set(xlabel="epoch" if steps_per_epoch else "step", ylabel="learning rate", title=title)
    fig.tight_layout()
    return fig


# =========================================================================== lesson 04
def sweep_heatmap(sweep, title: str):
    """Validation accuracy (%) over the temperature × alpha grid of a :class:`kdtutor.distill.Sweep`."""
    acc = 100 * np.array(sweep.val_acc)
    fig, (ax,) = _new(width=5.5, height=4)
    im = ax.imshow(acc, cmap="viridis", aspect="auto", origin="lower")
    ax.set_xticks(range(len(sweep.alphas)), [f"{a:g}" for a in sweep.alphas])
    ax.set_yticks(range(len(sweep.temperatures)), [f"{t:g}" for t in sweep.temperatures])
    best_t, best_a = sweep.best
    for i in range(acc.shape[0]):
        for j in range(acc.shape[1]):
            chosen = (sweep.temperatures[i], sweep.alphas[j]) == (best_t, best_a)
            ax.text(j, i, f"{acc[i, j]:.1f}" + ("\n(chosen)" if chosen else ""), ha="center", va="center",
                    color="white" if acc[i, j] < acc.max() - (acc.max() - acc.min()) / 2 else "black", fontsize=9)
    ax.set(xlabel="α (weight of the distillation term)", ylabel="temperature T", title=title)
    fig.colorbar(im, ax=ax, label="validation accuracy (%)")
    fig.tight_layout()
    return fig


def seed_comparison(groups: dict, title: str, ylabel: str = "accuracy (%)"):
    """Each seed's value as a dot and the mean ± std as a bar, per group.

    Args:
        groups: ``{label: [value per seed]}``, values as fractions (0.91 = 91 %).
    """
    fig, (ax,) = _new(width=1.6 + 1.4 * len(groups))
    for i, (label, values) in enumerate(groups.items()):
        v = 100 * np.asarray(values, dtype=float)
        sd = v.std(ddof=1) if len(v) > 1 else 0.0
        ax.bar(i, v.mean(), yerr=sd, color=f"C{i}", alpha=0.5, capsize=6)
        ax.plot(np.full(len(v), i) + np.linspace(-0.12, 0.12, len(v)), v, "o", color=f"C{i}")
    lo = min(100 * min(v) for v in groups.values())
    ax.set_ylim(max(0, lo - 5), None)
    ax.set_xticks(range(len(groups)), list(groups))
    ax.set(xlabel="student", ylabel=ylabel, title=title)
    fig.tight_layout()
    return fig


def class_recall_bars(recalls: dict, classes: list[str], title: str, highlight: int | None = None):
    """Grouped bars of per-class recall (%) for several models. ``recalls``: ``{label: (C,) fractions}``."""
    fig, (ax,) = _new(width=10)
    k, width = len(recalls), 0.8 / len(recalls)
    for i, (label, r) in enumerate(recalls.items()):
        ax.bar(np.arange(len(classes)) + (i - (k - 1) / 2) * width, 100 * np.asarray(r), width, label=label)
    if highlight is not None:
        ax.axvspan(highlight - 0.45, highlight + 0.45, color="gold", alpha=0.25, zorder=0,
                   label=f"class {classes[highlight]}")
    ax.set_xticks(range(len(classes)), classes)
    ax.set(xlabel="true class", ylabel="recall (% of the class found)", title=title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig




# =========================================================================== lesson 05
