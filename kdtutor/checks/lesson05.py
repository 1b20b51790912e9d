"""Checks for lesson 05 (``05_evaluating_distillation``): ECE, agreement, macro-F1, spread over seeds."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from kdtutor.checks.core import CheckResult, Failed, python_number, register, run_check
from kdtutor.images import metrics

register("expected_calibration_error",
         nudge="ECE weights each bin's |accuracy − mean confidence| by its share of the examples; confidence is "
               "the largest probability, bins are (lower, upper], and 1.0 belongs in the last bin.",
         answer="confidence = the largest softmax probability of each row; put it in bin "
                "ceil(conf·n_bins) − 1 so that 1.0 lands in the last bin (bins are (lower, upper]); "
                "ECE = Σ over non-empty bins of (n_b / N)·|accuracy_b − mean confidence_b|.")
register("top1_agreement",
         nudge="agreement compares the student's predicted class with the teacher's, example by example; the "
               "labels play no part.",
         answer="agreement = mean over examples of [argmax_c student[i, c] == argmax_c teacher[i, c]]; "
                "labels play no part — compare the student with the teacher, not with the truth.")
register("macro_f1",
         nudge="compute an F1 score for each class from its TP, FP and FN, then the plain mean over all C classes, "
               "including classes that are never predicted or absent altogether.",
         answer="for each class c: TP = predicted c and truly c, FP = predicted c but not c, "
                "FN = truly c but predicted otherwise; F1_c = 2·TP / (2·TP + FP + FN) (0 when that "
                "denominator is 0); macro-F1 = the plain mean of F1_c over all C = logits.shape[1] classes.")
register("summarize_seeds",
         nudge="the sample standard deviation (n − 1), and Student's t with n − 1 degrees of freedom for the "
               "interval of the mean.",
         answer="std = sqrt(Σ (x − mean)² / (n − 1)); the 95 % interval is mean ± t·std/√n with "
                "t = kdtutor.images.stats.t_quantile_975(n − 1).")


def _l05_expect(got, want: float, what: str, mistakes, abs_: float = 1e-5) -> None:
    """Fail unless ``got`` ≈ ``want``; if it matches a known wrong answer instead, say which.

    ``mistakes``: ``{explanation: the value that mistake would give}``, or a function
    returning that dict (called only when ``got`` is wrong).
    """
    got = python_number(got, what)
    if math.isclose(got, want, rel_tol=1e-4, abs_tol=abs_):
        return
    if math.isnan(got):
        raise Failed(f"{what}: got NaN, expected {want:.6g} — is something divided by zero "
                     "(an empty bin, a class that is never predicted)?")
    if callable(mistakes):
        mistakes = mistakes()
    for explanation, value in mistakes.items():
        if value is not None and math.isfinite(value) and not math.isclose(value, want, rel_tol=1e-4, abs_tol=abs_) \
                and math.isclose(got, value, rel_tol=1e-4, abs_tol=abs_):
            raise Failed(f"{what}: got {got:.6g}, expected {want:.6g} — that is what you get if you {explanation}")
    raise Failed(f"{what}: got {got:.6g}, expected {want:.6g}")


def _l05_calibration_cases():
    """``(description, logits, labels, n_bins)`` for the ECE check."""
    g = torch.Generator().manual_seed(505)
    z = 3 * torch.randn(600, 10, generator=g)
    # over-confident where it is sure (labels drawn from a softer distribution), under-confident
    # where it is not (labels drawn from a sharper one): the gaps have both signs, so binning matters
    sure_rows = torch.softmax(z, dim=1).amax(dim=1, keepdim=True) > 0.6
    y = torch.multinomial(torch.softmax(torch.where(sure_rows, z / 2, 2 * z), dim=1), 1, generator=g).squeeze(1)
    sure = torch.zeros(8, 4)
    sure[torch.arange(8), torch.arange(8) % 4] = 100.0  # confidence exactly 1.0
    sure_y = torch.tensor([0, 1, 2, 3, 1, 2, 3, 0])  # the first four right, the last four wrong
    few = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 4.0]])
    conf90 = torch.log(torch.tensor([[0.9, 0.05, 0.05]])).repeat(10, 1)
    # confidences 0.62 (right) and 0.68 (wrong): one bin of (0.6, 0.7] with 10 bins, two with 15
    pair = torch.log(torch.tensor([[0.62, 0.38], [0.68, 0.32]]))
    return [
        ("random logits, 600 examples, 10 classes", z, y, 15),
        ("the same logits with n_bins=10", z, y, 10),
        ("n_bins=10, confidences 0.62 (right) and 0.68 (wrong) in the same bin (ECE = 0.15)", pair,
         torch.tensor([0, 1]), 10),
        ("confidence exactly 1.0 (it belongs in the last bin, (14/15, 1])", sure, sure_y, 15),
        ("3 examples, so most bins are empty", few, torch.tensor([0, 2, 2]), 15),
        ("always 90 % sure, always right (ECE = 0.1)", conf90, torch.zeros(10, dtype=torch.long), 15),
    ]


def _l05_ece_mistakes(logits: torch.Tensor, labels: torch.Tensor, n_bins: int) -> dict:
    """What typical wrong ECE implementations return for this case."""
    from kdtutor.images.metrics import reliability_bins

    b = reliability_bins(logits, labels, n_bins)
    full = b.count > 0
    gaps = (b.accuracy[full] - b.confidence[full]).abs()
    probs = torch.softmax(logits.double(), dim=1)
    correct = (logits.argmax(dim=1) == labels).double()
    true_p = probs.gather(1, labels[:, None]).squeeze(1)
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    idx = torch.bucketize(true_p, edges[1:-1])
    wrong_conf = sum((idx == i).sum().item() / len(labels)
                     * abs(correct[idx == i].mean().item() - true_p[idx == i].mean().item())
                     for i in range(n_bins) if (idx == i).any())
    conf = probs.max(dim=1).values
    lower_closed = torch.floor(conf * n_bins).long()  # bins [lo, hi): 1.0 gets index n_bins, in no bin
    dropped_one = sum((lower_closed == i).sum().item() / len(labels)
                      * abs(correct[lower_closed == i].mean().item() - conf[lower_closed == i].mean().item())
                      for i in range(n_bins) if (lower_closed == i).any())
    return {
        "use bins [lower, upper): a confidence of exactly 1.0 then falls out of the last bin and is dropped; bins "
        "are (lower, upper], so 1.0 belongs in the last one (bin ceil(conf·n_bins) − 1)": dropped_one,
        "average the bins' gaps |acc − conf| without weighting each bin by its share n_b/N of the examples":
            gaps.mean().item(),
        "divide the sum of the bins' gaps by the number of bins (empty ones included)": gaps.sum().item() / n_bins,
        "take as confidence the probability of the *true* class instead of the largest probability": wrong_conf,
        "use a single bin: |overall accuracy − mean confidence|":
            abs(correct.mean().item() - probs.max(dim=1).values.mean().item()),
        "return a percentage (ECE is a fraction in [0, 1] here)": 100 * b.ece(),
    }


def expected_calibration_error(fn: Callable, verbose: bool = True) -> CheckResult:
    """Check ``fn(logits (N, C), labels (N,), n_bins=15) -> float``: the ECE with equal-width bins."""

    def test(f):
        for what, z, y, n_bins in _l05_calibration_cases():
            want = metrics.expected_calibration_error(z, y, n_bins)
            got = f(z.clone(), y.clone(), n_bins=n_bins)
            _l05_expect(got, want, what, lambda: _l05_ece_mistakes(z, y, n_bins))

    return run_check("expected_calibration_error", fn, metrics.expected_calibration_error, test, verbose=verbose,
                     answer_key=(metrics.reliability_bins,))


def _l05_agreement_cases():
    """``(description, student_logits, teacher_logits)`` for the agreement check."""
    g = torch.Generator().manual_seed(506)
    t = torch.randn(200, 10, generator=g)
    s = t + 1.2 * torch.randn(200, 10, generator=g)
    four_t = torch.eye(4) * 5
    four_s = torch.eye(4)[[0, 1, 3, 3]] * 5  # agrees on 3 of 4
    ties_t = torch.zeros(5, 5)  # rows 0–2 all tied: any class may count as the teacher's prediction
    ties_t[3, 3] = ties_t[4, 4] = 4.0
    ties_s = torch.tensor([[1.0, 0, 0, 0, 0], [0, 1.0, 0, 0, 0], [2.0, 2.0, 0, 0, 0],
                           [0, 0, 0, 4.0, 0], [1.0, 1.0, 0, 0, 0]])  # row 3 agrees, row 4 does not, whatever the ties
    return [
        ("a model against itself", t, t),
        ("student = teacher + a different constant per row (same softmax)", t + 10 * torch.randn(200, 1, generator=g), t),
        ("random student and teacher, 200 examples, 10 classes", s, t),
        ("4 examples, 3 agree", four_s, four_t),
        ("ties (any of the tied classes may count as a model's prediction)", ties_s, ties_t),
    ]


def _l05_agreement_range(s: torch.Tensor, t: torch.Tensor) -> tuple[float, float]:
    """The least and the largest top-1 agreement over every way of breaking ties (a row whose largest logit
    is shared by several classes may predict any of them: argmax takes the first, topk need not)."""
    top_s, top_t = s == s.amax(dim=1, keepdim=True), t == t.amax(dim=1, keepdim=True)
    can = (top_s & top_t).any(dim=1)
    must = can & (top_s.sum(dim=1) == 1) & (top_t.sum(dim=1) == 1)
    return must.double().mean().item(), can.double().mean().item()


def top1_agreement(fn: Callable, verbose: bool = True) -> CheckResult:
    """Check ``fn(student_logits (N, C), teacher_logits (N, C)) -> float``: fraction of equal argmaxes.
    Where a row has ties, any tied class may count as the prediction (``topk`` passes as well as ``argmax``)."""

    def test(f):
        for what, s, t in _l05_agreement_cases():
            want = metrics.top1_agreement(s, t)
            got = python_number(f(s.clone(), t.clone()), what)
            low, high = _l05_agreement_range(s, t)
            rows = got * len(s)
            if low < high and low - 1e-9 <= got <= high + 1e-9 and abs(rows - round(rows)) < 1e-6:
                continue  # ties: any tie-breaking rule gives a whole number of agreeing rows in [low, high]
            same = s.argmax(dim=1) == t.argmax(dim=1)
            mistakes = {
                "take the argmax over dim=0 (over examples) instead of dim=1 (over classes)":
                    (s.argmax(dim=0) == t.argmax(dim=0)).double().mean().item(),
                "count the agreeing examples instead of taking their fraction": float(same.sum()),
                "return the disagreement (1 − agreement)": 1 - want,
                "return a percentage (agreement is a fraction in [0, 1] here)": 100 * want,
                "compare the logits (or probabilities) themselves instead of the predicted classes":
                    torch.isclose(s, t).all(dim=1).double().mean().item(),
            }
            try:
                _l05_expect(got, want, what, mistakes, abs_=1e-9)
            except Failed as e:
                if low < high:
                    raise Failed(f"{e} (argmax's value; any tied class may count as a model's prediction, so any "
                                 f"whole number of rows from {low:.4g} to {high:.4g} of them passes)") from None
                raise

    return run_check("top1_agreement", fn, metrics.top1_agreement, test, verbose=verbose)


def _l05_f1_cases():
    """``(description, logits, labels)`` for the macro-F1 check."""
    g = torch.Generator().manual_seed(507)
    z = 2 * torch.randn(300, 6, generator=g)
    z[:, 4] -= 20  # class 4 is never predicted
    y = torch.randint(0, 6, (300,), generator=g)
    y[torch.rand(300, generator=g) < 0.4] = 0  # imbalanced: class 0 is common
    y[:5] = 4
    major = torch.tensor([[1.0, 0.0]]).repeat(100, 1)
    major_y = torch.tensor([0] * 90 + [1] * 10)
    perfect = torch.eye(3)[[0, 1, 2, 2, 1]] * 3
    absent = 3 * torch.eye(5)[[0, 0, 1, 1, 2, 2, 0, 1]]  # predicts 0, 1, 2 only
    absent_y = torch.tensor([0, 1, 1, 3, 2, 2, 0, 3])  # class 3 never predicted, class 4 nowhere at all
    return [
        ("random logits, 300 examples, 6 classes, class 4 never predicted", z, y),
        ("90 % class 0, always predicts class 0 (accuracy 0.9)", major, major_y),
        ("every prediction right", perfect, perfect.argmax(1)),
        ("5 classes: class 3 never predicted, class 4 in neither labels nor predictions (F1 = 0 for both)",
         absent, absent_y),
    ]


def _l05_f1_mistakes(z: torch.Tensor, y: torch.Tensor) -> dict:
    from kdtutor.images.metrics import precision_recall_f1, top1_accuracy

    prf = precision_recall_f1(z, y)
    p, r, f, n = prf["precision"], prf["recall"], prf["f1"], prf["support"].double()
    P, R = p.mean().item(), r.mean().item()
    predicted = torch.bincount(z.argmax(1), minlength=z.shape[1]) > 0
    occurring = predicted | (torch.bincount(y, minlength=z.shape[1]) > 0)
    return {
        "average over the classes that occur (in the labels or the predictions) only, as scikit-learn's f1_score "
        "and torchmetrics' macro average do: here macro-F1 is the mean over all C = logits.shape[1] classes, an "
        "absent class counting F1 = 0 (with scikit-learn: labels=range(C))": f[occurring].mean().item(),
        "compute micro-F1, which equals the accuracy (macro-F1 averages the per-class F1 scores)":
            top1_accuracy(z, y),
        "weight each class's F1 by its number of examples (that is 'weighted' F1)": (f * n).sum().item() / n.sum().item(),
        "take the F1 of the mean precision and mean recall (average the F1 scores instead)":
            2 * P * R / (P + R) if P + R else 0.0,
        "average the recalls (balanced accuracy), not the F1 scores": R,
        "average the precisions, not the F1 scores": P,
        "skip classes that are never predicted (they count, with F1 = 0)": f[predicted].mean().item(),
    }


def macro_f1(fn: Callable, verbose: bool = True) -> CheckResult:
    """Check ``fn(logits (N, C), labels (N,)) -> float``: the mean of the C per-class F1 scores."""

    def test(f):
        for what, z, y in _l05_f1_cases():
            want = metrics.macro_f1(z, y)
            got = f(z.clone(), y.clone())
            _l05_expect(got, want, what, lambda: _l05_f1_mistakes(z, y), abs_=1e-6)

    return run_check("macro_f1", fn, metrics.macro_f1, test, verbose=verbose,
                     answer_key=(metrics.precision_recall_f1,))


def _l05_summarize_seeds_tuple(values) -> tuple[float, float, float, float]:
    """kdtutor's answer to the exercise: ``(mean, std, low, high)``."""
    from kdtutor.images.stats import summarize_seeds as reference

    s = reference(values)
    return s.mean, s.std, s.low, s.high


def summarize_seeds(fn: Callable, verbose: bool = True) -> CheckResult:
    """Check ``fn(values: list[float]) -> (mean, std, low, high)``: sample std and the 95 % t-interval."""
    from kdtutor.images.stats import summarize_seeds as kdtutor_summarize_seeds
    from kdtutor.images.stats import t_quantile_975

    cases = [
        ("5 seeds", [0.912, 0.918, 0.905, 0.921, 0.915]),
        ("2 seeds (t with 1 degree of freedom is 12.7)", [0.80, 0.84]),
        ("12 seeds", [0.70 + 0.004 * ((7 * i) % 12) for i in range(12)]),
        ("3 equal values (no spread)", [0.5, 0.5, 0.5]),
    ]

    def test(f):
        for what, values in cases:
            want = _l05_summarize_seeds_tuple(values)
            got = f(list(values))
            try:
                got = tuple(got)
            except TypeError:
                raise Failed(f"{what}: expected a tuple (mean, std, low, high), got {type(got).__name__}") from None
            if len(got) != 4:
                raise Failed(f"{what}: expected 4 numbers (mean, std, low, high), got {len(got)}")
            n, mean = len(values), want[0]
            std0 = math.sqrt(sum((v - mean) ** 2 for v in values) / n)
            t, se = t_quantile_975(n - 1), want[1] / math.sqrt(n)
            _l05_expect(got[0], mean, f"{what}, mean", {}, abs_=1e-9)
            _l05_expect(got[1], want[1], f"{what}, std", {
                "divide by n instead of n − 1 (use the sample standard deviation, ddof = 1)": std0}, abs_=1e-9)
            mistakes = {
                "use the normal quantile 1.96 instead of Student's t with n − 1 degrees of freedom":
                    mean - 1.96 * se,
                "use std instead of the standard error std/√n": mean - t * want[1],
                "use n degrees of freedom instead of n − 1": mean - t_quantile_975(n) * se,
                "use the population std (ddof = 0) in the interval": mean - t * std0 / math.sqrt(n),
            }
            _l05_expect(got[2], want[2], f"{what}, low end of the interval", mistakes, abs_=1e-9)
            _l05_expect(got[3], want[3], f"{what}, high end of the interval",
                                {k: 2 * mean - v for k, v in mistakes.items()}, abs_=1e-9)

    return run_check("summarize_seeds", fn, _l05_summarize_seeds_tuple, test, verbose=verbose,
                     answer_key=(kdtutor_summarize_seeds,))
