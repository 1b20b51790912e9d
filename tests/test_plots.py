"""Every figure the lessons draw: each axes has an x label, a y label and a title
(the figure's suptitle counts as the title), and the numbers drawn are the right ones."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from kdtutor.figures import lesson01, lesson02
from kdtutor.kd.softmax import temperature_summary
from plotting import assert_labelled  # noqa: E402

CAT = torch.tensor([-1.0, -2.0, 2.0, 9.0, 3.0, 6.5, 2.5, 1.5, -1.5, -2.5])
NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_the_helper_catches_a_missing_label():
    fig, ax = plt.subplots()
    ax.set(xlabel="x", title="t")
    with pytest.raises(AssertionError, match="no y label"):
        assert_labelled(fig)


# --------------------------------------------------------------------------- lesson 01
def test_probabilities_vs_temperature():
    fig = lesson01.probabilities_vs_temperature(CAT, NAMES, [1, 4])
    assert_labelled(fig)
    left = fig.axes[0]
    heights = np.array([b.get_height() for b in left.patches]).reshape(2, 10)
    np.testing.assert_allclose(heights[0], torch.softmax(CAT, 0).numpy(), rtol=1e-6)
    np.testing.assert_allclose(heights[1], torch.softmax(CAT / 4, 0).numpy(), rtol=1e-6)
    assert fig.axes[1].get_yscale() == "log"


def test_probabilities_vs_temperature_rejects_wrong_names():
    with pytest.raises(ValueError, match="9 class names for 10"):
        lesson01.probabilities_vs_temperature(CAT, NAMES[:9], [1])


def test_entropy_vs_temperature():
    temps = [0.5, 1, 4, 16]
    fig = lesson01.entropy_vs_temperature(CAT, temps)
    assert_labelled(fig)
    want = [torch.distributions.Categorical(logits=CAT / T).entropy().item() for T in temps]
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), want, rtol=1e-5)
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata(), np.exp(want), rtol=1e-5)


def test_relative_probabilities():
    temps = [1, 2, 4]
    fig = lesson01.relative_probabilities(CAT, NAMES, temps)
    assert_labelled(fig)
    assert len(fig.axes[0].lines) == 9  # every class but the top one
    dog = fig.axes[0].lines[0]  # the runner-up comes first
    assert dog.get_label() == "dog"
    p = [torch.softmax(CAT / T, 0) for T in temps]
    np.testing.assert_allclose(dog.get_ydata(), [float(q[5] / q[3]) for q in p], rtol=1e-5)


def test_temperature_panel():
    s = temperature_summary(CAT, 3.0)
    fig = lesson01.temperature_panel(s, NAMES)
    assert_labelled(fig)
    assert "T = 3" in fig.axes[0].get_title()
    np.testing.assert_allclose([b.get_height() for b in fig.axes[0].patches], s["probs"].numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="class names"):
        lesson01.temperature_panel(s, NAMES[:2])


# --------------------------------------------------------------------------- lesson 02
def test_forward_vs_reverse_kl():
    x = torch.linspace(-3, 3, 7)
    p = torch.softmax(-x ** 2, 0)
    fig = lesson02.forward_vs_reverse_kl(x, p, {"forward": torch.full((7,), 1 / 7), "reverse": p})
    assert_labelled(fig)
    assert [line.get_label() for line in fig.axes[0].lines] == ["forward", "reverse"]


def test_forward_vs_reverse_kl_with_the_loss_landscape():
    x = torch.linspace(-3, 3, 7)
    p = torch.softmax(-x ** 2, 0)
    mus = torch.linspace(-2, 2, 5)
    fig = lesson02.forward_vs_reverse_kl(x, p, {"forward": p}, mus=mus,
                                      landscapes={"forward": mus ** 2, "reverse": (mus ** 2 - 1) ** 2})
    assert_labelled(fig)
    assert len(fig.axes) == 2
    np.testing.assert_allclose(fig.axes[1].lines[1].get_ydata(), ((mus ** 2 - 1) ** 2).numpy())


def _styles(ax):
    return [(line.get_linestyle(), line.get_marker()) for line in ax.lines]


def test_forward_vs_reverse_kl_tells_four_fits_apart_without_colour_and_names_coinciding_ones():
    x = torch.linspace(-3, 3, 13)
    p = torch.softmax(-x ** 2, 0)
    wide = torch.softmax(-x ** 2 / 9, 0)
    fits = {"forward from 0.5: μ = 0": wide, "forward from 2: μ = 0": wide + 1e-6,
            "reverse from 0.5: μ = 0": p, "reverse from 2: μ = 2": torch.roll(p, 3)}
    fig = lesson02.forward_vs_reverse_kl(x, p, fits, mus=torch.linspace(-2, 2, 5),
                                      landscapes={"forward": torch.zeros(5), "reverse": torch.ones(5)})
    assert_labelled(fig)
    fit_lines, landscape_lines = fig.axes[0].lines, fig.axes[1].lines
    assert len(set(_styles(fig.axes[0]))) == 4, "four fits need four line styles / markers, not colours only"
    assert len(set(_styles(fig.axes[1]))) == 2
    assert [line.get_label() for line in fit_lines] == [
        "forward from 0.5: μ = 0", "forward from 2: μ = 0 (coincides with forward from 0.5)",
        "reverse from 0.5: μ = 0", "reverse from 2: μ = 2"]
    # the later of two coinciding lines is drawn on top, thinner, so the earlier one shows around it
    assert fit_lines[1].get_zorder() > fit_lines[0].get_zorder()
    assert fit_lines[1].get_linewidth() < fit_lines[0].get_linewidth()
    np.testing.assert_allclose(fit_lines[3].get_ydata(), torch.roll(p, 3).numpy())
    assert len(landscape_lines) == 2


def test_series_style_gives_twelve_series_distinct_styles_and_refuses_a_negative_index():
    from kdtutor.figures.common import series_style

    styles = [(s["ls"], s["marker"]) for s in map(series_style, range(12))]
    assert len(set(styles)) == 12
    assert series_style(0)["color"] == "C0"
    with pytest.raises(ValueError, match="≥ 0"):
        series_style(-1)


def test_gradient_norm_vs_temperature():
    fig = lesson02.gradient_norm_vs_temperature([1, 2, 4], {"with T²": [1, 1, 1], "without": [1, 0.25, 1 / 16]})
    assert_labelled(fig)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [1, 0.25, 1 / 16])
    assert len(set(_styles(ax))) == 2


def test_kd_over_mse_vs_temperature():
    fig = lesson02.kd_over_mse_vs_temperature([1, 10, 100], {"zero-mean": [0.5, 0.9, 0.99]})
    assert_labelled(fig)
    assert math.isclose(fig.axes[0].lines[-1].get_ydata()[0], 1.0)  # the reference line
