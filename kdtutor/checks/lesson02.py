"""Checks for lesson 02 (``02_losses_ce_kl_mse``): batch-mean KL, the combined loss, a fixed snippet.

Every exercise takes the student's logits first, then the teacher's (like
``F.kl_div(input, target)``), and must return a loss connected to the student's logits.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from kdtutor.checks.core import (CheckResult, call_on_copies, expect_close_or_explain, expect_student_gradient,
                                 register, run_check, scalar_result)

register("kl_batchmean",
         nudge="KL(p ‖ q) = Σ_c p_c (log p_c − log q_c): p from the teacher (the second argument), q from the "
               "student (the first), both softened by T; sum over classes, mean over the batch; stay in log "
               "space and return a tensor still connected to student_logits.",
         answer="logq = torch.log_softmax(student_logits / T, dim=1); logp = torch.log_softmax(teacher_logits / T, "
                "dim=1); return (logp.exp() * (logp - logq)).sum(dim=1).mean(). (Or F.kl_div(logq, logp, "
                "reduction='batchmean', log_target=True).) No T² here: that belongs to the distillation term.")
register("kd_term",
         nudge="the snippet has three bugs from the gallery: what F.kl_div expects as its first argument, what "
               "reduction='mean' divides by, and a missing factor.",
         answer="return F.kl_div(F.log_softmax(student_logits / T, dim=1), F.log_softmax(teacher_logits / T, dim=1), "
                "reduction='batchmean', log_target=True) * T**2: log-probabilities for the student (input), the "
                "teacher as the target, batch-mean, and T².")
register("combined_kd_loss",
         nudge="in this course α weighs the distillation term T²·KL (at temperature T); the cross-entropy with the "
               "labels uses the student's ordinary logits (T = 1) and gets 1 − α.",
         answer="return (1 - alpha) * F.cross_entropy(student_logits, labels) + alpha * T**2 * "
                "kl_batchmean(student_logits, teacher_logits, T), with kl_batchmean the batch-mean "
                "KL(softmax(teacher / T) ‖ softmax(student / T)) of exercise 1.",
         points=2)  # two terms, two temperatures, a gradient check

NAN_HINT = ("NaN usually comes from log(0) = -inf (a probability that underflowed to 0, e.g. "
            "softmax(...).log()) multiplied by 0: take log_softmax instead")
INF_HINT = ("The KL is finite here: inf means a term p·(log p − log q) was made infinite where the student's "
            "probability q underflowed to exactly 0 although its log-probability is finite (hundreds of nats below "
            "0 here) — e.g. by softmax(...).log(), or by torch.distributions' kl_divergence, which sets every term "
            "with q = 0 to inf. Compute the log-probabilities with log_softmax and stay in log space")


def _pair(n: int, c: int, seed: int, scale: float = 3.0):
    """Student and teacher logits ``(n, c)`` for the lesson 02 checks (fixed seed)."""
    g = torch.Generator().manual_seed(seed)
    teacher = scale * torch.randn(n, c, generator=g)
    student = scale * torch.randn(n, c, generator=g)
    return student, teacher


def _cases():
    """``(description, student, teacher, T)``: several shapes and temperatures, equal inputs, large logits."""
    s, t = _pair(4, 5, 201)
    s100, t100 = _pair(3, 100, 202)
    s1, t1 = _pair(1, 10, 203)
    return [
        ("N = 4, C = 5 at T = 1", s, t, 1.0),
        ("the same logits at T = 4", s, t, 4.0),
        ("C = 100 classes, N = 3, at T = 2", s100, t100, 2.0),
        ("a single example (N = 1) at T = 8", s1, t1, 8.0),
        ("identical teacher and student (expect 0)", t.clone(), t, 3.0),
        ("large logits ±1000 at T = 1 (exp overflows, probabilities underflow to 0)",
         torch.tensor([[0.0, 1000.0, -1000.0], [5.0, 1000.0, 0.0]]),
         torch.tensor([[1000.0, 0.0, -1000.0], [0.0, 1000.0, -1000.0]]), 1.0),
    ]


def _kl(s: torch.Tensor, t: torch.Tensor, T: float, reduction: str = "batchmean") -> torch.Tensor:
    """KL(softmax(t/T) ‖ softmax(s/T)) computed by torch.nn.functional (the independent reference)."""
    return F.kl_div(torch.log_softmax(s / T, 1), torch.log_softmax(t / T, 1), reduction=reduction, log_target=True)


def _soft_ce(s: torch.Tensor, t: torch.Tensor, T: float) -> torch.Tensor:
    return -(torch.softmax(t / T, 1) * torch.log_softmax(s / T, 1)).sum(1).mean()


def _kl_mistakes(s: torch.Tensor, t: torch.Tensor, T: float, scale: float, soft_ce_why: str) -> list:
    """Values that typical wrong KL implementations give, times ``scale`` (computed with torch.nn.functional)."""
    n, c = t.shape
    kl = _kl(s, t, T)
    return [
        (scale * _kl(t, s, T),
         "That is the reverse KL(q ‖ p): the teacher's probabilities p must weight the sum, Σ p (log p − log q). "
         "The student comes first and the teacher second (like F.kl_div(input, target)): did you swap them?"),
        (scale * kl / c, "You averaged over the classes too (like reduction='mean'): sum over classes, "
                         "mean over the batch only ('batchmean')"),
        (scale * kl * n, "You summed over the batch: divide by the batch size N"),
        (scale * _kl(s, t, 1.0), "The temperature is missing: soften both, softmax(logits / T)"),
        (scale * F.kl_div(torch.softmax(s / T, 1), torch.softmax(t / T, 1), reduction="batchmean"),
         "F.kl_div's first argument must be log-probabilities (log_softmax), not probabilities"),
        (scale * _soft_ce(s, t, T), soft_ce_why),
    ]


SOFT_CE_WHY = ("That is the soft cross-entropy H(p, q) = −Σ p log q = H(p) + KL(p ‖ q): it has the KL's gradient but "
               "not its value (it bottoms out at the teacher's entropy H(p), not 0). Use Σ p (log p − log q)")
TUTORIAL_WHY = ("That is the form of earlier revisions of the PyTorch KD tutorial, −Σ p log q / N · T² = "
                "T²·(H(p) + KL): the same gradient, but its value carries the constant T²·H(p) and is not 0 when the "
                "student matches the teacher. The snippet asks for T²·KL: use F.kl_div with log-probabilities")


def kl_batchmean(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise 1 of lesson 02: ``fn(student_logits, teacher_logits, T)`` returns
    ``KL(p ‖ q)`` with ``p = softmax(teacher/T)``, ``q = softmax(student/T)``, summed over classes
    and averaged over the batch, for ``(N, C)`` logits, differentiable with respect to the student's."""
    from kdtutor.kd.losses import kl_divergence

    def reference(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float = 1.0) -> torch.Tensor:
        return kl_divergence(student_logits, teacher_logits, T=T)

    def test(f):
        for what, s, t, T in _cases():
            got = scalar_result(call_on_copies(f, what, s, t, T), what)
            mistakes = _kl_mistakes(s, t, T, 1.0, SOFT_CE_WHY) + [
                (T * T * _kl(s, t, T), "You multiplied by T²: kl_batchmean is the plain KL; the T² factor belongs "
                                       "to the distillation term (exercises 2 and 3)"),
            ]
            expect_close_or_explain(got, reference(s, t, T), what, mistakes, atol=1e-5, rtol=1e-4,
                                    nan_hint=NAN_HINT, inf_hint=INF_HINT)
        _, s, t, T = _cases()[1]
        p, q = torch.softmax(t / T, dim=1), torch.softmax(s / T, dim=1)
        expect_student_gradient(f, (s, t, T), (q - p) / (T * s.shape[0]), "N = 4, C = 5, T = 4")

    return run_check("kl_batchmean", fn, reference, test, verbose=verbose, answer_key=(kl_divergence,))


def kd_term(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise 3 of lesson 02 (fix the buggy snippet): ``fn(student_logits, teacher_logits, T)``
    returns ``T² · KL(softmax(teacher/T) ‖ softmax(student/T))``, batch-mean, differentiable
    with respect to the student's logits."""
    from kdtutor.kd.losses import distillation_loss, kd_loss

    def reference(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float) -> torch.Tensor:
        return kd_loss(student_logits, teacher_logits, T=T)

    def test(f):
        for what, s, t, T in _cases():
            got = scalar_result(call_on_copies(f, what, s, t, T), what)
            mistakes = _kl_mistakes(s, t, T, T * T, TUTORIAL_WHY) + [
                (reference(s, t, T) / (T * T), "The T² factor is missing: without it the gradient shrinks "
                                               "like 1/T² as T grows"),
                (reference(s, t, T) / T, "Multiply by T², not by T"),
            ]
            expect_close_or_explain(got, reference(s, t, T), what, mistakes, atol=1e-5, rtol=1e-4,
                                    nan_hint=NAN_HINT, inf_hint=INF_HINT)
        # the gradient reaching the student: T (q − p) / N
        _, s, t, T = _cases()[1]
        p, q = torch.softmax(t / T, dim=1), torch.softmax(s / T, dim=1)
        expect_student_gradient(f, (s, t, T), T * (q - p) / s.shape[0], "N = 4, C = 5, T = 4")

    return run_check("kd_term", fn, reference, test, verbose=verbose, answer_key=(kd_loss, distillation_loss))


def combined_kd_loss(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise 2 of lesson 02: ``fn(student_logits, teacher_logits, labels, T, alpha)`` returns
    ``(1 − α)·CE(labels, student) + α·T²·KL(softmax(teacher/T) ‖ softmax(student/T))``
    (this course's convention: α weighs the distillation term), differentiable with respect to
    the student's logits."""
    from kdtutor.kd.losses import distillation_loss, kd_loss

    def reference(student_logits, teacher_logits, labels, T: float = 4.0, alpha: float = 0.9) -> torch.Tensor:
        return distillation_loss(student_logits, teacher_logits, labels, T=T, alpha=alpha)

    s, t = _pair(6, 10, 204)
    s100, t100 = _pair(3, 100, 205)
    y = torch.randint(0, 10, (6,), generator=torch.Generator().manual_seed(206))
    y100 = torch.tensor([5, 50, 99])
    big_t = torch.tensor([[1000.0, 0.0, -1000.0], [0.0, 1000.0, -1000.0]])
    big_s = torch.tensor([[0.0, 1000.0, -1000.0], [5.0, 1000.0, 0.0]])
    cases = [
        ("N = 6, C = 10, T = 4, α = 0.9", s, t, y, 4.0, 0.9),
        ("α = 0 (labels only: plain cross-entropy)", s, t, y, 4.0, 0.0),
        ("α = 1 (teacher only: T²·KL)", s, t, y, 2.0, 1.0),
        ("T = 1, α = 0.5", s, t, y, 1.0, 0.5),
        ("C = 100 classes, T = 3, α = 0.7", s100, t100, y100, 3.0, 0.7),
        ("large logits ±1000, T = 2, α = 0.5", big_s, big_t, torch.tensor([0, 2]), 2.0, 0.5),
    ]

    def test(f):
        for what, s_, t_, y_, T, a in cases:
            got = scalar_result(call_on_copies(f, what, s_, t_, y_, T, a), what)
            ce = F.cross_entropy(s_, y_)
            kl = _kl(s_, t_, T)
            mistakes = [
                (a * ce + (1 - a) * T * T * kl, "Your α weighs the cross-entropy (torchdistill's and the Keras "
                                                "example's convention); here α weighs the distillation term"),
                ((1 - a) * ce + a * kl, "The T² factor on the KL term is missing"),
                ((1 - a) * F.cross_entropy(s_ / T, y_) + a * T * T * kl,
                 "The cross-entropy uses the student's ordinary logits (T = 1); only the KL term is softened"),
                ((1 - a) * ce + a * T * T * kl / s_.shape[1], "The KL term is divided by C (reduction='mean'): "
                                                              "use batch-mean"),
                ((1 - a) * ce + a * T * T * _kl(t_, s_, T),
                 "The KL is reversed: KL(teacher ‖ student), with the teacher's probabilities as weights"),
                ((1 - a) * ce + a * T * T * _soft_ce(s_, t_, T),
                 "Your distillation term is T²·soft cross-entropy = T²·(H(p) + KL) (the form of earlier revisions "
                 "of the PyTorch KD tutorial): "
                 "the same gradient, but the value carries α·T²·H(p); use the KL"),
            ]
            expect_close_or_explain(got, reference(s_, t_, y_, T, a), what, mistakes, atol=1e-5, rtol=1e-4,
                                    nan_hint=NAN_HINT, inf_hint=INF_HINT)
        T, a = 4.0, 0.9
        q1, q, p = torch.softmax(s, 1), torch.softmax(s / T, 1), torch.softmax(t / T, 1)
        want = ((1 - a) * (q1 - F.one_hot(y, 10)) + a * T * (q - p)) / s.shape[0]
        expect_student_gradient(f, (s, t, y, T, a), want, "N = 6, C = 10, T = 4, α = 0.9")

    return run_check("combined_kd_loss", fn, reference, test, verbose=verbose,
                     answer_key=(distillation_loss, kd_loss))
