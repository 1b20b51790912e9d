"""Checks for lesson 06 (``06_beyond_logits``): DKD's non-target term, the standardisation axis, paired gains.

    nckd_per_example   KL between the teacher's and the student's distributions over the non-target classes
    standardize        z-score logits over the class axis
    paired_gain        mean and std of the per-seed differences method − KD
"""

from __future__ import annotations

import statistics
from typing import Callable

import torch
import torch.nn.functional as F

from kdtutor.checks.core import (CheckResult, Failed, as_number, expect_close_or_explain, expect_tensor_close,
                                 register, run_check)
from kdtutor.kd.beyond import standardize_logits, tckd_nckd

register("nckd_per_example",
         nudge="NCKD compares distributions over the C − 1 *non-target* classes: remove the true class (given by "
               "the labels, not by the teacher's argmax) *before* the softmax, so the others sum to 1 — e.g. set "
               "its logit to −inf — for teacher and student alike; then KL per example, summed over classes.",
         answer="mask = F.one_hot(labels, C).bool(); ls = F.log_softmax((s / T).masked_fill(mask, -inf), 1); "
                "lt = F.log_softmax((z / T).masked_fill(mask, -inf), 1); "
                "return (lt.exp() * (lt - ls)).masked_fill(mask, 0).sum(1)")
register("standardize",
         nudge="each example's logits get their own mean and standard deviation, taken over the classes "
               "(dim=1, keepdim=True) — not over the batch; torch.std's default (Bessel's correction) is the "
               "reference code's.",
         answer="return (z - z.mean(dim=1, keepdim=True)) / (z.std(dim=1, keepdim=True) + 1e-7)")
register("paired_gain",
         nudge="pair the runs by seed: subtract KD's accuracy from the method's *for each seed*, then take the mean "
               "and the sample standard deviation (statistics.stdev) of those differences.",
         answer="d = [m - k for m, k in zip(method_accs, kd_accs)]; return statistics.mean(d), statistics.stdev(d)")


def _nckd_reference(student_logits, teacher_logits, labels, T):
    return tckd_nckd(student_logits, teacher_logits, labels, T)[1]


def _case(seed, n=6, c=10, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    s = scale * torch.randn(n, c, generator=g, dtype=torch.float64)
    z = scale * torch.randn(n, c, generator=g, dtype=torch.float64)
    y = torch.randint(0, c, (n,), generator=g)
    z[0, (y[0] + 1) % c] += 10.0  # on example 0 the teacher's argmax is not the label
    return s, z, y


def _nckd_mistakes(s, z, y, T):
    mask = F.one_hot(y, s.shape[1]).bool()
    p, logq = F.softmax(z / T, 1), F.log_softmax(s / T, 1)
    unmasked = (p * (p.log() - logq)).masked_fill(mask, 0).sum(1)
    arg = F.one_hot(z.argmax(1), s.shape[1]).bool()
    lt = F.log_softmax((z / T).masked_fill(arg, float("-inf")), 1)
    ls = F.log_softmax((s / T).masked_fill(arg, float("-inf")), 1)
    by_argmax = (lt.exp() * (lt - ls)).masked_fill(arg, 0).sum(1)
    ref = _nckd_reference(s, z, y, T)
    weighted = (1 - p.gather(1, y[:, None]).squeeze(1)) * ref
    return [(unmasked, "You took the softmax over all classes and dropped the target afterwards: the non-target "
                       "probabilities must be renormalised (softmax *after* removing the target)."),
            (by_argmax, "You removed the teacher's top class; the target is the true label."),
            (weighted, "You multiplied by (1 − p_t): that weight is what DKD replaces by β; return NCKD alone."),
            (T * T * ref, "Leave out the T² factor here: dkd_loss applies it.")]


def nckd_per_example(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise: ``fn(student_logits (N, C), teacher_logits (N, C), labels (N,), T) -> (N,)`` NCKD per example."""

    def test(f):
        for seed, T in [(0, 1.0), (1, 4.0), (2, 2.0)]:
            s, z, y = _case(seed)
            want = _nckd_reference(s, z, y, T)
            expect_close_or_explain(f(s.clone(), z.clone(), y.clone(), T), want, f"T = {T}",
                                    mistakes=_nckd_mistakes(s, z, y, T))
            sg = s.clone().requires_grad_(True)
            got = f(sg, z, y, T)
            if not isinstance(got, torch.Tensor) or not got.requires_grad:
                raise Failed("your result is not connected to student_logits: backward() could not train the student")
            (g_got,) = torch.autograd.grad(got.sum(), sg)
            sr = s.clone().requires_grad_(True)
            (g_want,) = torch.autograd.grad(_nckd_reference(sr, z, y, T).sum(), sr)
            expect_tensor_close(g_got, g_want, f"T = {T}, gradient with respect to student_logits", atol=1e-6)

    return run_check("nckd_per_example", fn, _nckd_reference, test, verbose=verbose, answer_key=(tckd_nckd,))


def _standardize_reference(logits):
    return standardize_logits(logits)


def standardize(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise: ``fn(logits (N, C)) -> (N, C)``, each row z-scored over the classes."""

    def test(f):
        for seed, n, c in [(0, 5, 10), (1, 10, 5), (2, 3, 100)]:
            z = torch.randn(n, c, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 4 + 2
            want = _standardize_reference(z)
            mistakes = [((z - z.mean(0, keepdim=True)) / z.std(0, keepdim=True),
                         "You standardised over the batch (dim=0); standardise each example over its classes."),
                        (z / z.std(1, keepdim=True), "Subtract each row's mean too."),
                        ((z - z.mean(1, keepdim=True)) / z.var(1, keepdim=True), "Divide by the standard deviation, "
                                                                                  "not the variance."),
                        ((z - z.mean(1, keepdim=True)) / z.std(1, unbiased=False, keepdim=True),
                         "Use torch.std's default (with Bessel's correction), as the reference code does.")]
            expect_close_or_explain(f(z.clone()), want, f"{n}×{c} logits", mistakes=mistakes, atol=1e-6)

    return run_check("standardize", fn, _standardize_reference, test, verbose=verbose,
                     answer_key=(standardize_logits,))


def _paired_gain_reference(method_accs, kd_accs):
    d = [m - k for m, k in zip(method_accs, kd_accs)]
    return statistics.mean(d), statistics.stdev(d)


def paired_gain(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise: ``fn(method_accs, kd_accs) -> (mean, std)`` of the per-seed differences (lists in seed order)."""

    def test(f):
        for method, kd in [([0.70, 0.66, 0.69], [0.68, 0.65, 0.66]), ([0.61, 0.64, 0.60, 0.62], [0.62, 0.61, 0.60, 0.65])]:
            want = _paired_gain_reference(method, kd)
            got = f(list(method), list(kd))
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                raise Failed(f"return a pair (mean, std), got {got!r}")
            mean, sd = as_number(got[0], "mean"), as_number(got[1], "std")
            if abs(mean + want[0]) < 1e-9 and abs(want[0]) > 1e-9:
                raise Failed(f"mean {mean:.4f} has the wrong sign: subtract KD from the method (method − KD)")
            if abs(mean - want[0]) > 1e-9:
                raise Failed(f"mean {mean:.4f}, expected {want[0]:.4f}")
            unpaired = (statistics.variance(method) + statistics.variance(kd)) ** 0.5
            if abs(sd - unpaired) < 1e-9:
                raise Failed("that std treats the two lists as unpaired; take the std of the per-seed differences")
            pstdev = statistics.pstdev([m - k for m, k in zip(method, kd)])
            if abs(sd - pstdev) < 1e-9:
                raise Failed("use the sample standard deviation (statistics.stdev), not the population one")
            if abs(sd - want[1]) > 1e-9:
                raise Failed(f"std {sd:.4f}, expected {want[1]:.4f} (the sample std of the paired differences)")

    return run_check("paired_gain", fn, _paired_gain_reference, test, verbose=verbose)
