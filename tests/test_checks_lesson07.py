"""Lesson 07's checks (kdtutor.checks.lesson07): each reference answer passes, a stub is 'not
attempted' and falls back to kdtutor's reference, typical wrong answers fail with a specific
message, and the second failure shows the answer."""

import inspect

import pytest
import torch
import torch.nn.functional as F

import solutions.lesson07 as answers
from kdtutor import checks as C
from kdtutor.checks import core, lesson07
from kdtutor.lm import distill as D

# a wrong answer below uses reduction="mean" on purpose; PyTorch warns about it
pytestmark = pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")

NAMES = ["reverse_kl_tokens", "masked_token_mean", "topk_renormalized_kl"]


@pytest.fixture(autouse=True)
def _fresh():
    C.reset()
    yield
    C.reset()


def stub(*args, **kwargs):
    raise NotImplementedError


def test_the_module_holds_exactly_the_lessons_checks_with_answers_of_the_same_name():
    own = {n for n, f in inspect.getmembers(lesson07, inspect.isfunction)
           if list(inspect.signature(f).parameters)[:2] == ["fn", "verbose"] and f.__module__ == lesson07.__name__}
    solved = {n for n, f in inspect.getmembers(answers, inspect.isfunction) if f.__module__ == answers.__name__}
    assert own == solved == set(NAMES) and set(NAMES) <= set(core.HINTS)


@pytest.mark.parametrize("name", NAMES)
def test_reference_answer_passes(name):
    result = getattr(C, name)(getattr(answers, name), verbose=False)
    assert result.passed is True and result.fn is getattr(answers, name), result.message


@pytest.mark.parametrize("name", NAMES)
def test_stub_is_not_attempted_and_falls_back_to_a_passing_reference(name, capsys, monkeypatch):
    result = getattr(C, name)(stub)
    assert result.passed is None and result.fn is not stub
    assert "not attempted" in capsys.readouterr().out
    assert "write it yourself" in getattr(C, name)(result.fn, verbose=False).message  # not the learner's answer
    monkeypatch.setattr(core, "refuse_answer_key", lambda fn, check, answers: fn)
    assert getattr(C, name)(result.fn, verbose=False).passed is True


@pytest.mark.parametrize("name", NAMES)
def test_first_failure_nudges_second_shows_the_answer(name):
    def crashes(*args):
        raise RuntimeError("a bug")

    nudge, full = core.HINTS[name].nudge, core.HINTS[name].answer
    first = getattr(C, name)(crashes, verbose=False)
    assert first.passed is False and nudge in first.message and full not in first.message
    second = getattr(C, name)(crashes, verbose=False)
    assert f"Answer: {full}" in second.message and C.answer(name, verbose=False) == full
    with pytest.raises(ValueError, match="no exercise check is named"):
        C.answer("nope")


def test_fallbacks_compute_the_right_thing():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 3, 6, generator=g), torch.randn(2, 3, 6, generator=g)
    torch.testing.assert_close(C.reverse_kl_tokens(stub, verbose=False).fn(s, t), D.reverse_kl(s, t))
    v, m = torch.randn(2, 3, generator=g), torch.tensor([[True, False, True], [False, False, True]])
    torch.testing.assert_close(C.masked_token_mean(stub, verbose=False).fn(v, m), v[m].mean())
    top = D.topk_from_logits(t, 6)
    torch.testing.assert_close(C.topk_renormalized_kl(stub, verbose=False).fn(s, top.logprobs, top.indices.long()),
                               D.forward_kl(s, t))


def _fails(check, fn, *fragments):
    r = check(fn, verbose=False)
    assert r.passed is False, r.message
    for fragment in fragments:
        assert fragment in r.message, r.message
    assert "Hint:" in r.message
    return r


# --------------------------------------------------------------------------- reverse_kl_tokens
def _logp(z):
    return F.log_softmax(z, -1)


def test_forward_direction_fails():
    _fails(C.reverse_kl_tokens, lambda s, t: (_logp(t).exp() * (_logp(t) - _logp(s))).sum(-1).mean(),
           "forward direction")


def test_f_kl_div_with_the_usual_argument_order_is_forward_kl_and_fails():
    _fails(C.reverse_kl_tokens, lambda s, t: F.kl_div(_logp(s), _logp(t), reduction="none", log_target=True)
           .sum(-1).mean(), "forward direction")


def test_summing_over_positions_fails():
    _fails(C.reverse_kl_tokens, lambda s, t: (_logp(s).exp() * (_logp(s) - _logp(t))).sum(), "summed over the positions")


def test_reduction_mean_over_the_vocabulary_fails():
    _fails(C.reverse_kl_tokens, lambda s, t: F.kl_div(_logp(t), _logp(s), reduction="mean", log_target=True),
           "averaged over the vocabulary")


def test_batchmean_on_three_dimensions_fails():
    _fails(C.reverse_kl_tokens, lambda s, t: F.kl_div(_logp(t), _logp(s), reduction="batchmean", log_target=True),
           "batch size B only")


def test_log_of_softmax_fails_on_large_logits():
    def naive(s, t):
        q, p = torch.softmax(s, -1), torch.softmax(t, -1)
        return (q * (q.log() - p.log())).sum(-1).mean()

    _fails(C.reverse_kl_tokens, naive, "large logits")


def test_detached_result_fails_the_gradient_case():
    _fails(C.reverse_kl_tokens, lambda s, t: answers.reverse_kl_tokens(s.detach(), t), "not connected")


# --------------------------------------------------------------------------- masked_token_mean
def test_mean_over_all_positions_fails():
    _fails(C.masked_token_mean, lambda v, m: (v * m).mean(), "number of real tokens")


def test_multiplying_by_the_mask_gives_nan_with_inf_padding():
    _fails(C.masked_token_mean, lambda v, m: (v * m).sum() / m.sum(), "inf · 0 = NaN")


def test_mean_of_sequence_means_fails():
    _fails(C.masked_token_mean, lambda v, m: torch.stack([v[i][m[i]].mean() for i in range(len(v))]).mean(),
           "each sequence")


def test_ignoring_the_mask_fails():
    _fails(C.masked_token_mean, lambda v, m: v.mean(), "a short second sequence")


# --------------------------------------------------------------------------- topk_renormalized_kl
def test_unrenormalised_teacher_fails():
    _fails(C.topk_renormalized_kl, lambda s, lp, idx: (lp.exp() * (lp - _logp(s).gather(-1, idx))).sum(-1).mean(),
           "not renormalised")


def test_renormalising_the_student_over_k_fails():
    def both(s, lp, idx):
        log_p = lp - lp.logsumexp(-1, keepdim=True)
        return (log_p.exp() * (log_p - _logp(s.gather(-1, idx)))).sum(-1).mean()

    _fails(C.topk_renormalized_kl, both, "renormalised the student")


def test_first_k_instead_of_the_teachers_indices_fails():
    def first_k(s, lp, idx):
        log_p = lp - lp.logsumexp(-1, keepdim=True)
        return (log_p.exp() * (log_p - _logp(s)[..., :lp.shape[-1]])).sum(-1).mean()

    _fails(C.topk_renormalized_kl, first_k, "first k characters")


def test_summing_over_positions_in_topk_fails():
    def summed(s, lp, idx):
        return answers.topk_renormalized_kl(s, lp, idx) * s[..., 0].numel()

    _fails(C.topk_renormalized_kl, summed, "expected")
