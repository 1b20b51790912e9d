"""Lesson 06's figures: DKD's weights, what standardisation does, patient teaching, honest vs reported gains."""

from __future__ import annotations

import numpy as np
import torch

from kdtutor.figures.common import as_array as _np, new_figure as _new


def dkd_weights(teacher_pt, beta: float, T: float, dataset_name: str, where: str = "training views"):
    """Left: NCKD's weight against the teacher's target probability — KD's ``1 − p_t`` vs DKD's β,
    on a linear axis, with the mean ``1 − p_t`` of ``teacher_pt`` marked.
    Right: how the teacher's ``p_t`` (at temperature T) spreads over real examples.

    Args:
        teacher_pt: ``(N,)`` the teacher's probability of the true class at temperature T.
        where: which images ``teacher_pt`` is measured on (the right panel's title).
    """
    pt = _np(teacher_pt)
    mean_pt = float(pt.mean())
    fig, (ax, ax_h) = _new(2)
    p = np.linspace(0, 1, 101)
    ax.plot(p, 1 - p, label="KD: 1 − p_t (coupled)")
    ax.axhline(beta, color="C1", ls="--", label=f"DKD: β = {beta:g} (decoupled)")
    ax.axhline(1.0, color="C2", ls=":", label="TCKD weight α = 1 (both)")
    ax.plot([mean_pt], [1 - mean_pt], "o", color="C0", label=f"KD at this teacher's mean p_t = {mean_pt:.2f}")
    ax.set(xlabel="teacher's probability of the true class p_t", ylabel="weight of the term",
           title="weight of NCKD (non-target classes)", xlim=(0, 1), ylim=(0, 1.15 * max(beta, 1.0)))
    ax.legend(fontsize=8)
    ax_h.hist(pt, bins=20, range=(0, 1), color="C0", alpha=0.7)
    ax_h.axvline(mean_pt, color="k", ls="--", lw=1)
    ax_h.set(xlabel=f"p_t at T = {T:g}", ylabel="examples", title=f"teacher on {dataset_name} ({where})")
    fig.suptitle(f"KD weighs NCKD by 1 − p_t: {1 - mean_pt:.2f} on average for this teacher at T = {T:g}; "
                 f"DKD by β = {beta:g}")
    fig.tight_layout()
    return fig


def standardization_effect(logits: dict, T: float, class_names=None):
    """For each teacher (``{name: (C,) logits}``) the softmax at T of its raw and of its z-scored logits."""
    fig, axes = _new(len(logits))
    for ax, (name, z) in zip(axes, logits.items()):
        z = torch.as_tensor(z, dtype=torch.float64)[None]
        raw = torch.softmax(z / T, 1)[0]
        zs = (z - z.mean(1, keepdim=True)) / (z.std(1, keepdim=True) + 1e-7)
        std = torch.softmax(zs / T, 1)[0]
        x = np.arange(z.shape[1])
        ax.bar(x - 0.2, _np(raw), 0.4, label="softmax(z / T)")
        ax.bar(x + 0.2, _np(std), 0.4, label="softmax(Z(z) / T)")
        ax.set(xlabel="class", ylabel="probability", title=f"{name} (logit std {float(z.std()):.2f})")
        if class_names is not None:
            ax.set_xticks(x, class_names, rotation=60, fontsize=7)
        ax.legend(fontsize=8)
    fig.suptitle(f"standardisation at T = {T:g}: every teacher gets the same logit spread")
    fig.tight_layout()
    return fig


def accuracy_per_epoch(histories: dict, title: str, key: str = "val_acc"):
    """``key`` (a fraction) against the epoch, one line per ``{label: History}``."""
    fig, (ax,) = _new(width=6)
    for label, h in histories.items():
        ep, acc = h.points(key)
        ax.plot(ep, [100 * a for a in acc], "-o", markersize=3, label=label)
    ax.set(xlabel="epoch", ylabel=f"{key.replace('_acc', '')} accuracy (%)", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def reported_vs_honest(gains: dict, title: str):
    """Grouped bars: each method's gain over KD (points) measured four ways (``published_style_gains``)."""
    kinds = [("honest", "honest: paired mean"), ("best_epoch_on_test", "best epoch on test"),
             ("best_of_seeds", "best of seeds"), ("unequal_tuning", "tuned on test vs untuned KD")]
    methods = list(gains)
    fig, (ax,) = _new(width=1.5 + 1.3 * len(methods))
    x = np.arange(len(methods))
    for i, (key, label) in enumerate(kinds):
        ax.bar(x + (i - 1.5) * 0.2, [gains[m][key] for m in methods], 0.2, label=label)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(x, methods)
    ax.set(xlabel="method", ylabel="gain over KD (points)", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def feature_maps(image: torch.Tensor, features: torch.Tensor, title: str, n: int = 6):
    """One image ``(3, H, W)`` (normalised is fine) and the first ``n`` channels of a feature map ``(D, h, w)``."""
    import matplotlib.pyplot as plt

    n = min(n, features.shape[0])
    fig, axes = plt.subplots(1, n + 1, figsize=(1.6 * (n + 1), 2.2))
    img = image.detach().float().cpu()
    img = (img - img.min()) / (img.max() - img.min() + 1e-8)
    axes[0].imshow(img.permute(1, 2, 0).numpy())
    axes[0].set_title("image", fontsize=8)
    for j in range(n):
        axes[j + 1].imshow(features[j].detach().float().cpu().numpy(), cmap="viridis")
        axes[j + 1].set_title(f"channel {j}", fontsize=8)
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle(title)
    fig.tight_layout()
    return fig
