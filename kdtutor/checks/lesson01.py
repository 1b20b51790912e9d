"""Checks for lesson 01 (``01_softmax_temperature``): stable log-softmax, entropy, a T finder."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from kdtutor.checks.core import (CheckResult, Failed, call_on_copies, expect_close_or_explain, expect_raises,
                                 python_number, register, run_check)

register("stable_log_softmax",
         nudge="divide the logits by T, subtract each row's own maximum before exponentiating, and stay in log "
               "space (never log(softmax(...))); work along the last dimension.",
         answer="z = logits / T; m = z.amax(dim=-1, keepdim=True) (each row's own maximum); return "
                "(z - m) - torch.log(torch.exp(z - m).sum(dim=-1, keepdim=True)). Never take log(softmax): "
                "tiny probabilities underflow to 0 and log 0 = -inf.")
register("entropy_nats",
         nudge="natural logarithm, sum over the last dimension only, 0·log 0 counts as 0 (floating point says "
               "NaN), and return a tensor.",
         answer="return -torch.special.xlogy(probs, probs).sum(dim=-1): H = -(p * log p).sum(dim=-1) with the "
                "natural log, and xlogy(p, p) is 0 where p = 0 (plain p * torch.log(p) gives 0 * (-inf) = NaN). "
                "Keep the result a tensor (no .item()).")
register("temperature_for_entropy",
         nudge="the entropy grows with T, so a bisection on log T finds it; first raise ValueError unless "
               "0 < target < log C (both ends excluded: no finite T reaches log C).",
         answer="if not 0 < target_entropy < math.log(C): raise ValueError(...). Then lo, hi = math.log(1e-3), "
                "math.log(1e3); 60 times: mid = (lo + hi) / 2; H = entropy of softmax(logits / exp(mid)); if H < "
                "target: lo = mid, else: hi = mid. Return math.exp((lo + hi) / 2).",
         points=2)  # a bisection and an input check: two steps


def stable_log_softmax(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise 1 of lesson 01: ``fn(logits, T)`` returns ``log softmax(logits / T)`` along the
    last dimension, for logits of shape ``(..., C)``, without overflow for large logits."""
    from kdtutor.kd.softmax import log_softmax

    def reference(logits: torch.Tensor, T: float = 1.0) -> torch.Tensor:
        return log_softmax(logits, T=T)

    g = torch.Generator().manual_seed(101)
    cases = [
        ("logits [[1, 2, 3]] at T = 1", torch.tensor([[1.0, 2.0, 3.0]]), 1.0),
        ("logits [[2, 1, 0.1, -1]] at T = 4 (softer)", torch.tensor([[2.0, 1.0, 0.1, -1.0]]), 4.0),
        ("logits [[2, 1, 0.1, -1]] at T = 0.5 (sharper)", torch.tensor([[2.0, 1.0, 0.1, -1.0]]), 0.5),
        ("a batch of shape (4, 10) at T = 2", 3 * torch.randn(4, 10, generator=g), 2.0),
        ("one vector of shape (5,) at T = 1", torch.randn(5, generator=g), 1.0),
        ("large logits [[1000, 999, -1000]] (exp(1000) is inf in float32)",
         torch.tensor([[1000.0, 999.0, -1000.0]]), 1.0),
        ("large logits [[500, 0, -500]] at T = 0.5", torch.tensor([[500.0, 0.0, -500.0]]), 0.5),
        ("two rows of very different scale [[1e4, 0, -1e4], [1, 2, 3]]",
         torch.tensor([[1e4, 0.0, -1e4], [1.0, 2.0, 3.0]]), 1.0),
    ]

    def test(f):
        for what, z, T in cases:
            got = call_on_copies(f, what, z, T)
            mistakes = [
                (torch.log_softmax(z, dim=-1) / T, "You divided the log-probabilities by T: divide the *logits* "
                                                   "by T before the log-sum-exp"),
                (torch.log_softmax(z, dim=-1), "The temperature was ignored: use z = logits / T"),
                (torch.log_softmax(z * T, dim=-1), "You multiplied the logits by T: divide them by T"),
                (torch.softmax(z / T, dim=-1), "These are probabilities: return their logarithm"),
            ]
            if z.ndim == 2:
                mistakes.append((torch.log_softmax(z / T, dim=0), "You normalised over the batch (dim 0): "
                                                                  "normalise each row, over dim=-1"))
            expect_close_or_explain(got, reference(z, T), what, mistakes, atol=1e-4, rtol=1e-5)

    return run_check("stable_log_softmax", fn, reference, test, verbose=verbose, answer_key=(log_softmax,))


def entropy_nats(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise 2 of lesson 01: ``fn(probs)`` returns the Shannon entropy ``−Σ p log p`` in nats
    over the last dimension: ``(..., C)`` probabilities → ``(...)`` entropies (a tensor; 0-d for
    one distribution), with ``0·log 0 = 0``."""
    from kdtutor.kd.softmax import entropy, entropy_from_logits, softmax

    def reference(probs: torch.Tensor) -> torch.Tensor:
        return entropy(probs)

    g = torch.Generator().manual_seed(102)
    cases = [
        ("uniform over 4 classes (expect log 4 = 1.3863)", torch.full((4,), 0.25)),
        ("one-hot [0, 1, 0, 0] (expect 0: 0·log 0 counts as 0)", torch.tensor([0.0, 1.0, 0.0, 0.0])),
        ("a batch of 3 rows with zeros in them",
         torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.7, 0.1, 0.1, 0.1], [1.0, 0.0, 0.0, 0.0]])),
        ("softmax of random logits, shape (2, 5, 10)", softmax(2 * torch.randn(2, 5, 10, generator=g))),
        ("tiny probabilities: softmax of [[0, -50, -100]]", softmax(torch.tensor([[0.0, -50.0, -100.0]]))),
    ]

    def test(f):
        for what, p in cases:
            got, want = call_on_copies(f, what, p), reference(p) + 0.0  # + 0.0 turns -0.0 into 0.0
            if not isinstance(got, torch.Tensor):
                raise Failed(f"{what}: got a {type(got).__name__}, expected a tensor (0-d for one distribution, "
                             "one entropy per row for a batch): drop .item() / float() / math.log; the lesson "
                             "calls .item() on your result later")
            mistakes = [
                (want / math.log(2), "That is in bits (log base 2): use the natural logarithm, torch.log"),
                (-want, "The sign is flipped: H = -Σ p log p is ≥ 0"),
            ]
            if p.ndim > 1:
                mistakes.append((want.sum(), "You summed over the whole batch: sum over the last dimension only"))
            expect_close_or_explain(got, want, what, mistakes, atol=1e-5, rtol=1e-4)

    return run_check("entropy_nats", fn, reference, test, verbose=verbose,
                     answer_key=(entropy, entropy_from_logits))


USUAL_T = (0.9, 50.0)  # the temperatures of everyday use; the last two cases need T outside them


def _entropy_cases() -> list[tuple[str, torch.Tensor, float]]:
    """``(description, logits (C,), target entropy in nats)`` for :func:`temperature_for_entropy`: the last
    two need T far below and far above :data:`USUAL_T`, so a search over a narrow range fails them."""
    cat = torch.tensor([-1.0, -2.0, 2.0, 9.0, 3.0, 6.5, 2.5, 1.5, -1.5, -2.5])
    g = torch.Generator().manual_seed(103)
    return [
        ("the lesson's cat logits, target 1.0 nat", cat, 1.0),
        ("cat logits, target 2.0 nats (close to log 10 = 2.303)", cat, 2.0),
        ("cat logits, target 0.3 nats (sharper than at T = 1)", cat, 0.3),
        ("6 random logits, target 1.2 nats", 2 * torch.randn(6, generator=g), 1.2),
        ("the cat logits × 20, target 1.0 nat (T should grow 20-fold too)", 20 * cat, 1.0),
        ("the cat logits / 10, target 0.3 nats (T ≈ 0.1)", cat / 10, 0.3),
        ("the cat logits × 100, target 1.0 nat (T ≈ 200)", 100 * cat, 1.0),
    ]


def temperature_for_entropy(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise 3 of lesson 01: ``fn(logits, target_entropy)`` returns the temperature ``T`` at which
    ``softmax(logits / T)`` has the given entropy (nats), for a ``(C,)`` logit vector, and raises
    ``ValueError`` unless ``0 < target_entropy < log C``. Correct to 1e-4 nats."""
    from kdtutor.kd.softmax import entropy_from_logits
    from kdtutor.kd.softmax import temperature_for_entropy as reference

    cases = _entropy_cases()

    def test(f):
        for what, z, target in cases:
            got = python_number(call_on_copies(f, what, z, target), what)
            if not math.isfinite(got) or got <= 0:
                raise Failed(f"{what}: expected a finite temperature T > 0, got {got!r}")
            h = float(entropy_from_logits(z.double(), T=got))
            if abs(h - target) > 1e-4:
                t_true = reference(z, target)
                where = ""
                if got < 1.1e-3 or got > 0.9e3:
                    where = " (the edge of the search range: is your bisection going the wrong way?)"
                elif (t_true < USUAL_T[0] and got > t_true) or (t_true > USUAL_T[1] and got < t_true):
                    where = (f" (this case needs T ≈ {t_true:.2g}, far from 1: does your search range reach it? "
                             "The task bisects on log T from 10⁻³ to 10³)")
                raise Failed(f"{what}: at your T = {got:.5g}{where} the entropy is {h:.5f} nats, not {target} "
                             f"(the answer is T = {t_true:.5g})")
        n = cases[0][1].numel()
        log_c = math.log(n)
        for bad, why in [(log_c + 0.1, f"above log C = {log_c:.3f}"),
                         (log_c, "exactly log C = math.log(10), the uniform distribution's entropy, which only "
                                 "T → ∞ reaches; compare with math.log(C), both ends excluded (log C computed in "
                                 "float32, e.g. torch.log(torch.tensor(10.)).item(), rounds up and lets it through)"),
                         (0.0, "zero"), (-1.0, "negative")]:
            expect_raises(lambda: f(cases[0][1].clone(), bad), ValueError,
                          f"target entropy {bad:.4g} ({why}: no temperature reaches it)")

    return run_check("temperature_for_entropy", fn, reference, test, verbose=verbose)
