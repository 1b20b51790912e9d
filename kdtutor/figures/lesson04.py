"""Lesson 04 — distilling a student: its figures. Each function returns a new figure."""

from __future__ import annotations

import numpy as np

from kdtutor.figures.common import new_figure


def sweep_heatmap(sweep, title: str):
    """Validation accuracy (%) over the temperature × alpha grid of a :class:`kdtutor.images.distill.Sweep`."""
    acc = 100 * np.array(sweep.val_acc)
    fig, (ax,) = new_figure(width=5.5, height=4)
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
    """Each seed's value as a dot and the mean ± std (sample std) as a diamond with an error bar, per group.

    No bars: a bar's length reads as the value, and an axis that starts near the data (where the
    differences show) would make a one-point gap look large.

    Args:
        groups: ``{label: [value per seed]}``, values as fractions (0.91 = 91 %).
    """
    fig, (ax,) = new_figure(width=1.6 + 1.4 * len(groups))
    for i, values in enumerate(groups.values()):
        v = 100 * np.asarray(values, dtype=float)
        sd = v.std(ddof=1) if len(v) > 1 else 0.0
        ax.plot(np.full(len(v), i - 0.1) + np.linspace(-0.08, 0.08, len(v)), v, "o", color=f"C{i}", alpha=0.7,
                label="one seed" if i == 0 else None)
        ax.errorbar(i + 0.15, v.mean(), yerr=sd, fmt="D", color=f"C{i}", markersize=7, capsize=6,
                    label="mean ± std" if i == 0 else None)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.set_xticks(range(len(groups)), list(groups))
    ax.set(xlabel="student", ylabel=ylabel, title=title)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def accuracy_vs_labels(result, title: str, teacher_acc: float | None = None, split: str = "test"):
    """Accuracy (%) of each arm of a :class:`kdtutor.images.few_labels.FewLabels` against the number of labelled
    images (log scale): one dot per seed, a line through the means; the teacher's accuracy as a dashed line."""
    from kdtutor.images.few_labels import ARM_NAMES, ARMS

    acc = getattr(result, split)
    ns = np.array(result.label_counts, dtype=float)
    fig, (ax,) = new_figure(width=6.5, height=4.2)
    for k, arm in enumerate(a for a in ARMS if (a, result.label_counts[0]) in acc):
        per_seed = 100 * np.array([acc[arm, n] for n in result.label_counts], dtype=float)  # (len(ns), seeds)
        jitter = 1 + 0.04 * (k - 1)
        ax.plot(np.repeat(ns * jitter, per_seed.shape[1]), per_seed.ravel(), "o", color=f"C{k}", alpha=0.5, markersize=4)
        ax.plot(ns * jitter, per_seed.mean(1), "-D", color=f"C{k}", label=ARM_NAMES[arm])
    if teacher_acc is not None:
        ax.axhline(100 * teacher_acc, color="0.4", linestyle="--", label=f"teacher ({100 * teacher_acc:.1f} %)")
    ax.set_xscale("log")
    ax.set_xticks(ns, [f"{int(n):,d}" for n in ns])
    ax.minorticks_off()
    ax.set(xlabel="labelled training images (log scale)", ylabel=f"{split} accuracy (%)", title=title)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig
