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
def _np(x) -> np.ndarray:
    """A float numpy array from a tensor, list or array."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double()
    return np.asarray(x, dtype=float)


def probabilities_vs_temperature(logits: torch.Tensor, class_names: list[str], temperatures,
                                 title: str = "softmax(logits / T) at several temperatures"):
    """Grouped bars of ``softmax(logits / T)`` per class, one bar per T: linear scale (left) and
    log scale (right, where the small "dark knowledge" probabilities become visible).

    Args:
        logits: ``(C,)`` float, one example.
        class_names: ``C`` names.
        temperatures: the T values, each > 0.
    """
    from .softmax import softmax

    if len(class_names) != logits.shape[-1]:
        raise ValueError(f"{len(class_names)} class names for {logits.shape[-1]} logits")
    temperatures = list(temperatures)
    probs = np.stack([_np(softmax(logits, T=T)) for T in temperatures])  # (len(T), C)
    fig, axes = _new(2, width=6.5, height=3.8)
    x = np.arange(len(class_names))
    width = 0.8 / len(temperatures)
    for ax, scale in zip(axes, ("linear", "log")):
        for i, T in enumerate(temperatures):
            ax.bar(x + (i - (len(temperatures) - 1) / 2) * width, probs[i], width, label=f"T = {T:g}")
        ax.set_yscale(scale)
        ax.set_xticks(x, class_names, rotation=45, ha="right")
        ax.set(xlabel="class", ylabel="probability" + (" (log scale)" if scale == "log" else ""),
               title=f"{scale} scale")
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def entropy_vs_temperature(logits: torch.Tensor, temperatures, title: str = "entropy of softmax(logits / T)"):
    """Entropy (nats, left) and effective number of classes ``exp(H)`` (right) against T (log axis),
    with their limits ``log C`` and ``C``. Values from :func:`kdtutor.softmax.temperature_summary`."""
    from .softmax import temperature_summary

    temperatures = _np(list(temperatures))
    summaries = [temperature_summary(logits, float(T)) for T in temperatures]
    C = logits.shape[-1]
    fig, (ax_h, ax_k) = _new(2)
    ax_h.plot(temperatures, [s["entropy"] for s in summaries], "o-", label="H(p)")
    ax_h.axhline(np.log(C), color="gray", ls="--", label=f"log C = {np.log(C):.3f} (uniform)")
    ax_h.set(xscale="log", xlabel="temperature T (log scale)", ylabel="entropy (nats)", title="entropy")
    ax_h.legend(fontsize=8)
    ax_k.plot(temperatures, [s["effective_classes"] for s in summaries], "o-", color="C1", label="exp(H)")
    ax_k.axhline(C, color="gray", ls="--", label=f"C = {C}")
    ax_k.set(xscale="log", xlabel="temperature T (log scale)", ylabel="effective number of classes",
             title="effective number of classes, exp(H)")
    ax_k.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def relative_probabilities(logits: torch.Tensor, class_names: list[str], temperatures,
                           title: str = "each class's probability relative to the top class"):
    """``p_c / p_top = exp((z_c − z_top) / T)`` against T for every other class (log–log).

    The curves never cross: temperature keeps the teacher's ranking of the wrong
    classes and only changes how visible it is.
    """
    if len(class_names) != logits.shape[-1]:
        raise ValueError(f"{len(class_names)} class names for {logits.shape[-1]} logits")
    z = _np(logits)
    top = int(np.argmax(z))
    T = _np(list(temperatures))
    fig, (ax,) = _new(1, width=6.5, height=4.2)
    for c in np.argsort(-z):
        if c == top:
            continue
        ax.plot(T, np.exp((z[c] - z[top]) / T), label=class_names[c])
    ax.set(xscale="log", yscale="log", xlabel="temperature T (log scale)",
           ylabel=f"p(class) / p({class_names[top]}) (log scale)", title=title)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


def temperature_panel(summary: dict, class_names: list[str]):
    """One bar chart of ``summary["probs"]`` (from :func:`kdtutor.softmax.temperature_summary`),
    titled with T, the entropy and the effective number of classes. Drawn by the T slider."""
    probs = _np(summary["probs"])
    if len(class_names) != len(probs):
        raise ValueError(f"{len(class_names)} class names for {len(probs)} probabilities")
    fig, (ax,) = _new(1, width=6.5, height=3.6)
    ax.bar(np.arange(len(probs)), probs, color="C0")
    ax.set_xticks(np.arange(len(probs)), class_names, rotation=45, ha="right")
    ax.set_ylim(0, 1)
    ax.set(xlabel="class", ylabel="probability",
           title=f"T = {summary['T']:.3g}: entropy {summary['entropy']:.3f} of {summary['max_entropy']:.3f} nats, "
                 f"{summary['effective_classes']:.2f} effective classes")
    fig.tight_layout()
    return fig


# =========================================================================== lesson 02
def forward_vs_reverse_kl(x, teacher_probs, fits: dict, title: str = "fitting a one-bump student to a two-bump teacher",
                          mus=None, landscapes: dict | None = None):
    """The teacher's distribution over ``x`` (shaded) and each fitted student's (lines); with
    ``landscapes``, a second panel: each loss against the student's centre μ (at its best width).

    Args:
        x: ``(K,)`` positions of the K categories.
        teacher_probs: ``(K,)`` probabilities.
        fits: ``{label: (K,) probabilities}``, e.g. the student fitted with forward and with reverse KL.
        mus: ``(M,)`` centres, with ``landscapes`` = ``{label: (M,) losses in nats}``
            (see :func:`kdtutor.losses.kl_landscape`).
    """
    x, p = _np(x), _np(teacher_probs)
    fig, axes = _new(2 if landscapes else 1, width=6.0 if landscapes else 6.5, height=3.8)
    ax = axes[0]
    ax.fill_between(x, p, step="mid", alpha=0.3, color="gray", label="teacher p")
    for i, (label, q) in enumerate(fits.items()):
        ax.plot(x, _np(q), drawstyle="steps-mid", color=f"C{i}", lw=2, label=label)
    ax.set(xlabel="category position x", ylabel="probability", title=title)
    ax.legend(fontsize=8)
    if landscapes:
        ax = axes[1]
        for label, values in landscapes.items():
            ax.plot(_np(mus), _np(values), lw=2, label=label)
        ax.set(xlabel="student's centre μ (each at its best width σ)", ylabel="loss (nats)",
               title="the loss against μ: local minima are where a fit can stop")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def gradient_norm_vs_temperature(temperatures, norms: dict,
                                 title: str = "size of the distillation gradient on the student's logits"):
    """Gradient norms against T on log–log axes, one line per ``{label: norms}`` entry."""
    T = _np(list(temperatures))
    fig, (ax,) = _new(1, width=6.0, height=4.0)
    for label, values in norms.items():
        ax.plot(T, _np(list(values)), "o-", label=label)
    ax.set(xscale="log", yscale="log", xlabel="temperature T (log scale)",
           ylabel="‖∂ loss / ∂ student logits‖ (log scale)", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def kd_over_mse_vs_temperature(temperatures, ratios: dict,
                               title: str = "T²·KL divided by MSE/2: the high-temperature limit"):
    """``T²·KL / (MSE/2)`` against T (log axis), one line per ``{label: ratios}``; 1 is logit matching."""
    T = _np(list(temperatures))
    fig, (ax,) = _new(1, width=6.0, height=4.0)
    for label, values in ratios.items():
        ax.plot(T, _np(list(values)), "o-", label=label)
    ax.axhline(1.0, color="gray", ls="--", label="1 (logit matching)")
    ax.set(xscale="log", xlabel="temperature T (log scale)", ylabel="T²·KL / (MSE / 2)", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


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


# lesson 05's figures live in plots_eval.py; importing them here keeps ``plots.<name>`` working
from .plots_eval import accuracy_vs_cost, confusion_matrix, per_class_accuracy, reliability_diagram  # noqa: E402,F401
