"""Lesson 03/04 figures: every axis labelled, every figure titled."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from kdtutor.figures import lesson03, lesson04, lesson05
from kdtutor.images.distill import Sweep
from kdtutor.images.history import History
from plotting import assert_labelled  # noqa: E402


def _history(n=3):
    return History([{"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e, "train_acc": 0.5 + e / 10,
                     "val_acc": 0.45 + e / 10} for e in range(1, n + 1)])


CLASSES = [str(i) for i in range(4)]


def _few_labels():
    from kdtutor.images.few_labels import ARMS, Budget, FewLabels

    r = FewLabels([250, 1000], [1, 2], Budget())
    r.test = {(a, n): [0.4 + k / 10 + n / 1e4, 0.41 + k / 10 + n / 1e4] for k, a in enumerate(ARMS) for n in (250, 1000)}
    return r


@pytest.mark.parametrize("make", [
    lambda: lesson03.class_balance(torch.tensor([0, 1, 1, 3]), CLASSES, "t"),
    lambda: lesson03.augmentation_examples(torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8), "t"),
    lambda: lesson03.lr_schedule([0.2, 0.6, 1.0, 0.5], 0.1, "t", steps_per_epoch=2),
    lambda: lesson03.learning_curves({"a": _history(), "b": _history(2)}, "t"),
    lambda: lesson04.sweep_heatmap(Sweep([1.0, 4.0], [0.5, 0.9], [[0.5, 0.6], [0.7, 0.55]]), "t"),
    lambda: lesson04.seed_comparison({"scratch": [0.5, 0.52], "distilled": [0.55, 0.56]}, "t"),
    lambda: lesson04.accuracy_vs_labels(_few_labels(), "t", teacher_acc=0.8),
    lambda: lesson05.per_class_accuracy_bars({"a": torch.rand(4), "b": torch.rand(4)}, CLASSES, "d", highlight=2, title="t"),
], ids=["class_balance", "augmentation", "lr_schedule", "curves", "heatmap", "seeds", "accuracy_vs_labels", "per_class_highlight"])
def test_figures_are_labelled(make):
    fig = make()
    assert_labelled(fig)
    plt.close(fig)


def test_learning_curves_plot_only_the_validated_epochs():
    sparse = History([{k: v for k, v in e.items() if e["epoch"] % 2 == 0 or not k.startswith("val")}
                      for e in _history(5).epochs])
    fig = lesson03.learning_curves({"every 2nd epoch": sparse}, "t")
    assert_labelled(fig)
    val_line = [line for line in fig.axes[1].lines if line.get_label().endswith("(val)")][0]
    assert list(val_line.get_xdata()) == [2, 4] and val_line.get_marker() == "o"
    plt.close(fig)


def test_image_grid_labels_rows_with_class_names():
    fig = lesson03.image_grid(torch.randint(0, 255, (8, 3, 8, 8), dtype=torch.uint8), torch.arange(8) % 4, CLASSES, "t")
    try:
        assert fig._suptitle.get_text() == "t"
        assert [fig.axes[r * 8].get_ylabel() for r in range(4)] == CLASSES
    finally:
        plt.close(fig)



def test_seed_comparison_shows_each_seed_and_mean_plus_minus_std_without_bars():
    import numpy as np

    groups = {"scratch": [0.615, 0.62, 0.63], "distilled": [0.625, 0.635, 0.64]}
    fig = lesson04.seed_comparison(groups, "t")
    try:
        ax = fig.axes[0]
        assert not ax.patches  # no bars: no baseline to truncate
        for i, values in enumerate(groups.values()):
            v = 100 * np.array(values)
            dots = [line for line in ax.lines if line.get_marker() == "o" and line.get_color() == f"C{i}"]
            assert len(dots) == 1 and sorted(dots[0].get_ydata()) == pytest.approx(sorted(v))
            mean = [line for line in ax.lines if line.get_marker() == "D" and line.get_color() == f"C{i}"]
            assert list(mean[0].get_ydata()) == pytest.approx([v.mean()])
        bars = [c for c in ax.containers if hasattr(c, "has_yerr") and c.has_yerr]
        spans = [np.ptp(seg[:, 1]) for c in bars for seg in c.lines[2][0].get_segments()]
        assert spans == pytest.approx([2 * np.std(100 * np.array(v), ddof=1) for v in groups.values()])
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["one seed", "mean ± std"]
    finally:
        plt.close(fig)


def test_accuracy_vs_labels_draws_every_seed_and_each_arms_mean():
    fig = lesson04.accuracy_vs_labels(_few_labels(), "t", teacher_acc=0.8)
    ax = fig.axes[0]
    means = [line for line in ax.lines if line.get_marker() == "D"]
    assert len(means) == 3 and list(means[2].get_ydata()) == pytest.approx([63.0, 70.5])
    dots = [line for line in ax.lines if line.get_marker() == "o"]
    assert sum(len(d.get_ydata()) for d in dots) == 3 * 2 * 2 and ax.get_xscale() == "log"
    plt.close(fig)
