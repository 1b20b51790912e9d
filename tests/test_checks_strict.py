"""checks.require (the strict form autograders use), points per exercise, and the hidden tests of
solutions/: a wrong answer raises, the reference a check handed out raises, a right answer passes."""

import importlib

import pytest
import torch

import solutions.lesson01
import solutions.lesson02
from kdtutor import checks
from kdtutor.checks import core
from test_checks_all import ANSWERS, stub


@pytest.mark.parametrize("lesson,name", ANSWERS, ids=[f"{m}.{n}" for m, n in ANSWERS])
def test_require_passes_the_reference_answer_and_refuses_the_fallback_a_check_hands_out(lesson, name):
    answer = getattr(importlib.import_module(f"solutions.{lesson}"), name)
    assert checks.require(name, answer) is None  # no output: nbgrader's full points
    fallback = getattr(checks, name)(stub, verbose=False).fn
    assert getattr(checks, name)(fallback, verbose=False).passed is False  # handed back in, it is the answer key …
    with pytest.raises(AssertionError, match=f"✗ {name}: not attempted.*earns no points"):
        checks.require(name, fallback)  # … but earns nothing


def test_require_raises_with_the_first_wrong_case_and_the_nudge():
    def no_minus_sign(probs):
        return (probs * torch.log(probs.clamp_min(1e-30))).sum(dim=-1)

    with pytest.raises(checks.Failed) as caught:
        checks.require("entropy_nats", no_minus_sign)
    assert "The sign is flipped" in str(caught.value) and core.HINTS["entropy_nats"].nudge in str(caught.value)
    with pytest.raises(checks.Failed, match="not attempted"):
        checks.require("entropy_nats", stub)
    with pytest.raises(ValueError, match="no exercise check is named 'entropy'"):
        checks.require("entropy", no_minus_sign)


def test_every_exercise_has_whole_positive_points_default_1():
    assert {name: checks.points(name) for name in core.HINTS} == core.POINTS
    assert all(isinstance(p, int) and p >= 1 for p in core.POINTS.values())
    assert checks.points("temperature_for_entropy") == 2 and checks.points("entropy_nats") == 1
    with pytest.raises(ValueError, match="no exercise check is named"):
        checks.points("nope")


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_register_refuses_points_that_are_not_a_whole_number_of_at_least_1(bad):
    with pytest.raises(ValueError, match="points must be a whole number >= 1"):
        core.register("some_new_check", "nudge", "answer", points=bad)
    assert "some_new_check" not in core.HINTS


def test_the_hidden_tests_pass_the_reference_and_fail_answers_the_visible_check_lets_through():
    solutions.lesson01._hidden_entropy_nats(solutions.lesson01.entropy_nats)
    solutions.lesson02._hidden_kl_batchmean(solutions.lesson02.kl_batchmean)

    def entropy_wrong_on_7_classes(probs):
        return solutions.lesson01.entropy_nats(probs) * (0.5 if probs.shape[-1] == 7 else 1.0)

    def kl_wrong_on_13_classes(s, t, T=1.0):
        return solutions.lesson02.kl_batchmean(s, t, T) * (0.5 if s.shape[-1] == 13 else 1.0)

    assert checks.entropy_nats(entropy_wrong_on_7_classes, verbose=False).passed is True
    assert checks.kl_batchmean(kl_wrong_on_13_classes, verbose=False).passed is True
    with pytest.raises(AssertionError):
        solutions.lesson01._hidden_entropy_nats(entropy_wrong_on_7_classes)
    with pytest.raises(AssertionError):
        solutions.lesson02._hidden_kl_batchmean(kl_wrong_on_13_classes)
