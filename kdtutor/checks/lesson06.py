"""Checks for lesson 06 (``06_beyond_logits``): DKD's non-target term, the standardisation axis, paired gains.

    nckd_per_example   KL between the teacher's and the student's distributions over the non-target classes
    standardize        z-score logits over the class axis
    paired_gain        mean and std of the per-seed differences method − KD

Each runs in float64 and float32 (compared with a float64 reference within the less precise
dtype's tolerance) and fails an answer that changes an argument in place. The first two are used
in losses: their results must carry the gradient to the logits and keep a NaN where the input has one.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import torch
import torch.nn.functional as F

from kdtutor.checks.core import (CheckResult, Failed, call_checked, dtype_name, expect_close_or_explain,
                                 expect_gradient, expect_non_finite_kept, gradient_of, python_number, register,
                                 run_check, tolerance)
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


NCKD_ARGS = ("student_logits", "teacher_logits", "labels", "T")


def _nckd_reference(student_logits, teacher_logits, labels, T):
    return tckd_nckd(student_logits, teacher_logits, labels, T)[1]


def _case(seed, n=6, c=10, scale=3.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    s = scale * torch.randn(n, c, generator=g, dtype=torch.float64)
    z = scale * torch.randn(n, c, generator=g, dtype=torch.float64)
    y = torch.randint(0, c, (n,), generator=g)
    z[0, (y[0] + 1) % c] += 10.0  # on example 0 the teacher's argmax is not the label
    return s.to(dtype), z.to(dtype), y


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
    """Exercise: ``fn(student_logits (N, C), teacher_logits (N, C), labels (N,), T) -> (N,)`` NCKD per example.

    In float64 and float32; the result must carry the gradient to ``student_logits``, leave the inputs
    unchanged, and be NaN for an example whose (non-target) logits hold a NaN."""

    def test(f):
        for seed, T, dtype in [(0, 1.0, torch.float64), (1, 4.0, torch.float64), (2, 2.0, torch.float64),
                               (3, 4.0, torch.float32)]:
            s, z, y = _case(seed, dtype=dtype)
            what = f"T = {T}, {dtype_name(s)} logits"
            want = _nckd_reference(s.double(), z.double(), y, T)
            got = call_checked(f, what, NCKD_ARGS, s.clone(), z.clone(), y.clone(), T)
            atol, rtol = tolerance(s, got)
            expect_close_or_explain(got, want, what, mistakes=_nckd_mistakes(s.double(), z.double(), y, T),
                                    atol=atol, rtol=rtol)
            w = torch.linspace(0.5, 1.5, len(y), dtype=torch.float64)
            grad = gradient_of(f, (s, z.clone(), y.clone(), T), 0, NCKD_ARGS, f"{what}, gradient case", weights=w)
            sr = s.double().requires_grad_(True)
            (g_want,) = torch.autograd.grad((_nckd_reference(sr, z.double(), y, T) * w).sum(), sr)
            expect_gradient(grad, g_want, f"{what}, the gradient with respect to student_logits", atol, rtol)
        s, z, y = _case(4, dtype=torch.float32)
        s[0, (y[0] + 1) % s.shape[1]] = float("nan")
        z[2, (y[2] + 2) % s.shape[1]] = float("nan")
        got = call_checked(f, "NaN logits", NCKD_ARGS, s.clone(), z.clone(), y.clone(), 2.0)
        expect_non_finite_kept(got, _nckd_reference(s.double(), z.double(), y, 2.0),
                               "a NaN non-target logit of the student (example 0) and of the teacher (example 2)",
                               *tolerance(s, got))

    return run_check("nckd_per_example", fn, _nckd_reference, test, verbose=verbose, answer_key=(tckd_nckd,))


def _standardize_reference(logits):
    return standardize_logits(logits)


def _standardize_flat_rows(f: Callable) -> None:
    """The case the 1e-7 is for: a row of equal logits (std 0: the reference gives 0, without the 1e-7
    it is 0/0 = NaN) and a row whose spread is about 1e-7 (values only, no gradient; float64 input, an
    answer computed in float32 passes too)."""
    z = torch.tensor([[2.5] * 10, [1e-7 * (k - 4.5) for k in range(10)],
                      [0.3 * k - 1.0 for k in range(10)]], dtype=torch.float64)
    what = "a row of equal logits (std 0) and a row with a spread of 1e-7"
    centred = z - z.mean(1, keepdim=True)
    mistakes = [(centred / (z.var(1, keepdim=True) + 1e-7).sqrt(),
                 "Add 1e-7 to the standard deviation, not to the variance under the square root."),
                (centred / z.std(1, keepdim=True).clamp_min(1e-7),
                 "Add 1e-7 to the standard deviation (std + 1e-7), as the task states; max(std, 1e-7) differs "
                 "where the std is small.")]
    got = call_checked(f, what, ("logits",), z.clone())
    atol, rtol = tolerance(z, got)
    expect_close_or_explain(got, _standardize_reference(z), what, mistakes=mistakes, atol=atol, rtol=rtol,
                            nan_hint="A row whose logits are all equal has std 0: without the + 1e-7 the task adds "
                                     "to the standard deviation, its result is 0/0 = NaN (the reference gives 0).")


def standardize(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise: ``fn(logits (N, C)) -> (N, C)``, each row z-scored over the classes.

    In float64 and float32; the result must carry the gradient to ``logits`` (it feeds a loss), leave
    ``logits`` unchanged, and be NaN in a row holding a NaN."""

    def test(f):
        for seed, n, c, dtype in [(0, 5, 10, torch.float64), (1, 10, 5, torch.float64), (2, 3, 100, torch.float64),
                                  (3, 4, 10, torch.float32)]:
            g = torch.Generator().manual_seed(seed)
            z = (torch.randn(n, c, generator=g, dtype=torch.float64) * 4 + 2).to(dtype)
            what = f"{n}×{c} {dtype_name(z)} logits"
            zd = z.double()
            want = _standardize_reference(zd)
            mistakes = [((zd - zd.mean(0, keepdim=True)) / zd.std(0, keepdim=True),
                         "You standardised over the batch (dim=0); standardise each example over its classes."),
                        (zd / zd.std(1, keepdim=True), "Subtract each row's mean too."),
                        ((zd - zd.mean(1, keepdim=True)) / zd.var(1, keepdim=True), "Divide by the standard "
                                                                                    "deviation, not the variance."),
                        ((zd - zd.mean(1, keepdim=True)) / zd.std(1, unbiased=False, keepdim=True),
                         "Use torch.std's default (with Bessel's correction), as the reference code does.")]
            got = call_checked(f, what, ("logits",), z.clone())
            atol, rtol = tolerance(z, got)
            expect_close_or_explain(got, want, what, mistakes=mistakes, atol=atol, rtol=rtol)
            w = torch.randn(n, c, generator=g, dtype=torch.float64)
            grad = gradient_of(f, (z,), 0, ("logits",), f"{what}, gradient case", weights=w)
            zr = zd.clone().requires_grad_(True)
            (g_want,) = torch.autograd.grad((_standardize_reference(zr) * w).sum(), zr)
            expect_gradient(grad, g_want, f"{what}, the gradient with respect to logits", atol, rtol,
                             ". The mean and the std depend on the logits too: don't detach them")
        _standardize_flat_rows(f)
        z = torch.randn(3, 6, generator=torch.Generator().manual_seed(4))
        z[1, 3] = float("nan")
        got = call_checked(f, "NaN logit", ("logits",), z.clone())
        expect_non_finite_kept(got, _standardize_reference(z.double()), "a NaN logit in row 1 (float32)",
                               *tolerance(z, got))

    return run_check("standardize", fn, _standardize_reference, test, verbose=verbose,
                     answer_key=(standardize_logits,))


def _paired_gain_reference(method_accs, kd_accs):
    d = [m - k for m, k in zip(method_accs, kd_accs)]
    return statistics.mean(d), statistics.stdev(d)


def _float32(values):
    """Accuracies as a float32 evaluation measures them (Python floats holding float32 values)."""
    return [float(v) for v in torch.tensor(values, dtype=torch.float32)]


def paired_gain(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise: ``fn(method_accs, kd_accs) -> (mean, std)`` of the per-seed differences (lists in seed order).

    Compared within float32's precision (an answer computed in float32 tensors passes); the lists
    must stay unchanged."""
    atol, rtol = tolerance()  # accuracies are measured in float32

    def close(a, b):
        return abs(a - b) <= atol + rtol * abs(b)

    def test(f):
        for method, kd in [([0.70, 0.66, 0.69], [0.68, 0.65, 0.66]), ([0.61, 0.64, 0.60, 0.62], [0.62, 0.61, 0.60, 0.65]),
                           (_float32([0.6825, 0.7031, 0.6912, 0.7105, 0.6950]),
                            _float32([0.6790, 0.6987, 0.6930, 0.7001, 0.6866]))]:
            what = f"{len(method)} seeds"
            want = _paired_gain_reference(method, kd)
            got = call_checked(f, what, ("method_accs", "kd_accs"), list(method), list(kd))
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                raise Failed(f"return a pair (mean, std), got {got!r}")
            mean, sd = python_number(got[0], "mean"), python_number(got[1], "std")
            if close(mean, -want[0]) and not close(want[0], 0.0):
                raise Failed(f"mean {mean:.4f} has the wrong sign: subtract KD from the method (method − KD)")
            if not close(mean, want[0]):
                raise Failed(f"{what}: mean {mean:.6f}, expected {want[0]:.6f}")
            unpaired = (statistics.variance(method) + statistics.variance(kd)) ** 0.5
            if close(sd, unpaired):
                raise Failed("that std treats the two lists as unpaired; take the std of the per-seed differences")
            pstdev = statistics.pstdev([m - k for m, k in zip(method, kd)])
            if close(sd, pstdev):
                raise Failed("use the sample standard deviation (statistics.stdev), not the population one")
            if not close(sd, want[1]):
                raise Failed(f"{what}: std {sd:.6f}, expected {want[1]:.6f} (the sample std of the paired "
                             "differences)")

    return run_check("paired_gain", fn, _paired_gain_reference, test, verbose=verbose)
