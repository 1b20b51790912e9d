"""Thin ipywidgets wrappers: each only wires a slider to a plain, tested function and a plot.

``interact`` and widget callbacks swallow exceptions when run headless, so the logic lives
in ``kdtutor.kd.softmax`` and the drawing in ``kdtutor.figures``, where tests call them. Importing
this module needs neither a display nor a running kernel; bad input raises ``ValueError``
when the widget is built, not later inside a callback.
"""

from __future__ import annotations

import math

import torch


def temperature_explorer(logits: torch.Tensor, class_names: list[str], T: float = 1.0,
                         T_min: float = 0.1, T_max: float = 100.0):
    """A log-scale slider for T above a bar chart of ``softmax(logits / T)`` (lesson 01).

    Each move of the slider draws :func:`kdtutor.figures.lesson01.temperature_panel` of
    :func:`kdtutor.kd.softmax.temperature_summary` for the new T.

    Args:
        logits: ``(C,)`` float, one example.
        class_names: ``C`` names.
        T: the starting temperature, within ``[T_min, T_max]``.
    Returns:
        the widget (an ``ipywidgets.VBox``); make it the last expression of a cell to show it.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    from kdtutor.figures import lesson01
    from kdtutor.kd.softmax import check_temperature, temperature_summary

    T, T_min, T_max = (check_temperature(v) for v in (T, T_min, T_max))
    if not T_min <= T <= T_max:
        raise ValueError(f"the starting T = {T} must lie within [T_min, T_max] = [{T_min}, {T_max}]")
    # validate logits and names now, where an error reaches the caller
    plt.close(lesson01.temperature_panel(temperature_summary(logits, T), class_names))

    # log-spaced and as wide as the cell: each decade of T gets a quarter of the width (at the default
    # 0.1-100, T = 1 to 100 spans two thirds of it, not the 110 px of a default-width slider)
    slider = widgets.FloatLogSlider(value=T, base=10, min=math.log10(T_min), max=math.log10(T_max), step=0.01,
                                    description="T", readout_format=".3g", continuous_update=False,
                                    layout=widgets.Layout(width="95%"))
    out = widgets.Output()

    def draw(change=None):
        fig = lesson01.temperature_panel(temperature_summary(logits, slider.value), class_names)
        with out:
            out.clear_output(wait=True)
            display(fig)
        plt.close(fig)

    slider.observe(draw, names="value")
    draw()
    return widgets.VBox([slider, out])
