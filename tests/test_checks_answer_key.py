"""Checks that cannot be passed by the answer key: while a check runs the learner's function, a
call to kdtutor's own implementation of that exercise (the check's fallback, or the kdtutor
function it wraps) fails the check with "write it yourself: this calls …", for every exercise.
The right answers (solutions/) pass: torch and torch.nn.functional stay allowed."""

import sys

import pytest
import torch
import torch.nn.functional as F

import solutions.lesson02 as S02
from kdtutor import checks
from kdtutor.checks import core
from kdtutor.images import distill, loader, metrics, stats
from kdtutor.kd import beyond, losses, softmax as sm
from kdtutor.lm import distill as lm_distill

from tests.test_checks_all import ANSWERS, stub


def _topk(s, lp, idx):
    top = lm_distill.TopK(lp, idx, torch.zeros(lp.shape[:-1]), 1.0, s.shape[-1])
    return lm_distill.topk_kd_loss(s, top, rest="renormalize")


# check → [(an answer that hands in kdtutor's own implementation, the name the message gives)]
ANSWER_KEY = {
    "stable_log_softmax": [(lambda z, T=1.0: sm.log_softmax(z, T=T), "kdtutor.kd.softmax.log_softmax")],
    "entropy_nats": [(lambda p: sm.entropy(p), "kdtutor.kd.softmax.entropy"),
                     (lambda p: sm.entropy_from_logits(torch.log(p)), "kdtutor.kd.softmax.entropy_from_logits")],
    "temperature_for_entropy": [(sm.temperature_for_entropy, "kdtutor.kd.softmax.temperature_for_entropy")],
    "kl_batchmean": [(lambda s, t, T=1.0: losses.kl_divergence(s, t, T=T), "kdtutor.kd.losses.kl_divergence")],
    "kd_term": [(lambda s, t, T: losses.kd_loss(s, t, T=T), "kdtutor.kd.losses.kd_loss"),
                (lambda s, t, T: losses.distillation_loss(s, t, t.argmax(1), T=T, alpha=1.0),
                 "kdtutor.kd.losses.distillation_loss")],
    "combined_kd_loss": [
        (lambda s, t, y, T=4.0, alpha=0.9: losses.distillation_loss(s, t, y, T=T, alpha=alpha),
         "kdtutor.kd.losses.distillation_loss"),
        (lambda s, t, y, T=4.0, alpha=0.9: (1 - alpha) * F.cross_entropy(s, y) + alpha * losses.kd_loss(s, t, T=T),
         "kdtutor.kd.losses.kd_loss")],
    "flip_batch": [(lambda x, flip: loader.flip_batch(x, flip), "flip_batch")],
    "translate_batch": [(lambda p, dx, dy, pad: loader.translate_batch(p, dx, dy, pad), "translate_batch")],
    "best_class_shift": [(lambda z, y, c, shifts: distill.best_class_shift(z, y, c, shifts),
                          "kdtutor.images.distill.best_class_shift")],
    "expected_calibration_error": [(lambda z, y, n_bins=15: metrics.expected_calibration_error(z, y, n_bins),
                                    "expected_calibration_error")],
    "top1_agreement": [(lambda s, t: metrics.top1_agreement(s, t), "top1_agreement")],
    "macro_f1": [(lambda z, y: metrics.macro_f1(z, y), "macro_f1"),
                 (lambda z, y: float(metrics.precision_recall_f1(z, y)["f1"].mean()), "precision_recall_f1")],
    "summarize_seeds": [(lambda v: (lambda s: (s.mean, s.std, s.low, s.high))(stats.summarize_seeds(v)),
                         "summarize_seeds")],
    "nckd_per_example": [(lambda s, z, y, T: beyond.tckd_nckd(s, z, y, T)[1], "kdtutor.kd.beyond.tckd_nckd")],
    "standardize": [(lambda z: beyond.standardize_logits(z), "kdtutor.kd.beyond.standardize_logits")],
    "reverse_kl_tokens": [(lambda s, t: lm_distill.reverse_kl(s, t), "kdtutor.lm.distill.reverse_kl")],
    "masked_token_mean": [(lambda v, m: lm_distill.masked_mean(v, m), "kdtutor.lm.distill.masked_mean")],
    "topk_renormalized_kl": [(_topk, "kdtutor.lm.distill.topk_kd_loss")],
}
NAMES = [name for _, name in ANSWERS]
KEYED = [(name, i) for name, answers in ANSWER_KEY.items() for i in range(len(answers))]


def test_the_table_names_only_real_exercises():
    assert set(ANSWER_KEY) <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_handing_in_the_checks_own_fallback_fails_with_write_it_yourself(name):
    check = getattr(checks, name)
    fallback = check(stub, verbose=False).fn

    def mine(*args, **kwargs):
        return fallback(*args, **kwargs)

    result = check(mine, verbose=False)
    assert result.passed is False and "write it yourself: this calls " in result.message, result.message


@pytest.mark.parametrize("name,i", KEYED, ids=[f"{n}-{i}" for n, i in KEYED])
def test_calling_kdtutors_implementation_fails_and_names_it(name, i):
    answer, shown = ANSWER_KEY[name][i]
    result = getattr(checks, name)(answer, verbose=False)
    assert result.passed is False, result.message
    assert "write it yourself: this calls " in result.message and shown in result.message, result.message


def test_the_message_names_the_kdtutor_function_with_its_module():
    result = checks.kl_batchmean(lambda s, t, T=1.0: losses.kl_divergence(s, t, T=T), verbose=False)
    assert "✗ kl_batchmean: write it yourself: this calls kdtutor.kd.losses.kl_divergence" in result.message


def test_an_earlier_exercises_fallback_is_allowed_in_a_later_exercise():
    """Lesson 02 without exercise 1 solved: its combined loss calls the fallback kl_batchmean."""
    kl_batchmean = checks.kl_batchmean(stub, verbose=False).fn

    def combined_kd_loss(s, t, y, T=4.0, alpha=0.9):
        return (1 - alpha) * F.cross_entropy(s, y) + alpha * T * T * kl_batchmean(s, t, T)

    assert checks.combined_kd_loss(combined_kd_loss, verbose=False).passed is True


def test_solutions_that_use_torch_and_functional_pass():
    assert checks.kd_term(S02.kd_term, verbose=False).passed is True  # F.kl_div, F.log_softmax


def test_switching_the_watch_off_fails_and_a_previous_profiler_is_restored():
    def sneaky(s, t, T=1.0):
        sys.setprofile(None)
        return losses.kl_divergence(s, t, T=T)

    def previous(frame, event, arg):
        return None

    sys.setprofile(previous)
    try:
        result = checks.kl_batchmean(sneaky, verbose=False)
        assert sys.getprofile() is previous
    finally:
        sys.setprofile(None)
    assert result.passed is False and "switched off the check's watch" in result.message


def test_the_check_watches_its_reference_and_answer_key_only_while_the_learners_function_runs(monkeypatch):
    calls = []
    real = core.refuse_answer_key

    def spy(fn, check, answers):
        calls.append([getattr(a, "__name__", "") for a in answers])
        return real(fn, check, answers)

    monkeypatch.setattr(core, "refuse_answer_key", spy)
    assert checks.kl_batchmean(S02.kl_batchmean, verbose=False).passed is True  # its own reference calls count not
    assert calls == [["reference", "kl_divergence"]]
