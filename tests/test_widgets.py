"""kdtutor.widgets builds without a display and raises early on bad input."""

import matplotlib.pyplot as plt
import pytest
import torch

from kdtutor import widgets

LOGITS = torch.tensor([3.0, 1.0, 0.2, -1.0])
NAMES = ["cat", "dog", "deer", "truck"]


def test_temperature_explorer_builds_and_redraws_headless():
    w = widgets.temperature_explorer(LOGITS, NAMES, T=2.0)
    slider = w.children[0]
    assert slider.value == pytest.approx(2.0)
    assert 10 ** slider.min == pytest.approx(0.1) and 10 ** slider.max == pytest.approx(100.0)
    for T in (0.1, 5.0, 100.0):
        slider.value = T  # triggers a redraw; must not raise or leak figures
    assert plt.get_fignums() == []


@pytest.mark.parametrize("kwargs, match", [
    (dict(logits=LOGITS, class_names=NAMES[:3]), "3 class names for 4"),
    (dict(logits=LOGITS[None], class_names=NAMES), r"shape \(C,\)"),
    (dict(logits=LOGITS, class_names=NAMES, T=0.0), "temperature T"),
    (dict(logits=LOGITS, class_names=NAMES, T=500.0), "within"),
    (dict(logits=torch.tensor([0.0, float("nan"), 1.0, 2.0]), class_names=NAMES), "NaN"),
])
def test_temperature_explorer_rejects_bad_input_at_once(kwargs, match):
    with pytest.raises(ValueError, match=match):
        widgets.temperature_explorer(**kwargs)
    plt.close("all")


def test_the_slider_is_log_spaced_and_wide_and_each_move_draws_the_summary_at_its_T(monkeypatch):
    import ipywidgets

    from kdtutor.figures import lesson01
    from kdtutor.kd.softmax import temperature_summary

    drawn, real = [], lesson01.temperature_panel
    monkeypatch.setattr(lesson01, "temperature_panel", lambda summary, names: drawn.append(summary) or real(summary, names))
    w = widgets.temperature_explorer(LOGITS, NAMES, T=1.0)
    slider = w.children[0]
    assert isinstance(slider, ipywidgets.FloatLogSlider) and slider.base == 10
    assert slider.layout.width == "95%" and slider.step <= 0.01  # fine steps over the cell's width
    drawn.clear()
    for T in (0.5, 4.0, 20.0):
        slider.value = T
        expected = temperature_summary(LOGITS, T)
        assert drawn[-1]["T"] == pytest.approx(T)
        assert torch.allclose(drawn[-1]["probs"], expected["probs"])
        assert drawn[-1]["entropy"] == pytest.approx(expected["entropy"])
    assert len(drawn) == 3 and plt.get_fignums() == []
