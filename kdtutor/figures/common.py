"""What every figure module shares: a new figure with its axes, numbers as numpy arrays.

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
