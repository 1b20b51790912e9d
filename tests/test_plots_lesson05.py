"""Lesson 05 figures: each returns a figure, every axis labelled, every figure titled,
the data set name in the title."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from kdtutor.figures import lesson05
from kdtutor.images import evaluate as ev
from kdtutor.images.loader import DeviceLoader
from kdtutor.images.models import build_model
from kdtutor.images.splits import Split
from plotting import assert_labelled  # noqa: E402

DATASET = "toy digits (random, NOT CIFAR-10)"
CLASSES = [f"class {i}" for i in range(10)]


def check_figure(fig):
    assert isinstance(fig, matplotlib.figure.Figure)
    suptitle = fig._suptitle.get_text() if fig._suptitle is not None else ""
    titles = [suptitle] + [ax.get_title() for ax in fig.axes]
    assert any(DATASET in t for t in titles), titles
    assert_labelled(fig)
    plt.close(fig)


@pytest.fixture(scope="module")
def card():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 241, (200, 1, 8, 8), dtype=torch.uint8, generator=g)
    loader = DeviceLoader(Split(images, torch.arange(200) % 10), 100, mean=(0.4,), std=(0.3,))
    torch.manual_seed(0)
    models = {"teacher": build_model("mlp_large", 10, 1, 8), "student": build_model("mlp_small", 10, 1, 8)}
    return ev.report_card(models, loader, "teacher", DATASET, batch_sizes=(1, 8), warmup=0, repeats=1)


def test_reliability_diagram_one_and_several(card):
    check_figure(lesson05.reliability_diagram(card["student"].reliability, DATASET, "student"))
    fig = lesson05.reliability_diagram({n: r.reliability for n, r in card.items()}, DATASET)
    assert len(fig.axes) == 2 and "ECE" in fig.axes[0].get_title()
    assert any("ECE" in t.get_text() for t in fig.axes[0].get_legend().get_texts())
    check_figure(fig)


@pytest.mark.parametrize("normalize", [True, False])
def test_confusion_matrix(card, normalize):
    fig = lesson05.confusion_heatmap(card["student"].confusion, CLASSES, DATASET, "student", normalize=normalize)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == CLASSES
    check_figure(fig)
    with pytest.raises(ValueError, match="10 class names"):
        lesson05.confusion_heatmap(torch.zeros(3, 3), CLASSES, DATASET)


def test_accuracy_vs_cost(card):
    check_figure(lesson05.accuracy_vs_cost(card, DATASET))
    check_figure(lesson05.accuracy_vs_cost(card, batch_size=1))  # data set name taken from the card
    with pytest.raises(ValueError, match="batch sizes"):
        lesson05.accuracy_vs_cost(card, DATASET, batch_size=256)


def test_accuracy_vs_cost_without_latency(card):
    rows = {n: ev.ReportRow(**{**r.__dict__, "latency_ms": {}, "speedup": {}}) for n, r in card.items()}
    check_figure(lesson05.accuracy_vs_cost(rows, DATASET))


def test_per_class_accuracy(card):
    accs = {n: r.per_class["recall"] for n, r in card.items()}
    check_figure(lesson05.per_class_accuracy_bars(accs, CLASSES, DATASET))
    with pytest.raises(ValueError, match="class names"):
        lesson05.per_class_accuracy_bars(accs, CLASSES[:3], DATASET)


def test_every_lesson05_plot_closes_its_figures(card):
    before = len(plt.get_fignums())
    check_figure(lesson05.per_class_accuracy_bars({"a": torch.rand(10)}, CLASSES, DATASET))
    assert len(plt.get_fignums()) == before


def test_soft_targets_vs_temperature_is_labelled_and_draws_each_teacher():
    from kdtutor.images.metrics import soft_targets

    z, y = torch.randn(50, 10) * 3, torch.randint(0, 10, (50,))
    summaries = {name: {T: soft_targets(z * k, y, T) for T in (1.0, 2.0, 4.0)} for name, k in (("sharp", 2.0), ("flat", 0.5))}
    fig = lesson05.soft_targets_vs_temperature(summaries, "t")
    assert_labelled(fig)
    assert len(fig.axes[0].lines) == 2 and len(fig.axes[1].lines) == 4
    plt.close(fig)
