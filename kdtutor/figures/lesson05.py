"""Lesson 05's figures: reliability diagrams, confusion matrices, accuracy against cost, per-class accuracy.

The conventions of :mod:`kdtutor.figures` hold here too (titles, labelled axes, the data set's
name in the title); every function is also available as ``plots.<name>``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch



def _new(ncols: int = 1, nrows: int = 1, width: float = 5.0, height: float = 3.6, **kw):
    """A new figure with ``nrows × ncols`` axes of ``width × height`` inches each; returns (fig, flat axes)."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kw)
    return fig, axes.ravel()


def _as_dict(x, name: str) -> dict:
    """``x`` itself if it is a dict, else ``{name: x}``."""
    return dict(x) if isinstance(x, dict) else {name: x}


def reliability_diagram(bins, dataset_name: str, model_name: str = "model"):
    """Reliability diagram(s): accuracy per confidence bin against the diagonal, ECE in each title.

    Args:
        bins: a :class:`kdtutor.images.metrics.ReliabilityBins`, or ``{model name: ReliabilityBins}``
            for one panel per model (e.g. teacher and students side by side).
        dataset_name: ``Dataset.name``, shown in the title.
    A bar below the diagonal means over-confidence (accuracy < confidence) in that bin;
    the red outline shows the gap from the bin's mean confidence. Empty bins have no bar.
    """
    panels = _as_dict(bins, model_name)
    if not panels:
        raise ValueError("no reliability bins to draw")
    fig, axes = _new(len(panels), width=4.2, height=4.0)
    for ax, (name, b) in zip(axes, panels.items()):
        full = (b.count > 0).numpy()
        left, width = b.lower.numpy()[full], (b.upper - b.lower).numpy()[full]
        acc, conf = b.accuracy.numpy()[full], b.confidence.numpy()[full]
        ece = b.ece()
        ax.bar(left, acc, width=width, align="edge", color="C0", edgecolor="white",
               label=f"accuracy per bin (ECE {100 * ece:.2f} %)")
        ax.bar(left, conf - acc, bottom=acc, width=width, align="edge", fill=False, edgecolor="C3",
               linewidth=0.8, label="gap to mean confidence")
        ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (max softmax probability)",
               ylabel="accuracy in bin", title=f"{name}: ECE {100 * ece:.2f} % ({b.n_bins} bins)")
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(f"Reliability diagram — {dataset_name}")
    fig.tight_layout()
    return fig


def confusion_heatmap(cm: torch.Tensor, classes: list[str], dataset_name: str, model_name: str = "model",
                     normalize: bool = True):
    """Heat map of a confusion matrix (rows = true class, columns = predicted class).

    Args:
        cm: ``(C, C)`` counts, e.g. ``kdtutor.images.metrics.confusion_matrix(logits, labels)``.
        classes: the ``C`` class names.
        normalize: show each row as % of that class's examples (else raw counts).
    """
    cm = torch.as_tensor(cm)
    C = len(classes)
    if cm.shape != (C, C):
        raise ValueError(f"confusion matrix has shape {tuple(cm.shape)} but there are {C} class names")
    counts = cm.double().numpy()
    if normalize:
        rows = counts.sum(axis=1, keepdims=True)
        values = np.divide(100 * counts, rows, out=np.zeros_like(counts), where=rows > 0)
        bar_label = "% of the true class"
    else:
        values, bar_label = counts, "examples"
    size = max(4.0, 0.45 * C + 1.5)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(values, cmap="Blues", vmin=0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=bar_label)
    if C <= 20:
        top = values.max() if values.size else 0
        for i in range(C):
            for j in range(C):
                ax.text(j, i, f"{values[i, j]:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if values[i, j] > 0.6 * top else "black")
    ax.set_xticks(range(C), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(C), classes, fontsize=8)
    what = "row-normalised %" if normalize else "counts"
    ax.set(xlabel="predicted class", ylabel="true class",
           title=f"Confusion matrix of {model_name} ({what}) — {dataset_name}")
    fig.tight_layout()
    return fig


def accuracy_vs_cost(card: dict, dataset_name: str | None = None, batch_size: int | None = None):
    """Accuracy against size (parameters) and against latency, one labelled point per model (log x).

    Args:
        card: ``{name: ReportRow}`` from :func:`kdtutor.images.evaluate.report_card`.
        dataset_name: shown in the title (default: the rows' data set).
        batch_size: which measured latency to plot (default: the largest measured batch).
    """
    if not card:
        raise ValueError("the report card is empty")
    rows = list(card.values())
    dataset_name = dataset_name or rows[0].dataset
    measured = sorted(rows[0].latency_ms)
    if batch_size is None and measured:
        batch_size = measured[-1]
    if batch_size is not None and batch_size not in measured:
        raise ValueError(f"latency was measured at batch sizes {measured}, not {batch_size}")
    fig, (ax_size, ax_time) = _new(2, width=5.0, height=4.0)
    for i, r in enumerate(rows):
        style = dict(marker="*" if r.is_teacher else "o", s=160 if r.is_teacher else 60, color=f"C{i}")
        label = f"{r.name} (teacher)" if r.is_teacher and "teacher" not in r.name else r.name
        ax_size.scatter(r.params, 100 * r.accuracy, label=label, **style)
        ax_size.annotate(label, (r.params, 100 * r.accuracy), textcoords="offset points", xytext=(5, 5), fontsize=8)
        if batch_size is not None:
            t = r.latency_ms[batch_size]
            ax_time.scatter(t, 100 * r.accuracy, **style)
            ax_time.annotate(label, (t, 100 * r.accuracy), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax_size.set_xscale("log")
    ax_size.margins(x=0.25, y=0.15)
    ax_size.set(xlabel="parameters (log scale)", ylabel="test accuracy (%)", title="accuracy vs size")
    if batch_size is not None:
        ax_time.set_xscale("log")
        ax_time.margins(x=0.25, y=0.15)
        time_title = f"accuracy vs latency (batch {batch_size}, {rows[0].device})"
    else:
        ax_time.text(0.5, 0.5, "latency not measured", ha="center", va="center", transform=ax_time.transAxes)
        time_title = "accuracy vs latency (not measured)"
    ax_time.set(xlabel=f"latency per batch of {batch_size} (ms, log scale)" if batch_size else "latency (ms)",
                ylabel="test accuracy (%)", title=time_title)
    ax_size.legend(fontsize=8)
    fig.suptitle(f"What accuracy costs — {dataset_name}")
    fig.tight_layout()
    return fig


def per_class_accuracy_bars(accuracies: dict, classes: list[str], dataset_name: str, highlight: int | None = None,
                       title: str | None = None):
    """Grouped bars: accuracy on each class (its recall), one bar per model (e.g. teacher vs student).

    Args:
        accuracies: ``{model name: (C,) accuracies in [0, 1]}``, e.g. from
            :func:`kdtutor.images.metrics.per_class_accuracy` (NaN: class absent, no bar).
        classes: the ``C`` class names.
        highlight: index of a class to shade (e.g. the one left out of training).
        title: replaces the default "Per-class accuracy — <data set>".
    """
    if not accuracies:
        raise ValueError("no accuracies to draw")
    C, k = len(classes), len(accuracies)
    for name, acc in accuracies.items():
        if len(acc) != C:
            raise ValueError(f"{name!r} has {len(acc)} per-class accuracies but there are {C} class names")
    fig, (ax,) = _new(1, width=max(6.0, 0.3 * C * k + 2), height=3.8)
    x, width = np.arange(C), 0.8 / k
    for i, (name, acc) in enumerate(accuracies.items()):
        values = 100 * torch.as_tensor(acc, dtype=torch.float64).numpy()
        ax.bar(x + (i - (k - 1) / 2) * width, values, width=width, label=name, color=f"C{i}")
    ax.set_xticks(x, classes, rotation=45 if C > 6 else 0, ha="right" if C > 6 else "center", fontsize=8)
    if highlight is not None:
        ax.axvspan(highlight - 0.45, highlight + 0.45, color="gold", alpha=0.25, zorder=0,
                   label=f"class {classes[highlight]}")
    ax.set(ylim=(0, 105), xlabel="true class", ylabel="accuracy on the class (%)",
           title=title or f"Per-class accuracy — {dataset_name}")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def soft_targets_vs_temperature(summaries: dict, title: str):
    """Two panels against T (log axis), one line per teacher: the mean probability of the labelled class,
    and the entropy of the soft targets over its maximum ``log C`` (1 = uniform).

    Args:
        summaries: ``{teacher name: {T: kdtutor.images.metrics.soft_targets(...) dict}}``.
    """
    fig, (ax_p, ax_h) = _new(ncols=2, width=5, height=3.8)
    for k, (name, by_t) in enumerate(summaries.items()):
        ts = sorted(by_t)
        ax_p.plot(ts, [by_t[t]["p_target"] for t in ts], "o-", color=f"C{k}", label=name)
        ax_h.plot(ts, [by_t[t]["entropy"] for t in ts], "o-", color=f"C{k}", label=f"{name}: all classes")
        ax_h.plot(ts, [by_t[t]["non_target_entropy"] for t in ts], "s--", color=f"C{k}", alpha=0.6,
                  label=f"{name}: wrong classes only")
    ax_p.set(xscale="log", xlabel="temperature T (log scale)", ylabel="mean p(labelled class)",
             title="probability of the label", ylim=(0, 1))
    ax_h.set(xscale="log", xlabel="temperature T (log scale)", ylabel="entropy / its maximum",
             title="how flat the soft targets are", ylim=(0, 1.02))
    for ax in (ax_p, ax_h):
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
