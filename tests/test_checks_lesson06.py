"""Lesson 06's exercises: typical wrong answers fail their checks, with a message naming the mistake."""

import statistics

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdtutor import checks
from solutions import lesson06 as sol


@pytest.fixture(autouse=True)
def _fresh():
    checks.reset()
    yield
    checks.reset()


def _passes(check, fn):
    result = check(fn, verbose=False)
    assert result.passed is True, result.message


def _fails(check, fn, *words):
    result = check(fn, verbose=False)
    assert result.passed is False, result.message
    for w in words:
        assert w in result.message, result.message


def test_nckd_without_renormalising_fails():
    def wrong(s, z, y, T):
        mask = F.one_hot(y, s.shape[1]).bool()
        p, logq = F.softmax(z / T, 1), F.log_softmax(s / T, 1)
        return (p * (p.log() - logq)).masked_fill(mask, 0).sum(1)
    _fails(checks.nckd_per_example, wrong, "renormalised")


def test_nckd_masking_the_teachers_argmax_fails():
    def wrong(s, z, y, T):
        return sol.nckd_per_example(s, z, z.argmax(1), T)
    _fails(checks.nckd_per_example, wrong, "true label")


def test_nckd_with_the_kd_weight_or_t_squared_fails():
    def weighted(s, z, y, T):
        p_t = F.softmax(z / T, 1).gather(1, y[:, None]).squeeze(1)
        return (1 - p_t) * sol.nckd_per_example(s, z, y, T)
    _fails(checks.nckd_per_example, weighted, "β")
    _fails(checks.nckd_per_example, lambda s, z, y, T: T * T * sol.nckd_per_example(s, z, y, T), "T²")


def test_nckd_detached_fails():
    _fails(checks.nckd_per_example, lambda s, z, y, T: sol.nckd_per_example(s.detach(), z, y, T),
           "no gradient with respect to `student_logits`", ".detach()")


def test_standardize_over_the_batch_axis_fails():
    _fails(checks.standardize, lambda z: (z - z.mean(0, keepdim=True)) / z.std(0, keepdim=True), "dim=0")


def test_standardize_without_centering_or_with_population_std_fails():
    _fails(checks.standardize, lambda z: z / z.std(1, keepdim=True), "mean")
    _fails(checks.standardize, lambda z: (z - z.mean(1, keepdim=True)) / z.std(1, unbiased=False, keepdim=True),
           "Bessel")


def test_paired_gain_unpaired_std_fails():
    def unpaired(m, k):
        return statistics.mean(m) - statistics.mean(k), (statistics.variance(m) + statistics.variance(k)) ** 0.5
    _fails(checks.paired_gain, unpaired, "unpaired")


def test_paired_gain_wrong_sign_or_population_std_fails():
    _fails(checks.paired_gain, lambda m, k: sol.paired_gain(k, m), "sign")

    def population(m, k):
        d = [a - b for a, b in zip(m, k)]
        return statistics.mean(d), statistics.pstdev(d)
    _fails(checks.paired_gain, population, "population")


# --------------------------------------------------------------------------- answers that cannot train
def test_nckd_without_a_gradient_fails():
    def no_grad(s, z, y, T):
        with torch.no_grad():
            return sol.nckd_per_example(s, z, y, T)

    def via_numpy(s, z, y, T):
        return torch.from_numpy(sol.nckd_per_example(s, z, y, T).detach().numpy())

    for wrong in (no_grad, via_numpy):
        _fails(checks.nckd_per_example, wrong, "gradient case", "no gradient with respect to `student_logits`",
               "torch.no_grad()")


def test_standardize_without_a_gradient_or_with_detached_statistics_fails():
    def no_grad(z):
        with torch.no_grad():
            return sol.standardize(z)

    _fails(checks.standardize, no_grad, "no gradient with respect to `logits`")
    _fails(checks.standardize, lambda z: torch.tensor(sol.standardize(z).tolist(), dtype=z.dtype),
           "no gradient with respect to `logits`")
    _fails(checks.standardize, lambda z: (z - z.mean(1, keepdim=True).detach()) / (z.std(1, keepdim=True).detach()
                                                                                  + 1e-7),
           "the gradient with respect to logits", "don't detach them")


# --------------------------------------------------------------------------- answers that change their inputs
def test_nckd_masking_the_inputs_in_place_fails_naming_the_argument():
    def in_place(s, z, y, T):
        mask = F.one_hot(y, s.shape[1]).bool()
        s.masked_fill_(mask, float("-inf"))
        ls, lt = F.log_softmax(s / T, 1), F.log_softmax((z / T).masked_fill(mask, float("-inf")), 1)
        return (lt.exp() * (lt - ls)).masked_fill(mask, 0).sum(1)

    def teacher_in_place(s, z, y, T):
        z /= T
        return sol.nckd_per_example(s, z * T, y, T)

    _fails(checks.nckd_per_example, in_place, "changed its argument `student_logits` in place", "masked_fill")
    _fails(checks.nckd_per_example, teacher_in_place, "changed its argument `teacher_logits` in place")


def test_standardize_in_place_fails():
    def in_place(z):
        return z.sub_(z.mean(1, keepdim=True)).div_(z.std(1, keepdim=True) + 1e-7)

    _fails(checks.standardize, in_place, "changed its argument `logits` in place", "compute a new tensor")


def test_paired_gain_overwriting_the_callers_list_fails():
    def in_place(m, k):
        for i in range(len(m)):
            m[i] -= k[i]
        return statistics.mean(m), statistics.stdev(m)

    _fails(checks.paired_gain, in_place, "changed its argument `method_accs` in place", "build a new list")


# --------------------------------------------------------------------------- answers that hide NaN or inf
def test_nckd_hiding_nan_fails():
    _fails(checks.nckd_per_example, lambda s, z, y, T: torch.nan_to_num(sol.nckd_per_example(s, z, y, T)),
           "a NaN non-target logit", "hides it")
    _fails(checks.nckd_per_example, lambda s, z, y, T: sol.nckd_per_example(s.nan_to_num(), z.nan_to_num(), y, T),
           "hides it")


def test_standardize_hiding_nan_fails():
    _fails(checks.standardize, lambda z: torch.nan_to_num(sol.standardize(z)), "a NaN logit in row 1", "hides it")


# --------------------------------------------------------------------------- float32
def test_correct_float32_answers_pass_and_every_check_tries_float32():
    _passes(checks.nckd_per_example, lambda s, z, y, T: sol.nckd_per_example(s.float(), z.float(), y, T))
    _passes(checks.standardize, lambda z: sol.standardize(z.float()))

    def paired_in_float32(m, k):  # rejected by the old 1e-9 tolerance: float32 rounds at ~1e-8
        d = torch.tensor(m, dtype=torch.float32) - torch.tensor(k, dtype=torch.float32)
        return d.mean().item(), d.std().item()  # float32 values as Python floats

    m, k = [0.61, 0.64, 0.60, 0.62], [0.62, 0.61, 0.60, 0.65]
    assert abs(paired_in_float32(m, k)[0] - sol.paired_gain(m, k)[0]) > 1e-9
    _passes(checks.paired_gain, paired_in_float32)
    _passes(checks.paired_gain, lambda m, k: tuple(np.float32(x) for x in sol.paired_gain(m, k)))

    def wrong_in(dtype, right, wrong):
        return lambda *args: (wrong if args[0].dtype == dtype else right)(*args)

    _fails(checks.nckd_per_example, wrong_in(torch.float32, sol.nckd_per_example,
                                             lambda s, z, y, T: 2 * sol.nckd_per_example(s, z, y, T)), "float32")
    _fails(checks.standardize, wrong_in(torch.float32, sol.standardize, lambda z: 2 * sol.standardize(z)), "float32")


def test_the_answers_the_hints_show_pass():
    params = {"nckd_per_example": "s, z, labels, T", "standardize": "z", "paired_gain": "method_accs, kd_accs"}
    for name, args in params.items():
        body = "\n    ".join(checks.answer(name, verbose=False).split("; "))
        namespace = {"F": F, "torch": torch, "statistics": statistics, "inf": float("inf")}
        exec(f"def answer({args}):\n    C = {args.split(',')[0]}.shape[1] if {name == 'nckd_per_example'} else None"
             f"\n    {body}", namespace)
        _passes(getattr(checks, name), namespace["answer"])


# --------------------------------------------------------------------------- the shared helpers (checks.core)
def test_an_in_place_write_refused_by_autograd_is_reported_as_changing_the_argument():
    def in_place_when_it_requires_grad(s, z, y, T):  # passes the value cases, then autograd refuses s.mul_
        if s.requires_grad:
            s.mul_(1.0)
        return sol.nckd_per_example(s, z, y, T)

    _fails(checks.nckd_per_example, in_place_when_it_requires_grad, "gradient case",
           "changed its argument `student_logits` in place")


def test_call_checked_sees_changed_values_and_same_value_rewrites_but_not_nan_it_was_given():
    from kdtutor.checks import core

    x = torch.tensor([1.0, float("nan")])
    assert core.call_checked(lambda a: a * 2, "case", ("a",), x).isnan()[1]  # NaN == NaN for the comparison
    with pytest.raises(checks.Failed, match="changed its argument `a` in place"):
        core.call_checked(lambda a: a.copy_(a.clone()), "case", ("a",), x.clone())  # same values, new version
    with pytest.raises(checks.Failed, match="`b` in place"):
        core.call_checked(lambda a, b: b.append(1), "case", ("a", "b"), x.clone(), [0.5])


def test_tolerance_is_that_of_the_least_precise_float_dtype():
    from kdtutor.checks import core

    f64, f32 = torch.zeros(1, dtype=torch.float64), torch.zeros(1)
    assert core.tolerance(f64) == core.TOLERANCE[torch.float64] < core.TOLERANCE[torch.float32]
    assert core.tolerance(f64, f32) == core.tolerance(f32) == core.tolerance() == core.TOLERANCE[torch.float32]
    assert core.tolerance(f64, torch.zeros(1, dtype=torch.int64)) == core.TOLERANCE[torch.float64]


# --------------------------------------------------------------------------- issue 35: each answer and its message
WRONG = {
    "standardize without the 1e-7": (checks.standardize,
                                     lambda z: (z - z.mean(1, keepdim=True)) / z.std(1, keepdim=True),
                                     ["all equal", "std 0", "+ 1e-7"]),
    "standardize with the 1e-7 inside the square root": (
        checks.standardize, lambda z: (z - z.mean(1, keepdim=True)) / (z.var(1, keepdim=True) + 1e-7).sqrt(),
        ["Add 1e-7 to the standard deviation", "not to the variance"]),
    "paired_gain as 0-d tensors": (checks.paired_gain,
                                   lambda m, k: tuple(torch.tensor(x) for x in sol.paired_gain(m, k)),
                                   ["mean: got a 0-d tensor", "Python float"]),
}


@pytest.mark.parametrize("name", WRONG)
def test_issue35_wrong_answer_fails_naming_its_mistake(name):
    check, answer, fragments = WRONG[name]
    _fails(check, answer, *fragments)


def test_issue35_standardize_with_a_clamped_std_of_1e_7_fails_too():
    # max(std, 1e-7) equals std + 1e-7 only where the std is large; the nearly constant row tells them apart
    _fails(checks.standardize, lambda z: (z - z.mean(1, keepdim=True)) / z.std(1, keepdim=True).clamp_min(1e-7),
           "spread of 1e-7")
