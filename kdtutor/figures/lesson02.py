"""Lesson 02 — CE vs KL vs MSE: its figures. Each function returns a new figure."""

from __future__ import annotations


import numpy as np

from kdtutor.figures.common import as_array, new_figure, series_style


def forward_vs_reverse_kl(x, teacher_probs, fits: dict, title: str = "fitting a one-bump student to a two-bump teacher",
                          mus=None, landscapes: dict | None = None):
    """The teacher's distribution over ``x`` (shaded) and each fitted student's (lines); with
    ``landscapes``, a second panel: each loss against the student's centre μ (at its best width).

    Each fit has its own line style and markers (staggered, so lines that lie on top of each other
    stay visible), and a fit equal to an earlier one (within 1e-3 of the largest probability) says so
    in the legend: "(coincides with <the earlier label up to its first colon>)".

    Args:
        x: ``(K,)`` positions of the K categories.
        teacher_probs: ``(K,)`` probabilities.
        fits: ``{label: (K,) probabilities}``, e.g. the student fitted with forward and with reverse KL.
        mus: ``(M,)`` centres, with ``landscapes`` = ``{label: (M,) losses in nats}``
            (see :func:`kdtutor.kd.losses.kl_landscape`).
    """
    x, p = as_array(x), as_array(teacher_probs)
    fig, axes = new_figure(2 if landscapes else 1, width=6.0 if landscapes else 6.5, height=4.6)
    ax = axes[0]
    ax.fill_between(x, p, step="mid", alpha=0.3, color="gray", label="teacher p")
    drawn = []  # (label, probabilities) of the fits already drawn
    for i, (label, q) in enumerate(fits.items()):
        q = as_array(q)
        same = [earlier for earlier, q_earlier in drawn if np.allclose(q, q_earlier, rtol=0, atol=1e-3 * q.max())]
        legend = f"{label} (coincides with {same[0].split(':')[0]})" if same else label
        ax.plot(x, q, drawstyle="steps-mid", lw=max(1.2, 3.2 - 0.6 * i), markevery=(i, 4), ms=5, zorder=2 + i,
                label=legend, **series_style(i))
        drawn.append((label, q))
    ax.set(xlabel="category position x", ylabel="probability", title=title)
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.16))  # below the axes: no curve hidden
    if landscapes:
        ax = axes[1]
        for i, (label, values) in enumerate(landscapes.items()):
            ax.plot(as_array(mus), as_array(values), lw=2, markevery=(2 * i, 8), ms=5, label=label, **series_style(i))
        ax.set(xlabel="student's centre μ (each at its best width σ)", ylabel="loss (nats)",
               title="the loss against μ: local minima are where a fit can stop")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def gradient_norm_vs_temperature(temperatures, norms: dict,
                                 title: str = "size of the distillation gradient on the student's logits"):
    """Gradient norms against T on log–log axes, one line per ``{label: norms}`` entry."""
    T = as_array(list(temperatures))
    fig, (ax,) = new_figure(1, width=6.0, height=4.0)
    for i, (label, values) in enumerate(norms.items()):
        ax.plot(T, as_array(list(values)), label=label, **series_style(i))
    ax.set(xscale="log", yscale="log", xlabel="temperature T (log scale)",
           ylabel="‖∂ loss / ∂ student logits‖ (log scale)", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def kd_over_mse_vs_temperature(temperatures, ratios: dict,
                               title: str = "T²·KL divided by MSE/2: the high-temperature limit"):
    """``T²·KL / (MSE/2)`` against T (log axis), one line per ``{label: ratios}``; 1 is logit matching."""
    T = as_array(list(temperatures))
    fig, (ax,) = new_figure(1, width=6.0, height=4.0)
    for i, (label, values) in enumerate(ratios.items()):
        ax.plot(T, as_array(list(values)), label=label, **series_style(i))
    ax.axhline(1.0, color="gray", ls="--", label="1 (logit matching)")
    ax.set(xscale="log", xlabel="temperature T (log scale)", ylabel="T²·KL / (MSE / 2)", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig

