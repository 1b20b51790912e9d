"""The warm-up check of lesson 00: the reference passes, a stub is 'not attempted', wrong answers fail."""

import torch

from kdtutor import checks


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
