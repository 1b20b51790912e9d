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
    _fails(C.reverse_kl_tokens, lambda s, t: answers.reverse_kl_tokens(s.detach(), t), "gradient case",
           "no gradient with respect to `student_logits`")


def test_reverse_kl_under_no_grad_fails():
    def no_grad(s, t):
        with torch.no_grad():
            return answers.reverse_kl_tokens(s, t)

    _fails(C.reverse_kl_tokens, no_grad, "no gradient with respect to `student_logits`", "torch.no_grad()")


def test_reverse_kl_normalising_the_logits_in_place_fails():
    def in_place(s, t):
        s.sub_(s.logsumexp(-1, keepdim=True))  # log_q, written over the caller's logits
        return (s.exp() * (s - _logp(t))).sum(-1).mean()

    def teacher_in_place(s, t):
        t -= t.logsumexp(-1, keepdim=True)
        return (_logp(s).exp() * (_logp(s) - t)).sum(-1).mean()

    _fails(C.reverse_kl_tokens, in_place, "changed its argument `student_logits` in place")
    _fails(C.reverse_kl_tokens, teacher_in_place, "changed its argument `teacher_logits` in place")


def test_reverse_kl_hiding_nan_or_inf_fails():
    _fails(C.reverse_kl_tokens, lambda s, t: answers.reverse_kl_tokens(s, t).nan_to_num(), "hides it")
    _fails(C.reverse_kl_tokens, lambda s, t: answers.reverse_kl_tokens(s, t).nan_to_num(posinf=float("inf")),
           "NaN student logit", "hides it")

    def clamped(s, t):  # a "safe" log that turns KL = inf into a large number
        log_q, log_p = _logp(s), _logp(t).clamp_min(-1e4)
        return (log_q.exp() * (log_q - log_p)).sum(-1).mean()

    _fails(C.reverse_kl_tokens, clamped, "teacher logit of −inf", "hides it")


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


def test_masked_mean_without_a_gradient_fails():
    _fails(C.masked_token_mean, lambda v, m: torch.tensor(v[m].mean().item()), "gradient case",
           "no gradient with respect to `values`", ".item()")


def test_zeroing_the_padding_in_place_fails():
    def in_place(v, m):
        v[~m] = 0
        return v.sum() / m.sum()

    def masked_fill_(v, m):
        return v.masked_fill_(~m, 0).sum() / m.sum()

    def same_values(v, m):  # rewrites the mask with the values it had: the version counter sees it
        m &= m
        return v[m].mean()

    _fails(C.masked_token_mean, in_place, "changed its argument `values` in place")
    _fails(C.masked_token_mean, masked_fill_, "changed its argument `values` in place", "masked_fill")
    _fails(C.masked_token_mean, same_values, "changed its argument `mask` in place")


def test_masked_mean_whose_gradient_at_padding_is_nan_fails():
    def select_after(v, m):  # the right value, but exp(inf) at a padded position reaches the gradient
        return torch.where(m, v.exp(), 1.0).log().sum() / m.sum()

    _fails(C.masked_token_mean, select_after, "gradient at the padded positions", "Select the real tokens")


def test_masked_mean_hiding_nan_or_inf_at_real_positions_fails():
    _fails(C.masked_token_mean, lambda v, m: torch.where(m & v.isfinite(), v, 0).sum() / m.sum(),
           "a NaN at a real position", "hides it")
    _fails(C.masked_token_mean, lambda v, m: torch.nanmean(torch.where(m, v, float("nan"))),
           "a NaN at a real position", "hides it")
    _fails(C.masked_token_mean, lambda v, m: v[m].nan_to_num().mean(), "a NaN at a real position", "hides it")
    _fails(C.masked_token_mean, lambda v, m: v[m].clamp(-1e6, 1e6).mean(), "an inf at a real position", "hides it")


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


def test_topk_without_a_gradient_fails():
    _fails(C.topk_renormalized_kl, lambda s, lp, idx: answers.topk_renormalized_kl(s.detach(), lp, idx),
           "gradient case", "no gradient with respect to `student_logits`")


def test_renormalising_the_teacher_in_place_fails():
    def in_place(s, lp, idx):
        lp -= lp.logsumexp(-1, keepdim=True)
        return (lp.exp() * (lp - _logp(s).gather(-1, idx))).sum(-1).mean()

    _fails(C.topk_renormalized_kl, in_place, "changed its argument `topk_logprobs` in place")


def test_topk_hiding_nan_or_inf_fails():
    _fails(C.topk_renormalized_kl, lambda s, lp, idx: torch.nan_to_num(answers.topk_renormalized_kl(s, lp, idx)),
           "hides it")

    def clamped(s, lp, idx):
        log_p = lp - lp.logsumexp(-1, keepdim=True)
        return (log_p.exp() * (log_p - _logp(s).gather(-1, idx).clamp_min(-30))).sum(-1).mean()

    _fails(C.topk_renormalized_kl, clamped, "student logit of −inf", "hides it")


# --------------------------------------------------------------------------- float32 and float64
def test_correct_answers_computed_in_float32_pass_and_every_check_tries_both_precisions():
    assert C.reverse_kl_tokens(lambda s, t: answers.reverse_kl_tokens(s.float(), t.float()), verbose=False).passed
    assert C.masked_token_mean(lambda v, m: answers.masked_token_mean(v.float(), m), verbose=False).passed
    assert C.topk_renormalized_kl(lambda s, lp, idx: answers.topk_renormalized_kl(s.float(), lp.float(), idx),
                                  verbose=False).passed

    def wrong_in(dtype, right):
        return lambda x, *rest: (2 if x.dtype == dtype else 1) * right(x, *rest)

    for dtype in (torch.float32, torch.float64):
        name = str(dtype).removeprefix("torch.")
        _fails(C.reverse_kl_tokens, wrong_in(dtype, answers.reverse_kl_tokens), name)
        _fails(C.masked_token_mean, wrong_in(dtype, answers.masked_token_mean), name)
        _fails(C.topk_renormalized_kl, wrong_in(dtype, answers.topk_renormalized_kl), name)


@pytest.mark.parametrize("name", NAMES)
def test_the_answer_the_hint_shows_passes(name):
    params = {"reverse_kl_tokens": "student_logits, teacher_logits", "masked_token_mean": "values, mask",
              "topk_renormalized_kl": "student_logits, topk_logprobs, topk_indices"}[name]
    body = "\n    ".join(C.answer(name, verbose=False).split("; "))
    namespace = {"F": F, "torch": torch}
    exec(f"def answer({params}):\n    {body}", namespace)
    assert getattr(C, name)(namespace["answer"], verbose=False).passed is True
