"""Checks for lesson 07 (``07_distilling_a_language_model``): token-level KL, masking, top-k targets.

    reverse_kl_tokens      KL(student ‖ teacher) at every position, averaged over positions
    masked_token_mean      the mean of per-token values over real (unpadded) tokens only
    topk_renormalized_kl   forward KL to the teacher's top-k, renormalised

Each runs in float32 and float64 (compared with a float64 reference within the input's precision),
and fails an answer that changes an argument in place, one whose result has no gradient (the
three are losses, or the mean of one), and one that hides a NaN or inf at a real position.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from kdtutor.checks.core import (CheckResult, Failed, call_checked, dtype_name, expect_gradient, expect_non_finite_kept,
                                 expect_tensor_close, fmt, gradient_of, register, run_check, tolerance)
from kdtutor.lm.distill import masked_mean, reverse_kl, topk_from_logits, topk_kd_loss

register("reverse_kl_tokens",
         nudge="reverse KL puts the *student's* probabilities in front: Σ_v q_v (log q_v − log p_v), with "
               "log-probabilities from F.log_softmax over the last dimension; sum over the vocabulary, then "
               "average over the B·L positions.",
         answer="log_q, log_p = F.log_softmax(student_logits, -1), F.log_softmax(teacher_logits, -1); "
                "return (log_q.exp() * (log_q - log_p)).sum(-1).mean()")
register("masked_token_mean",
         nudge="select the real tokens (values[mask]) instead of multiplying by the mask: padding may hold inf or "
               "NaN, and inf · 0 is NaN. Divide by the number of real tokens, not by B·L.",
         answer="return values[mask].mean()")
register("topk_renormalized_kl",
         nudge="the stored top-k probabilities sum to less than 1: renormalise them (subtract their logsumexp "
               "from the log-probabilities). The student's log-probabilities come from a log_softmax over the "
               "*whole* vocabulary, then gather(-1, topk_indices).",
         answer="log_p = topk_logprobs - topk_logprobs.logsumexp(-1, keepdim=True); "
                "log_q = F.log_softmax(student_logits, -1).gather(-1, topk_indices); "
                "return (log_p.exp() * (log_p - log_q)).sum(-1).mean()")


RKL_ARGS = ("student_logits", "teacher_logits")
MEAN_ARGS = ("values", "mask")
TOPK_ARGS = ("student_logits", "topk_logprobs", "topk_indices")


def _close(got, want: torch.Tensor, atol=1e-5, rtol=1e-4) -> bool:
    return (isinstance(got, torch.Tensor) and got.shape == want.shape and bool(torch.isfinite(got).all())
            and torch.allclose(got.double(), want.double(), atol=atol, rtol=rtol))


def _expect(got, want: torch.Tensor, what: str, mistakes=(), atol=1e-5, rtol=1e-4) -> None:
    """Fail unless ``got`` is a scalar tensor close to ``want``; name a known mistake if it matches one."""
    if not isinstance(got, torch.Tensor):
        raise Failed(f"{what}: expected a torch.Tensor, got {type(got).__name__}")
    if got.numel() != 1:
        raise Failed(f"{what}: expected one number (a 0-dim tensor), got shape {tuple(got.shape)}")
    got = got.reshape(())
    if _close(got, want, atol, rtol):
        return
    for value, why in mistakes:
        if _close(got, value, atol, rtol):
            raise Failed(f"{what}: got {got.item():.5g}, expected {want.item():.5g}. {why}")
    if not torch.isfinite(got):
        raise Failed(f"{what}: got {got.item()}, expected {want.item():.5g}")
    raise Failed(f"{what}: got {got.item():.5g}, expected {want.item():.5g}")


def _logits(shape, seed, scale=2.0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(*shape, generator=g)).to(dtype), (scale * torch.randn(*shape, generator=g)).to(dtype)



# --------------------------------------------------------------------------- exercise 1
def reverse_kl_tokens(fn: Callable, verbose: bool = True) -> CheckResult:
    """``fn(student_logits (B, L, V), teacher_logits (B, L, V)) → KL(p_student ‖ p_teacher)``, summed over
    the vocabulary and averaged over the B·L positions (T = 1, no mask); a 0-dim tensor with gradients."""

    def reference(student_logits, teacher_logits):
        return reverse_kl(student_logits, teacher_logits)

    def test(f):
        cases = [("random logits (2, 3, 5)", *_logits((2, 3, 5), 70)),
                 ("one position, a confident student (1, 1, 4)", torch.tensor([[[6.0, 0, 0, 0]]]),
                  torch.tensor([[[1.0, 1.0, 0, 0]]])),
                 ("large logits (±200) (2, 2, 6)", *_logits((2, 2, 6), 71, scale=200.0)),
                 ("random logits (3, 2, 7)", *_logits((3, 2, 7), 73, dtype=torch.float64))]
        for what, s, t in cases:
            what = f"{what}, {dtype_name(s)}"
            sd, td = s.double(), t.double()
            want = reference(sd, td)
            log_q, log_p = F.log_softmax(sd, -1), F.log_softmax(td, -1)
            per = (log_q.exp() * (log_q - log_p)).sum(-1)
            mistakes = [((log_p.exp() * (log_p - log_q)).sum(-1).mean(),
                         "That is KL(teacher ‖ student), the forward direction: reverse KL weighs by the student's "
                         "probabilities q, not the teacher's p."),
                        (per.sum(), "You summed over the positions; average over them (every token weighs the same)."),
                        (per.mean() / s.shape[-1], "You also averaged over the vocabulary (reduction='mean' divides "
                                                   "by V): sum over characters, average over positions."),
                        (per.sum() / s.shape[0], "You divided by the batch size B only (reduction='batchmean' on a "
                                                 "(B, L, V) tensor); divide by the B·L positions.")]
            got = call_checked(f, what, RKL_ARGS, s.clone(), t.clone())
            _expect(got, want, what, mistakes, *tolerance(s, got))
        for what, dtype in [("gradient case (float32)", torch.float32), ("gradient case (float64)", torch.float64)]:
            s, t = _logits((2, 3, 5), 72, dtype=dtype)
            grad = gradient_of(f, (s, t.clone()), 0, RKL_ARGS, what)
            s2 = s.double().requires_grad_(True)
            (want,) = torch.autograd.grad(reference(s2, t.double()), s2)
            expect_gradient(grad, want, f"{what}, the gradient with respect to student_logits", *tolerance(s, grad))
        s, t = _logits((2, 3, 5), 74)
        t[0, 1, 2] = float("-inf")
        got = call_checked(f, "teacher −inf", RKL_ARGS, s.clone(), t.clone())
        expect_non_finite_kept(got, reference(s.double(), t.double()),
                               "a teacher logit of −inf (probability 0) where the student puts mass: KL = inf",
                               *tolerance(s, got))
        s[1, 0, 3] = float("nan")
        got = call_checked(f, "student NaN", RKL_ARGS, s.clone(), t.clone())
        expect_non_finite_kept(got, reference(s.double(), t.double()), "a NaN student logit at one position",
                               *tolerance(s, got))

    return run_check("reverse_kl_tokens", fn, reference, test, verbose, answer_key=(reverse_kl,))


# --------------------------------------------------------------------------- exercise 2
def masked_token_mean(fn: Callable, verbose: bool = True) -> CheckResult:
    """``fn(values (B, L) float, mask (B, L) bool) → the mean of values where mask is True`` (a 0-dim tensor).
    Padded positions may hold any value, inf and NaN included: they must not reach the result nor its
    gradient (which is 1 / (number of real tokens) at each real position, exactly 0 at padding); a NaN or
    inf at a *real* position must reach the result."""

    def reference(values, mask):
        return masked_mean(values, mask)

    def test(f):
        v = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])
        m = torch.tensor([[True, True, True, True], [True, False, False, False]])
        padded = v.clone()
        padded[~m] = torch.tensor([float("inf"), float("nan"), 0.0])
        cases = [("no padding", v, torch.ones_like(m)), ("a short second sequence", v, m),
                 ("inf and NaN at padded positions", padded, m),
                 ("inf and NaN at padded positions", padded.double(), m)]
        for what, values, mask in cases:
            what = f"{what}, {dtype_name(values)}"
            vd = values.double()
            want = reference(vd, mask)
            safe = torch.where(mask, vd, torch.zeros((), dtype=vd.dtype))
            per_seq = torch.stack([vd[i][mask[i]].mean() for i in range(len(vd))]).mean()
            mistakes = [(safe.mean(), "You divided by all B·L positions; divide by the number of real tokens, "
                                      "mask.sum()."),
                        (per_seq, "You averaged each sequence, then the sequences: a short sequence's tokens then "
                                  "weigh more. Every real token should weigh the same.")]
            got = call_checked(f, what, MEAN_ARGS, values.clone(), mask.clone())
            if (isinstance(got, torch.Tensor) and got.numel() == 1 and torch.isnan(got).all()
                    and not torch.isfinite(values[~mask]).all()):
                raise Failed(f"{what}: got NaN, expected {want.item():.5g}. Multiplying by the mask keeps "
                             "inf · 0 = NaN; select the real tokens instead (values[mask] or torch.where)")
            _expect(got, want, what, mistakes, *tolerance(values, got))
        for values in (padded, padded.double()):
            what = f"gradient case ({dtype_name(values)}, inf and NaN at padded positions)"
            grad = gradient_of(f, (values, m.clone()), 0, MEAN_ARGS, what)
            want = m.to(values.dtype) / m.sum()
            if grad.shape == want.shape and not torch.isfinite(grad[~m]).all():
                raise Failed(f"{what}: the gradient at the padded positions is {fmt(grad[~m])}, expected 0: NaN or "
                             "inf there would poison the whole update. Select the real tokens *before* computing "
                             "with them (values[mask], torch.where(mask, values, 0)), not after")
            expect_tensor_close(grad, want, f"{what}, the gradient with respect to values (1 / number of real "
                                "tokens at each real position, 0 at padding)", *tolerance(values, grad))
        for what, bad in [("a NaN at a real position", float("nan")), ("an inf at a real position", float("inf"))]:
            values = padded.clone()
            values[0, 2] = bad
            got = call_checked(f, what, MEAN_ARGS, values.clone(), m.clone())
            expect_non_finite_kept(got, reference(values.double(), m), what, *tolerance(values, got))

    return run_check("masked_token_mean", fn, reference, test, verbose, answer_key=(masked_mean,))


# --------------------------------------------------------------------------- exercise 3
def topk_renormalized_kl(fn: Callable, verbose: bool = True) -> CheckResult:
    """``fn(student_logits (..., V), topk_logprobs (..., k), topk_indices (..., k) int64)`` →
    ``Σ_i p̃_i (log p̃_i − log q_i)`` averaged over positions, where ``p̃`` is the teacher's top-k renormalised to
    sum to 1 and ``q_i`` the student's full-vocabulary softmax at the same characters (T = 1)."""

    def reference(student_logits, topk_logprobs, topk_indices):
        from kdtutor.lm.distill import TopK

        top = TopK(topk_logprobs, topk_indices, torch.zeros(topk_logprobs.shape[:-1]), 1.0, student_logits.shape[-1])
        return topk_kd_loss(student_logits, top, rest="renormalize")

    def targets(t, k):
        top = topk_from_logits(t, k)
        return top.logprobs, top.indices.long()

    def test(f):
        for what, shape, k, seed, dtype in [("(2, 3, 8) logits, k = 3", (2, 3, 8), 3, 80, torch.float32),
                                            ("(4, 10) logits, k = 1", (4, 10), 1, 81, torch.float32),
                                            ("(1, 2, 6) logits, k = V = 6", (1, 2, 6), 6, 82, torch.float32),
                                            ("(2, 2, 9) logits, k = 4", (2, 2, 9), 4, 83, torch.float64)]:
            s, t = _logits(shape, seed, dtype=dtype)
            what = f"{what}, {dtype_name(s)}"
            lp, idx = targets(t, k)
            sd, lpd = s.double(), lp.double()
            want = reference(sd, lpd, idx)
            p_raw, log_p = lpd.exp(), lpd - lpd.logsumexp(-1, keepdim=True)
            log_q_full = F.log_softmax(sd, -1).gather(-1, idx)
            log_q_k = F.log_softmax(sd.gather(-1, idx), -1)
            mistakes = [((p_raw * (lpd - log_q_full)).sum(-1).mean(),
                         "The teacher's top-k probabilities were not renormalised (they sum to less than 1)."),
                        ((log_p.exp() * (log_p - log_q_k)).sum(-1).mean(),
                         "You renormalised the student over the k characters too: then mass the student puts "
                         "outside the teacher's top k costs nothing. Use its full-vocabulary log_softmax."),
                        ((log_p.exp() * (log_p - F.log_softmax(sd, -1)[..., :k])).sum(-1).mean(),
                         "You took the student's first k characters; gather the ones the teacher kept "
                         "(topk_indices).")]
            got = call_checked(f, what, TOPK_ARGS, s.clone(), lp.clone(), idx.clone())
            _expect(got, want, what, mistakes, *tolerance(s, lp, got))
        for what, dtype in [("gradient case (float32)", torch.float32), ("gradient case (float64)", torch.float64)]:
            s, t = _logits((2, 3, 8), 84, dtype=dtype)
            lp, idx = targets(t, 3)
            grad = gradient_of(f, (s, lp.clone(), idx.clone()), 0, TOPK_ARGS, what)
            s2 = s.double().requires_grad_(True)
            (want,) = torch.autograd.grad(reference(s2, lp.double(), idx), s2)
            expect_gradient(grad, want, f"{what}, the gradient with respect to student_logits", *tolerance(s, grad))
        s, t = _logits((2, 3, 8), 85)
        lp, idx = targets(t, 3)
        s[0, 0, idx[0, 0, 1]] = float("-inf")
        got = call_checked(f, "student −inf", TOPK_ARGS, s.clone(), lp.clone(), idx.clone())
        expect_non_finite_kept(got, reference(s.double(), lp.double(), idx),
                               "a student logit of −inf (probability 0) at a character the teacher kept: KL = inf",
                               *tolerance(s, got))
        s[1, 2, 0] = float("nan")
        got = call_checked(f, "student NaN", TOPK_ARGS, s.clone(), lp.clone(), idx.clone())
        expect_non_finite_kept(got, reference(s.double(), lp.double(), idx), "a NaN student logit at one position",
                               *tolerance(s, got))

    return run_check("topk_renormalized_kl", fn, reference, test, verbose, answer_key=(topk_kd_loss,))
