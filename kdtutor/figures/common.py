"""What every figure module shares: a new figure with its axes, numbers as numpy arrays, and the
styles that tell a figure's lines apart by more than colour.

Conventions: every axis is labelled (with units where there are any), every figure has a
title, and data from the stand-in data set say so in the title (pass ``Dataset.name``
through). In a notebook write ``fig = lesson04.sweep_heatmap(...)`` so the figure shows once.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 5.0, height: float = 3.6, **kw):
    """A figure of ``nrows × ncols`` panels (each ``width × height`` inches) and its axes, flattened."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kw)
    return fig, axes.ravel()


def as_array(x) -> np.ndarray:
    """A float numpy array from a tensor, list or array."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double()
    return np.asarray(x, dtype=float)


# Line style and marker of series 0, 1, 2, …: lines stay distinct in greyscale and for readers who
# do not tell the colours apart.
_LINE_STYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D", "v", "P")


def series_style(i: int) -> dict:
    """Matplotlib keywords for series ``i`` (0, 1, …) of a figure: colour ``C{i}`` and a line style
    and a marker of their own, so no two of a figure's first 12 series differ by colour only.

    Raises:
        ValueError: ``i`` is negative.
    """
    if i < 0:
        raise ValueError(f"series index must be ≥ 0, got {i}")
    return {"color": f"C{i % 10}", "ls": _LINE_STYLES[i % len(_LINE_STYLES)], "marker": _MARKERS[i % len(_MARKERS)]}
