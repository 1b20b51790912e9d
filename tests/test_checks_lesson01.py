"""Lesson 01's checks: each reference answer passes, a stub is 'not attempted' (and falls back
to kdtutor's reference), and typical wrong answers fail with a specific message."""

import math

import pytest
import torch

import solutions.lesson01 as S
from kdtutor import checks
from kdtutor.kd import softmax as sm

NAMES = ["stable_log_softmax", "entropy_nats", "temperature_for_entropy"]


def test_fallbacks_compute_the_right_thing():
    def stub(*args, **kwargs):
        raise NotImplementedError

    z = torch.tensor([[1.0, 2.0, 3.0]])
    torch.testing.assert_close(checks.stable_log_softmax(stub, verbose=False).fn(z, 2.0),
                               torch.log_softmax(z / 2.0, dim=-1))
    p = torch.tensor([0.5, 0.5, 0.0])
    assert checks.entropy_nats(stub, verbose=False).fn(p).item() == pytest.approx(math.log(2))
    T = checks.temperature_for_entropy(stub, verbose=False).fn(torch.tensor([0.0, 1.0, 5.0]), 0.5)
    assert sm.entropy_from_logits(torch.tensor([0.0, 1.0, 5.0]), T=T).item() == pytest.approx(0.5, abs=1e-6)


def _fails(check, fn, *fragments):
    r = check(fn, verbose=False)
    assert r.passed is False, r.message
    for fragment in fragments:
        assert fragment in r.message, r.message
    assert "Hint:" in r.message


# --------------------------------------------------------------------------- stable_log_softmax
def test_log_softmax_without_max_subtraction_fails_on_large_logits():
    def no_max(logits, T=1.0):
        z = logits / T
        return z - torch.log(torch.exp(z).sum(dim=-1, keepdim=True))

    _fails(checks.stable_log_softmax, no_max, "large logits", "NaN or inf")


def test_log_of_softmax_underflows():
    def log_of_softmax(logits, T=1.0):
        z = logits / T
        e = torch.exp(z - z.amax(dim=-1, keepdim=True))
        return torch.log(e / e.sum(dim=-1, keepdim=True))

    _fails(checks.stable_log_softmax, log_of_softmax, "large logits", "NaN or inf")


def test_dividing_by_t_in_the_wrong_place_fails():
    _fails(checks.stable_log_softmax, lambda z, T=1.0: torch.log_softmax(z, dim=-1) / T,
           "T = 4", "divided the log-probabilities by T")


def test_ignoring_t_fails():
    _fails(checks.stable_log_softmax, lambda z, T=1.0: torch.log_softmax(z, dim=-1), "temperature was ignored")


def test_one_global_maximum_fails_on_rows_of_different_scale():
    def global_max(logits, T=1.0):
        z = logits / T
        z = z - z.max()
        return z - torch.log(torch.exp(z).sum(dim=-1, keepdim=True))

    _fails(checks.stable_log_softmax, global_max, "very different scale")


def test_normalising_over_the_batch_fails():
    _fails(checks.stable_log_softmax, lambda z, T=1.0: torch.log_softmax(z / T, dim=0),
           "normalised over the batch")


def test_changing_the_input_in_place_fails():
    def in_place(logits, T=1.0):
        logits /= T
        logits -= logits.amax(dim=-1, keepdim=True)
        return logits - torch.log(torch.exp(logits).sum(dim=-1, keepdim=True))

    _fails(checks.stable_log_softmax, in_place, "in place")


# --------------------------------------------------------------------------- entropy_nats
def test_entropy_without_handling_zeros_is_nan():
    _fails(checks.entropy_nats, lambda p: -(p * torch.log(p)).sum(dim=-1), "one-hot", "NaN")


def test_entropy_in_bits_fails():
    _fails(checks.entropy_nats, lambda p: -torch.special.xlogy(p, p).sum(dim=-1) / math.log(2), "bits")


def test_entropy_with_the_wrong_sign_fails():
    _fails(checks.entropy_nats, lambda p: torch.special.xlogy(p, p).sum(dim=-1), "sign")


def test_entropy_over_the_wrong_dimension_fails():
    _fails(checks.entropy_nats, lambda p: -torch.special.xlogy(p, p).sum(dim=0), "shape")


# --------------------------------------------------------------------------- temperature_for_entropy
LOG_T_RANGE = (math.log(1e-3), math.log(1e3))


def _bisection(logits, target, wrong_way=False, lo=LOG_T_RANGE[0], hi=LOG_T_RANGE[1], steps=60):
    for _ in range(steps):
        mid = (lo + hi) / 2
        below = sm.entropy_from_logits(logits, T=math.exp(mid)).item() < target
        if below != wrong_way:
            lo = mid
        else:
            hi = mid
    return math.exp((lo + hi) / 2)


def _validated(f):
    def g(logits, target):
        if not 0 < target < math.log(logits.numel()):
            raise ValueError("target out of range")
        return f(logits, target)
    return g


def test_bisection_in_the_wrong_direction_fails():
    _fails(checks.temperature_for_entropy, _validated(lambda z, h: _bisection(z, h, wrong_way=True)),
           "edge of the search range")


def test_coarse_grid_search_fails():
    def grid(logits, target):
        grid_ = [0.5, 1.0, 2.0, 4.0, 8.0]
        return min(grid_, key=lambda T: abs(sm.entropy_from_logits(logits, T=T).item() - target))

    _fails(checks.temperature_for_entropy, _validated(grid), "the entropy is")


def test_too_few_bisection_steps_fail():
    _fails(checks.temperature_for_entropy, _validated(lambda z, h: _bisection(z, h, steps=8)), "the entropy is")


def test_returning_one_over_t_fails():
    _fails(checks.temperature_for_entropy, _validated(lambda z, h: 1 / S.temperature_for_entropy(z, h)),
           "the answer is T")


def test_not_raising_for_an_unreachable_target_fails():
    _fails(checks.temperature_for_entropy, lambda z, h: _bisection(z, h), "above log C", "expected ValueError")


def test_entropy_as_a_python_float_fails():
    # passes every value, but lesson 01 calls .item() on the result later
    _fails(checks.entropy_nats, lambda p: float(-torch.special.xlogy(p, p).sum(dim=-1)), "got a float",
           "expected a tensor")


def test_entropy_via_item_on_a_batch_fails_too():
    _fails(checks.entropy_nats, lambda p: -torch.special.xlogy(p, p).sum(dim=-1).sum().item(), "expected a tensor")


def test_accepting_a_target_of_exactly_log_c_fails():
    def lenient(logits, target):  # rejects only targets *above* log C
        if not 0 < target <= math.log(logits.numel()):
            raise ValueError("target out of range")
        return _bisection(logits, target)

    _fails(checks.temperature_for_entropy, lenient, "exactly log C", "expected ValueError")


def test_the_reference_answers_pass_the_new_cases():
    from solutions import lesson01

    for name in NAMES:
        assert getattr(checks, name)(getattr(lesson01, name), verbose=False).passed is True


# --------------------------------------------------------------------------- issue 35: each answer and its message
def _float32_log_c(logits, target):  # log C rounded up in float32 lets target = math.log(C) through
    if not 0 < target < torch.log(torch.tensor(float(logits.numel()))).item():
        raise ValueError("target out of range")
    return _bisection(logits, target)


# wrong answers of temperature_for_entropy: (answer, fragments its failure message must hold)
WRONG = {
    "bisection over [0.9, 50]": (_validated(lambda z, h: _bisection(z, h, lo=math.log(0.9), hi=math.log(50))),
                                 ["T ≈ 0.1", "does your search range reach it", "10⁻³ to 10³"]),
    "a 0-d tensor for the float": (_validated(lambda z, h: torch.tensor(S.temperature_for_entropy(z, h))),
                                   ["got a 0-d tensor", "Python float", "float(...) or .item()"]),
    # refused on purpose (it accepts the unreachable target log C); the message says why
    "log C computed in float32": (_float32_log_c, ["exactly log C", "math.log(C)", "float32"]),
}
RIGHT = {
    "the reference": S.temperature_for_entropy,
    "a numpy float64": lambda z, h: __import__("numpy").float64(S.temperature_for_entropy(z, h)),
}


@pytest.mark.parametrize("name", WRONG)
def test_issue35_wrong_answer_fails_naming_its_mistake(name):
    answer, fragments = WRONG[name]
    _fails(checks.temperature_for_entropy, answer, *fragments)


@pytest.mark.parametrize("name", RIGHT)
def test_issue35_right_answer_passes(name):
    r = checks.temperature_for_entropy(RIGHT[name], verbose=False)
    assert r.passed is True, r.message


def test_cases_need_temperatures_outside_0_9_to_50():
    from kdtutor.checks.lesson01 import _entropy_cases

    temperatures = [sm.temperature_for_entropy(z, h) for _, z, h in _entropy_cases()]
    assert min(temperatures) < 0.9 / 5 and max(temperatures) > 50 * 2
