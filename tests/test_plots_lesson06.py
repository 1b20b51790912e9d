"""Lesson 06's figures are titled and labelled."""

import matplotlib
import torch

from kdtutor.figures import lesson06
from kdtutor.images.history import History
from tests.plotting import assert_labelled

matplotlib.use("Agg")


def test_lesson06_figures_are_labelled():
    assert_labelled(lesson06.dkd_weights(torch.rand(50), 8.0, 4.0, "stand-in"))
    assert_labelled(lesson06.standardization_effect({"sure": torch.arange(10.0) * 2, "unsure": torch.arange(10.0) * 0.1},
                                                         2.0, [str(i) for i in range(10)]))
    h = History([{"epoch": 1, "val_acc": 0.5, "test_acc": 0.4}, {"epoch": 2, "val_acc": 0.6, "test_acc": 0.5}])
    assert_labelled(lesson06.accuracy_per_epoch({"a": h, "b": h}, "curves"))
    g = {"DKD": {"honest": -0.2, "best_epoch_on_test": 0.3, "best_of_seeds": 0.5, "unequal_tuning": 1.0}}
    assert_labelled(lesson06.reported_vs_honest(g, "gains"))
    assert_labelled(lesson06.feature_maps(torch.rand(3, 32, 32), torch.rand(64, 7, 7), "hint layer"))
