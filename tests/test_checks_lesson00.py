"""The warm-up check of lesson 00 (wrong answers fail, numpy answers pass) and the way every
check talks: a nudge on the first ✗, the answer on the second or on request, a reset on ✓."""

import pytest
import torch

from kdtutor import checks
from solutions.lesson00 import warmup_argmax as reference


def test_returning_the_largest_value_fails():
    r = checks.warmup_argmax(lambda z: z.max().item(), verbose=False)
    assert r.passed is False and "largest *value*" in r.message


def test_argmin_fails():
    r = checks.warmup_argmax(lambda z: int(torch.argmin(z)), verbose=False)
    assert r.passed is False and "expected" in r.message and "Hint" in r.message


def test_counting_from_one_fails():
    r = checks.warmup_argmax(lambda z: int(torch.argmax(z)) + 1, verbose=False)
    assert r.passed is False and "from 0" in r.message


def test_a_crash_is_reported_as_a_failure(capsys):
    r = checks.warmup_argmax(lambda z: z.no_such_method())
    assert r.passed is False and "AttributeError" in r.message
    assert "✗ warmup_argmax" in capsys.readouterr().out


def test_numpy_argmax_passes():
    assert checks.warmup_argmax(lambda z: z.numpy().argmax(), verbose=False).passed is True


def test_numpy_max_is_still_the_largest_value():
    r = checks.warmup_argmax(lambda z: z.numpy().max(), verbose=False)
    assert r.passed is False and "largest *value*" in r.message


def test_a_whole_tensor_is_not_an_index():
    r = checks.warmup_argmax(lambda z: z, verbose=False)
    assert r.passed is False and "expected one index, got a tensor of shape (3,)" in r.message


# --------------------------------------------------------------------------- nudge first, answer second
ANSWER = "return int(torch.argmax(logits))"


def test_first_failure_shows_a_nudge_not_the_answer():
    r = checks.warmup_argmax(lambda z: int(torch.argmin(z)), verbose=False)
    assert "Hint: you want the *position*" in r.message
    assert ANSWER not in r.message and 'checks.answer("warmup_argmax")' in r.message


def test_second_failure_of_the_same_check_shows_the_answer():
    checks.warmup_argmax(lambda z: int(torch.argmin(z)), verbose=False)
    other = checks.stable_log_softmax(lambda z, T=1.0: z, verbose=False)  # another check's count is separate
    assert "Answer:" not in other.message
    r = checks.warmup_argmax(lambda z: int(torch.argmax(z)) + 1, verbose=False)
    assert f"Answer: {ANSWER}" in r.message


def test_a_pass_resets_the_count():
    checks.warmup_argmax(lambda z: int(torch.argmin(z)), verbose=False)
    assert checks.warmup_argmax(reference, verbose=False).passed is True
    r = checks.warmup_argmax(lambda z: int(torch.argmin(z)), verbose=False)
    assert "Answer:" not in r.message


def test_not_attempted_does_not_count():
    def stub(z):
        raise NotImplementedError

    checks.warmup_argmax(stub, verbose=False)
    r = checks.warmup_argmax(lambda z: int(torch.argmin(z)), verbose=False)
    assert "Answer:" not in r.message


def test_answer_on_request(capsys):
    assert checks.answer("warmup_argmax").startswith(ANSWER)
    assert ANSWER in capsys.readouterr().out
    with pytest.raises(ValueError, match="no exercise check is named 'warmup'.*warmup_argmax"):
        checks.answer("warmup")


# --------------------------------------------------------------------------- issue 35: each answer and its message
def _from_index_1(logits):  # skips position 0
    return max(range(1, len(logits)), key=lambda i: logits[i])


# wrong answers: (answer, fragments its failure message must hold)
WRONG = {
    "loop from index 1": (_from_index_1, ["position 0", "start at 1"]),
    "a 0-d tensor": (lambda z: torch.argmax(z), ["got a 0-d tensor", "Python int", "int(...) or .item()"]),
    "the index as a float": (lambda z: float(torch.argmax(z)), ["expected a Python int, got float 1.0"]),
}
RIGHT = {
    "int(torch.argmax(...))": reference,
    "numpy's argmax (numpy.int64)": lambda z: z.numpy().argmax(),
    "a loop from index 0": lambda z: max(range(len(z)), key=lambda i: z[i]),
}


@pytest.mark.parametrize("name", WRONG)
def test_issue35_wrong_answer_fails_naming_its_mistake(name):
    answer, fragments = WRONG[name]
    r = checks.warmup_argmax(answer, verbose=False)
    assert r.passed is False, r.message
    for fragment in fragments:
        assert fragment in r.message, r.message


@pytest.mark.parametrize("name", RIGHT)
def test_issue35_right_answer_passes(name):
    r = checks.warmup_argmax(RIGHT[name], verbose=False)
    assert r.passed is True, r.message
