"""Lesson 05 exercise checks: the reference answers pass, stubs are "not attempted",
typical wrong answers fail with a specific message."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from kdtutor import checks
from kdtutor.images import metrics
from kdtutor.images.stats import t_quantile_975
from solutions import lesson05 as solutions

EXERCISES = ["expected_calibration_error", "top1_agreement", "macro_f1", "summarize_seeds"]


def run(name, fn):
    return getattr(checks, name)(fn, verbose=False)


def test_fallbacks_are_kdtutors_references():
    def stub(*args, **kwargs):
        raise NotImplementedError

    # wrapped (see checks.core._fallback), so that checks.require can tell them from an answer
    assert run("expected_calibration_error", stub).fn.__wrapped__ is metrics.expected_calibration_error
    assert run("top1_agreement", stub).fn.__wrapped__ is metrics.top1_agreement
    assert run("macro_f1", stub).fn.__wrapped__ is metrics.macro_f1


def expect_failure(name, fn, *phrases):
    result = run(name, fn)
    assert result.passed is False, f"a wrong answer passed: {result.message}"
    assert "Hint:" in result.message and result.fn is not fn
    for phrase in phrases:
        assert phrase in result.message, result.message
    return result


# --------------------------------------------------------------------------- ECE
def _binned(logits, labels, n_bins, confidence_of, weighted=True, skip_empty=True, clamp=True):
    """A configurable (mostly wrong) ECE for the tests below."""
    probs = torch.softmax(logits, dim=1)
    conf = confidence_of(probs, labels)
    correct = (probs.argmax(1) == labels).float()
    idx = torch.ceil(conf * n_bins).long() - 1
    if clamp:
        idx = idx.clamp(0, n_bins - 1)
    terms, weights = [], []
    for b in range(n_bins):
        sel = idx == b
        if skip_empty and not sel.any():
            continue
        terms.append(abs(correct[sel].mean().item() - conf[sel].mean().item()))
        weights.append(sel.sum().item() / len(labels))
    if weighted:
        return sum(w * t for w, t in zip(weights, terms))
    return sum(terms) / len(terms)


def max_prob(probs, labels):
    return probs.max(1).values


def test_ece_unweighted_bins_fail():
    expect_failure("expected_calibration_error",
                   lambda z, y, n_bins=15: _binned(z, y, n_bins, max_prob, weighted=False), "without weighting")


def test_ece_with_true_class_probability_fails():
    expect_failure("expected_calibration_error",
                   lambda z, y, n_bins=15: _binned(z, y, n_bins, lambda p, y: p.gather(1, y[:, None]).squeeze(1)),
                   "*true* class")


def test_ece_dropping_confidence_one_fails():
    # floor(conf · n_bins) puts 1.0 in bin n_bins, which a loop over range(n_bins) never visits
    def floor_bins(z, y, n_bins=15):
        probs = torch.softmax(z, 1)
        conf, pred = probs.max(1)
        correct = (pred == y).float()
        idx = (conf * n_bins).long()
        return sum((idx == b).sum().item() / len(y) * abs(correct[idx == b].mean().item() - conf[idx == b].mean().item())
                   for b in range(n_bins) if (idx == b).any())

    result = expect_failure("expected_calibration_error", floor_bins)
    assert "confidence exactly 1.0" in result.message and "falls out of the last bin" in result.message
    assert "*true* class" not in result.message  # issue 35: the cause named was the wrong one


def test_ece_with_nan_for_empty_bins_fails():
    expect_failure("expected_calibration_error",
                   lambda z, y, n_bins=15: _binned(z, y, n_bins, max_prob, skip_empty=False), "NaN")


def test_ece_in_percent_and_ignoring_n_bins_fail():
    expect_failure("expected_calibration_error",
                   lambda z, y, n_bins=15: 100 * solutions.expected_calibration_error(z, y, n_bins), "percentage")
    expect_failure("expected_calibration_error",
                   lambda z, y, n_bins=15: solutions.expected_calibration_error(z, y, 15), "n_bins=10")


# --------------------------------------------------------------------------- agreement
LABELS = torch.randint(0, 10, (200,), generator=torch.Generator().manual_seed(0))


def test_agreement_with_labels_instead_of_teacher_fails():
    # a learner's notebook has `labels` lying around and compares with it
    expect_failure("top1_agreement", lambda s, t: (s.argmax(1) == LABELS[: len(s)]).float().mean().item())


def test_agreement_over_the_wrong_dimension_fails():
    expect_failure("top1_agreement", lambda s, t: (s.argmax(0) == t.argmax(0)).float().mean().item(), "dim=0")


def test_agreement_as_a_count_or_from_equal_probabilities_fails():
    expect_failure("top1_agreement", lambda s, t: (s.argmax(1) == t.argmax(1)).sum().item(), "count")
    expect_failure("top1_agreement",
                   lambda s, t: torch.isclose(torch.softmax(s, 1), torch.softmax(t, 1)).all(1).float().mean().item(),
                   "instead of the predicted classes")


# --------------------------------------------------------------------------- macro-F1
def test_macro_f1_as_accuracy_fails():
    expect_failure("macro_f1", lambda z, y: (z.argmax(1) == y).float().mean().item(), "micro-F1")


def test_support_weighted_f1_fails():
    def weighted(z, y):
        pred, C = z.argmax(1), z.shape[1]
        total = 0.0
        for c in range(C):
            tp = ((pred == c) & (y == c)).sum().item()
            den = (pred == c).sum().item() + (y == c).sum().item()
            total += (y == c).sum().item() * (2 * tp / den if den else 0.0)
        return total / len(y)

    expect_failure("macro_f1", weighted, "weight each class")


def test_f1_of_mean_precision_and_recall_fails():
    def f1_of_means(z, y):
        pred, C = z.argmax(1), z.shape[1]
        p = [((pred == c) & (y == c)).sum().item() / max((pred == c).sum().item(), 1) for c in range(C)]
        r = [((pred == c) & (y == c)).sum().item() / max((y == c).sum().item(), 1) for c in range(C)]
        P, R = sum(p) / C, sum(r) / C
        return 2 * P * R / (P + R)

    expect_failure("macro_f1", f1_of_means, "mean precision and mean recall")


def test_macro_f1_with_nan_for_never_predicted_classes_fails():
    def nan_f1(z, y):
        pred, C = z.argmax(1), z.shape[1]
        scores = []
        for c in range(C):
            tp = ((pred == c) & (y == c)).sum().item()
            precision = tp / (pred == c).sum().item() if (pred == c).any() else math.nan
            recall = tp / (y == c).sum().item()
            scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
        return sum(scores) / C

    expect_failure("macro_f1", nan_f1, "NaN")


# --------------------------------------------------------------------------- seeds
def _seeds(values, ddof=1, quantile=None, standard_error=True):
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - ddof))
    q = quantile(n) if quantile else t_quantile_975(n - 1)
    half = q * (std / math.sqrt(n) if standard_error else std)
    return mean, std, mean - half, mean + half


def test_population_std_fails():
    expect_failure("summarize_seeds", lambda v: _seeds(v, ddof=0), "n − 1")


def test_normal_quantile_instead_of_t_fails():
    expect_failure("summarize_seeds", lambda v: _seeds(v, quantile=lambda n: 1.96), "1.96")


def test_interval_without_sqrt_n_fails():
    expect_failure("summarize_seeds", lambda v: _seeds(v, standard_error=False), "std/√n")


def test_n_degrees_of_freedom_fails():
    expect_failure("summarize_seeds", lambda v: _seeds(v, quantile=lambda n: t_quantile_975(n)), "n degrees")


def test_seeds_returning_only_mean_and_interval_fails():
    expect_failure("summarize_seeds", lambda v: _seeds(v)[::2], "4 numbers")


# --------------------------------------------------------------------------- issue 35: each answer and its message
def _ece_lower_closed_bins(z, y, n_bins=15):
    """Bins [lo, hi): a confidence of exactly 1.0 lies in none of them."""
    conf, pred = torch.softmax(z, 1).max(1)
    correct = (pred == y).float()
    ece = 0.0
    for b in range(n_bins):
        sel = (conf >= b / n_bins) & (conf < (b + 1) / n_bins)
        if sel.any():
            ece += sel.sum().item() / len(y) * abs(correct[sel].mean().item() - conf[sel].mean().item())
    return ece


def _f1_over_present_classes(z, y):
    """scikit-learn's default macro average (and torchmetrics'): the classes found in labels or predictions."""
    from sklearn.metrics import f1_score

    return f1_score(y, z.argmax(1), average="macro", zero_division=0)


def _as_tensor(f):
    return lambda *args, **kwargs: torch.tensor(f(*args, **kwargs))


# wrong answers: (exercise, answer, fragments its failure message must hold)
WRONG = {
    "ECE with [lo, hi) bins": ("expected_calibration_error", _ece_lower_closed_bins,
                               ["[lower, upper)", "falls out of the last bin"]),
    "ECE as a 0-d tensor": ("expected_calibration_error", _as_tensor(solutions.expected_calibration_error),
                            ["got a 0-d tensor", "Python float", "float(...) or .item()"]),
    "agreement as a 0-d tensor": ("top1_agreement", lambda s, t: (s.argmax(1) == t.argmax(1)).float().mean(),
                                  ["got a 0-d tensor"]),
    "macro-F1 over the classes present only": ("macro_f1", _f1_over_present_classes,
                                              ["classes that occur", "all C", "labels=range(C)"]),
    "macro-F1 as a 0-d tensor": ("macro_f1", _as_tensor(solutions.macro_f1), ["got a 0-d tensor"]),
    "seeds as 0-d tensors": ("summarize_seeds", lambda v: tuple(torch.tensor(x) for x in solutions.summarize_seeds(v)),
                             ["mean: got a 0-d tensor"]),
}
RIGHT = {
    "agreement via topk (another class among ties)":
        ("top1_agreement", lambda s, t: (s.topk(1, dim=1).indices == t.topk(1, dim=1).indices).float().mean().item()),
    "agreement breaking ties towards the last class": ("top1_agreement", lambda s, t: (
        (s.shape[1] - 1 - s.flip(1).argmax(1)) == (t.shape[1] - 1 - t.flip(1).argmax(1))).float().mean().item()),
    "ECE as a numpy float32": ("expected_calibration_error",
                               lambda z, y, n_bins=15: np.float32(solutions.expected_calibration_error(z, y, n_bins))),
    "macro-F1 by scikit-learn over all C classes": (
        "macro_f1", lambda z, y: f1_score(y, z.argmax(1), labels=list(range(z.shape[1])), average="macro",
                                          zero_division=0)),
    "seeds as numpy float64": ("summarize_seeds", lambda v: tuple(np.float64(x) for x in solutions.summarize_seeds(v))),
}


@pytest.mark.parametrize("name", WRONG)
def test_issue35_wrong_answer_fails_naming_its_mistake(name):
    exercise, answer, fragments = WRONG[name]
    expect_failure(exercise, answer, *fragments)


@pytest.mark.parametrize("name", RIGHT)
def test_issue35_right_answer_passes(name):
    exercise, answer = RIGHT[name]
    result = run(exercise, answer)
    assert result.passed is True, result.message


def test_an_agreement_wrong_on_untied_rows_still_fails_the_tie_case():
    from kdtutor.checks.lesson05 import _l05_agreement_cases

    what, s, t = _l05_agreement_cases()[-1]
    assert "ties" in what

    def wrong_only_there(s_, t_):  # right everywhere but on the tie case, where it says 0 (a forced row agrees)
        return 0.0 if torch.equal(t_, t) else solutions.top1_agreement(s_, t_)

    expect_failure("top1_agreement", wrong_only_there, "any tied class")
