"""Lesson 01 — softmax and temperature: its figures. Each function returns a new figure."""

from __future__ import annotations

import numpy as np
import torch

from kdtutor.figures.common import as_array, new_figure


def probabilities_vs_temperature(logits: torch.Tensor, class_names: list[str], temperatures,
                                 title: str = "softmax(logits / T) at several temperatures"):
    """Grouped bars of ``softmax(logits / T)`` per class, one bar per T: linear scale (left) and
    log scale (right, where the small "dark knowledge" probabilities become visible).

    Args:
        logits: ``(C,)`` float, one example.
        class_names: ``C`` names.
        temperatures: the T values, each > 0.
    """
    from kdtutor.kd.softmax import softmax

    if len(class_names) != logits.shape[-1]:
        raise ValueError(f"{len(class_names)} class names for {logits.shape[-1]} logits")
    temperatures = list(temperatures)
    probs = np.stack([as_array(softmax(logits, T=T)) for T in temperatures])  # (len(T), C)
    fig, axes = new_figure(2, width=6.5, height=3.8)
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
    with their limits ``log C`` and ``C``. Values from :func:`kdtutor.kd.softmax.temperature_summary`."""
    from kdtutor.kd.softmax import temperature_summary

    temperatures = as_array(list(temperatures))
    summaries = [temperature_summary(logits, float(T)) for T in temperatures]
    C = logits.shape[-1]
    fig, (ax_h, ax_k) = new_figure(2)
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
    z = as_array(logits)
    top = int(np.argmax(z))
    T = as_array(list(temperatures))
    fig, (ax,) = new_figure(1, width=6.5, height=4.2)
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
    """One bar chart of ``summary["probs"]`` (from :func:`kdtutor.kd.softmax.temperature_summary`),
    titled with T, the entropy and the effective number of classes. Drawn by the T slider."""
    probs = as_array(summary["probs"])
    if len(class_names) != len(probs):
        raise ValueError(f"{len(class_names)} class names for {len(probs)} probabilities")
    fig, (ax,) = new_figure(1, width=6.5, height=3.6)
    ax.bar(np.arange(len(probs)), probs, color="C0")
    ax.set_xticks(np.arange(len(probs)), class_names, rotation=45, ha="right")
    ax.set_ylim(0, 1)
    ax.set(xlabel="class", ylabel="probability",
           title=f"T = {summary['T']:.3g}: entropy {summary['entropy']:.3f} of {summary['max_entropy']:.3f} nats, "
                 f"{summary['effective_classes']:.2f} effective classes")
    fig.tight_layout()
    return fig

