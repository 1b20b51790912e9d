"""Lesson 07's figures. Each function draws on a new figure and returns it; every axis is
labelled, every figure titled, and the text's name goes into the title (pass ``TextData.name``)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np


def _smooth(values, window: int) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if window <= 1 or len(v) < window:
        return v
    return np.convolve(v, np.ones(window) / window, mode="valid")


def training_losses(histories: dict, title: str, window: int = 10, ncols: int = 4):
    """One panel per run: its training loss (nats per position, moving average over ``window`` steps)
    against the step. ``histories``: name → list of ``{"step", "loss"}`` dicts (``LMRun.history``).
    Losses of different methods measure different things (CE, KL, JSD), so each panel has its own scale."""
    n = len(histories)
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.8 * nrows), squeeze=False)
    for ax, (name, hist) in zip(axes.ravel(), histories.items()):
        loss = _smooth([h["loss"] for h in hist], window)
        ax.plot(np.arange(len(loss)) + min(window, len(hist)), loss)
        ax.set(xlabel="step", ylabel="training loss (nats)", title=name)
    for ax in axes.ravel()[n:]:
        ax.remove()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _legend_below(ax, points: float = 32):
    """``ax``'s legend under its x label (``points`` below the axes), where it covers no bar."""
    from matplotlib.transforms import offset_copy

    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 0), ncol=1,
              bbox_transform=offset_copy(ax.transAxes, fig=ax.figure, y=-points, units="points"))


def method_comparison(results: dict, title: str, reference: dict | None = None):
    """Four panels, one bar per model (legends below the panels, clear of the bars): held-out bits/char; KL to the teacher in both directions
    (bits/char); the entropy of the next-character distribution and the teacher's bits/char on the
    model's samples; the share of the samples' words found in the training text ("known") and of
    different words (distinct-1), with the held-out text's own values as lines. ``results``: name → ``LMLesson.evaluate`` row."""
    names = list(results)
    y = np.arange(len(names))
    fig, axes = plt.subplots(1, 4, figsize=(17, 0.45 * len(names) + 2.6), sharey=True)
    ax = axes[0]
    ax.barh(y, [results[n]["bpc"] for n in names], color="C0")
    ax.set(xlabel="bits per character (lower is better)", title="held-out bits/char")
    ax = axes[1]
    fwd = [results[n].get("kl_teacher_student", np.nan) for n in names]
    rev = [results[n].get("kl_student_teacher", np.nan) for n in names]
    ax.barh(y - 0.2, fwd, 0.4, label="KL(teacher ‖ model)", color="C1")
    ax.barh(y + 0.2, rev, 0.4, label="KL(model ‖ teacher)", color="C2")
    ax.set(xlabel="bits per character", title="distance to the teacher")
    _legend_below(ax)
    ax = axes[2]
    ax.barh(y - 0.2, [results[n]["entropy"] for n in names], 0.4, color="C4", label="entropy of its next-char bets")
    ax.barh(y + 0.2, [results[n].get("teacher_bpc_on_samples", np.nan) for n in names], 0.4, color="C5",
            label="teacher's bits/char on its samples")
    ax.set(xlabel="bits per character", title="spread of bets; plausibility of samples")
    _legend_below(ax)
    ax = axes[3]
    for shift, key, label, color, style in [(-0.2, "known_words", "known words", "C3", "--"),
                                            (0.2, "distinct_1", "distinct words", "C6", ":")]:
        ax.barh(y + shift, [results[n].get(key, np.nan) for n in names], 0.4, color=color, label=label)
        if reference and not math.isnan(reference.get(key, math.nan)):
            ax.axvline(reference[key], color=color, ls=style, label=f"{label}: held-out text")
    _legend_below(ax)
    ax.set(xlabel="share of the samples' words", title="words of samples")
    for ax in axes:
        ax.set_yticks(y, names)
        ax.set_ylabel("model")
    axes[0].invert_yaxis()  # shared: the first model on top in every panel
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def topk_tradeoff(ks, bytes_per_position: list[float], full_bytes: float, losses: dict, full_loss: float, title: str):
    """Left: bytes stored per position against k, with full logits as a line. Right: the top-k
    losses (name → list over ``ks``, nats) against k, with the full forward KL as a line."""
    fig, (ax_m, ax_l) = plt.subplots(1, 2, figsize=(11, 3.8))
    ax_m.plot(ks, bytes_per_position, "o-", label="top-k: values + indices + rest")
    ax_m.axhline(full_bytes, color="k", ls="--", label="all logits (float32)")
    ax_m.set(xlabel="k (characters kept per position)", ylabel="bytes per position", title="storage")
    ax_m.legend(fontsize=8)
    for name, values in losses.items():
        ax_l.plot(ks, values, "o-", label=name)
    ax_l.axhline(full_loss, color="k", ls="--", label="full forward KL")
    ax_l.set(xlabel="k (characters kept per position)", ylabel="loss (nats per position)",
             title="the loss the student would see")
    ax_l.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def next_char_distributions(chars: list[str], probs: dict, context: str, title: str, top: int = 12):
    """Grouped bars: each model's probability of the ``top`` characters the first model (the
    teacher) finds most likely after ``context``. ``probs``: name → ``(V,)`` probabilities."""
    names = list(probs)
    if not names or any(len(p) != len(chars) for p in probs.values()):
        raise ValueError(f"probs must map at least one name to {len(chars)} probabilities, one per character")
    first = np.asarray(probs[names[0]], dtype=float)
    order = np.argsort(-first)[:top]
    x = np.arange(len(order))
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(max(7.0, 0.6 * top * len(names) / 3), 3.8))
    for i, name in enumerate(names):
        p = np.asarray(probs[name], dtype=float)[order]
        ax.bar(x + (i - (len(names) - 1) / 2) * width, p, width, label=name)
    labels = [repr(chars[j])[1:-1].replace(" ", "␣") for j in order]
    ax.set_xticks(x, labels)
    shown = context.replace("\n", "⏎")[-40:]
    ax.set(xlabel=f"next character after “…{shown}”", ylabel="probability", title=title)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig
