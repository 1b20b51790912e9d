"""Lesson 07's figures: each returns a figure, every axis labelled, every figure titled."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from kdtutor.figures import lesson07
from plotting import assert_labelled  # noqa: E402

TEXT = "stand-in text (generated, NOT Shakespeare)"


def check(fig):
    titles = [fig._suptitle.get_text() if fig._suptitle is not None else ""] + [a.get_title() for a in fig.axes]
    assert any(TEXT in t for t in titles), titles
    assert_labelled(fig)
    plt.close(fig)


def test_training_losses_one_panel_per_run():
    hist = {f"run {i}": [{"step": s + 1, "loss": 3.0 / (s + 1)} for s in range(30)] for i in range(5)}
    fig = lesson07.training_losses(hist, f"losses on {TEXT}")
    assert len(fig.axes) == 5
    check(fig)


def test_method_comparison():
    row = {"bpc": 2.5, "entropy": 2.4, "known_words": 0.7, "distinct_1": 0.5}
    results = {"teacher": row, "scratch": {**row, "kl_teacher_student": 0.3, "kl_student_teacher": 0.2}}
    fig = lesson07.method_comparison(results, f"students on {TEXT}", {"known_words": 0.95, "distinct_1": 0.6})
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["teacher", "scratch"]
    assert [line.get_xdata()[0] for line in fig.axes[3].lines] == [0.95, 0.6]  # the held-out text's own values
    check(fig)
    fig = lesson07.method_comparison(results, f"students on {TEXT}", {"known_words": math.nan})
    assert not fig.axes[3].lines
    check(fig)


def test_topk_tradeoff():
    ks = [1, 2, 4, 8]
    fig = lesson07.topk_tradeoff(ks, [9 * k / 2 for k in ks], 260.0,
                                 {"bucket": [0.1, 0.2, 0.3, 0.35], "renormalised": [1.0, 0.8, 0.5, 0.4]}, 0.36,
                                 f"top-k on {TEXT}")
    check(fig)


def test_next_char_distributions():
    chars = list("abcdef ")
    probs = {"teacher": torch.softmax(torch.arange(7.0), 0), "student": torch.full((7,), 1 / 7)}
    fig = lesson07.next_char_distributions(chars, probs, "to be or not to", f"after a context, {TEXT}", top=5)
    assert len(fig.axes[0].get_xticklabels()) == 5 and "␣" in [t.get_text() for t in fig.axes[0].get_xticklabels()]
    check(fig)
    with pytest.raises(ValueError, match="one per character"):
        lesson07.next_char_distributions(chars, {}, "x", "t")
    with pytest.raises(ValueError, match="one per character"):
        lesson07.next_char_distributions(chars, {"teacher": torch.ones(3) / 3}, "x", "t")


def test_method_comparison_legends_cover_no_bar_and_stay_in_the_figure():
    row = {"bpc": 2.5, "entropy": 2.4, "known_words": 0.95, "distinct_1": 0.9, "teacher_bpc_on_samples": 3.0,
           "kl_teacher_student": 0.3, "kl_student_teacher": 0.35}
    results = {name: row for name in ["teacher", "scratch", "forward KL", "reverse KL", "JSD", "seq-KD", "on-policy"]}
    fig = lesson07.method_comparison(results, f"students on {TEXT}", {"known_words": 0.97, "distinct_1": 0.6})
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    whole = fig.bbox
    legends = [ax for ax in fig.axes if ax.get_legend() is not None]
    assert len(legends) == 3
    for ax in legends:
        box = ax.get_legend().get_window_extent(renderer)
        assert not any(box.overlaps(bar.get_window_extent(renderer)) for bar in ax.patches), ax.get_title()
        assert box.y1 < ax.get_window_extent(renderer).y0 and whole.contains(box.x0, box.y0) and whole.contains(box.x1, box.y1)
    plt.close(fig)
