"""Checks that cannot be passed by the answer key: while a check runs the learner's function, a
call to kdtutor's own implementation of that exercise (the check's fallback, or the kdtutor
function it wraps) fails the check with "write it yourself: this calls …", for every exercise.
The right answers (solutions/) pass: torch and torch.nn.functional stay allowed."""

import functools
import inspect
import linecache
import sys
import types

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


# --------------------------------------------------------------------------- kdtutor's code under another name
def renamed(f, name="mine"):
    """The renamed-code cheat of issue 33: ``f``'s own code object under another name."""
    return types.FunctionType(f.__code__.replace(co_name=name, co_qualname=name), f.__globals__, name,
                              f.__defaults__, f.__closure__)


# check → kdtutor's public implementation of it (the functions its answer key names, and public references)
KDTUTOR_OWN = [("stable_log_softmax", sm.log_softmax), ("entropy_nats", sm.entropy),
               ("entropy_nats", sm.entropy_from_logits), ("temperature_for_entropy", sm.temperature_for_entropy),
               ("kl_batchmean", losses.kl_divergence), ("kd_term", losses.kd_loss),
               ("combined_kd_loss", losses.distillation_loss), ("flip_batch", loader.flip_batch),
               ("best_class_shift", distill.best_class_shift), ("macro_f1", metrics.macro_f1),
               ("standardize", beyond.standardize_logits), ("reverse_kl_tokens", lm_distill.reverse_kl),
               ("masked_token_mean", lm_distill.masked_mean), ("topk_renormalized_kl", lm_distill.topk_kd_loss)]
UNDER_ANOTHER_NAME = "this is kdtutor's own code under another name"


@pytest.mark.parametrize("name,own", KDTUTOR_OWN, ids=[f"{n}-{f.__name__}" for n, f in KDTUTOR_OWN])
def test_kdtutors_function_under_a_renamed_code_object_fails_and_names_it(name, own):
    result = getattr(checks, name)(renamed(own), verbose=False)
    assert result.passed is False, result.message
    assert UNDER_ANOTHER_NAME in result.message and f"{own.__module__}.{own.__qualname__}" in result.message


@pytest.mark.parametrize("name", NAMES)
def test_the_checks_own_reference_under_a_renamed_code_object_fails(name):
    check = getattr(checks, name)
    reference = check(stub, verbose=False).fn.__wrapped__  # the function the fallback stands in for
    result = check(renamed(reference), verbose=False)
    assert result.passed is False and UNDER_ANOTHER_NAME in result.message, result.message


def test_a_wrapper_or_alias_of_the_renamed_copy_fails_too():
    copy = renamed(sm.log_softmax)
    hidden_in = {"f": copy}  # reached only when it runs: the profile hook sees the call

    def through_a_wrapper(z, T=1.0):
        return copy(z, T)

    def through_a_dict(z, T=1.0):
        return hidden_in["f"](z, T)

    for fn in (through_a_wrapper, through_a_dict, functools.partial(copy)):
        result = checks.stable_log_softmax(fn, verbose=False)
        assert result.passed is False and UNDER_ANOTHER_NAME in result.message, result.message
        assert "kdtutor.kd.softmax.log_softmax" in result.message


def _define(source: str, name: str, filename: str = "<cell 7>"):
    """``name`` defined by ``source`` as a notebook cell defines it (its text readable by inspect)."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    ns: dict = {}
    exec(compile(source, filename, "exec"), ns)
    return ns[name]


def test_kdtutors_source_text_pasted_under_another_name_fails():
    """Without ``from __future__ import annotations`` (kdtutor's modules have it), reformatted, the
    docstring dropped: the same function."""
    text = inspect.getsource(sm.temperature_for_entropy).replace("def temperature_for_entropy(", "def mine(")
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith('"""'))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].strip().endswith('"""'))
    body = "\n".join(lines[:start] + ["    # my own bisection, honest"] + lines[end + 1:])
    source = "import math\nimport torch\nfrom kdtutor.kd.softmax import check_logits, entropy_from_logits\n\n" + body
    mine = _define(source, "mine")
    result = checks.temperature_for_entropy(mine, verbose=False)
    assert result.passed is False and UNDER_ANOTHER_NAME in result.message, result.message
    assert "kdtutor.kd.softmax.temperature_for_entropy" in result.message


def test_typing_the_hints_short_answer_is_no_copy_of_the_checks_reference():
    """The reference of paired_gain is the hint's answer: a learner who writes it (elsewhere) passes."""
    source = ("import statistics\n\ndef paired_gain(method_accs, kd_accs):\n"
              "    d = [m - k for m, k in zip(method_accs, kd_accs)]\n"
              "    return statistics.mean(d), statistics.stdev(d)\n")
    assert checks.paired_gain(_define(source, "paired_gain", "<cell 3>"), verbose=False).passed is True


def test_other_kdtutor_helpers_stay_allowed():
    """Lesson 02 uses kdtutor.kd.softmax.log_softmax in its own code: kl_batchmean's answer may too."""
    def kl_batchmean(s, t, T=1.0):
        log_p_t, log_p_s = sm.log_softmax(t, T=T), sm.log_softmax(s, T=T)
        return (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=-1).mean()

    assert checks.kl_batchmean(kl_batchmean, verbose=False).passed is True


def test_the_strict_form_for_nbgrader_refuses_the_copy_too():
    with pytest.raises(core.Failed, match=UNDER_ANOTHER_NAME):
        checks.require("stable_log_softmax", renamed(sm.log_softmax))
