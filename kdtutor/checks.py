"""Exercise checks: each runs your function on test cases and prints ✓ or ✗ with a hint.

Use in a lesson::

    def my_softmax(logits, T=1.0):
        raise NotImplementedError  # your code here

    my_softmax = checks.softmax_with_temperature(my_softmax).fn

A check returns a :class:`CheckResult`. Its ``fn`` is your function when it passed,
and kdtutor's reference otherwise, so the lesson always continues. A stub that
still raises ``NotImplementedError`` counts as "not attempted", not as a failure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch


@dataclass
class CheckResult:
    """``passed`` is True, False, or None (not attempted); ``fn`` is what the lesson uses next."""

    name: str
    passed: bool | None
    message: str
    fn: Callable

    def __bool__(self) -> bool:
        return bool(self.passed)


class Failed(AssertionError):
    """Raised inside a check when a case fails; its message is shown to the learner."""


def run_check(name: str, fn: Callable, reference: Callable, test: Callable[[Callable], None],
              hint: str, verbose: bool = True) -> CheckResult:
    """Run ``test(fn)``; report ✓, ✗ (with ``hint``) or "not attempted"; return a :class:`CheckResult`.

    ``test`` raises :class:`Failed` with a specific message at the first wrong case.
    Any other exception raised by the learner's code counts as a failure too.
    """
    try:
        test(fn)
    except NotImplementedError:
        result = CheckResult(name, None, f"… {name}: not attempted yet (the stub raises NotImplementedError). "
                                         "The lesson continues with kdtutor's reference.", reference)
    except Failed as e:
        result = CheckResult(name, False, f"✗ {name}: {e}\n  Hint: {hint}\n"
                                          "  The lesson continues with kdtutor's reference.", reference)
    except Exception as e:  # the learner's code crashed
        result = CheckResult(name, False, f"✗ {name}: your function raised {type(e).__name__}: {e}\n"
                                          f"  Hint: {hint}\n  The lesson continues with kdtutor's reference.",
                             reference)
    else:
        result = CheckResult(name, True, f"✓ {name}: all cases pass.", fn)
    if verbose:
        print(result.message)
    return result


# --------------------------------------------------------------------------- helpers
def _fmt(x) -> str:
    if isinstance(x, torch.Tensor):
        if x.numel() > 8:
            return f"tensor of shape {tuple(x.shape)}"
        return str([round(v, 4) for v in x.detach().flatten().tolist()])
    return repr(x)


def expect_tensor_close(got, want: torch.Tensor, what: str, atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Fail unless ``got`` is a finite tensor of ``want``'s shape and close to it."""
    if not isinstance(got, torch.Tensor):
        raise Failed(f"{what}: expected a torch.Tensor, got {type(got).__name__}")
    if tuple(got.shape) != tuple(want.shape):
        raise Failed(f"{what}: result has shape {tuple(got.shape)}, expected {tuple(want.shape)}")
    if not torch.isfinite(got).all():
        raise Failed(f"{what}: result contains NaN or inf: {_fmt(got)}")
    if not torch.allclose(got.double(), want.double(), atol=atol, rtol=rtol):
        raise Failed(f"{what}: got {_fmt(got)}, expected {_fmt(want)}")


def expect_number_close(got, want: float, what: str, rel: float = 1e-4, abs_: float = 1e-6) -> None:
    """Fail unless ``got`` is a number (or one-element tensor) close to ``want``."""
    if isinstance(got, torch.Tensor):
        if got.numel() != 1:
            raise Failed(f"{what}: expected a single number, got a tensor of shape {tuple(got.shape)}")
        got = got.item()
    if not isinstance(got, (int, float)):
        raise Failed(f"{what}: expected a number, got {type(got).__name__}")
    if not math.isclose(float(got), want, rel_tol=rel, abs_tol=abs_):
        raise Failed(f"{what}: got {got:.6g}, expected {want:.6g}")


def expect_raises(fn: Callable, exc: type, what: str) -> None:
    """Fail unless calling ``fn()`` raises ``exc``."""
    try:
        fn()
    except exc:
        return
    except NotImplementedError:
        raise
    except Exception as e:
        raise Failed(f"{what}: raised {type(e).__name__} ({e}), expected {exc.__name__}") from None
    raise Failed(f"{what}: nothing was raised, expected {exc.__name__}")


# =========================================================================== lesson 01
# (checks for 01_softmax_temperature; the warm-up exercise of 00_welcome lives here too)
def _call_on_copies(f: Callable, what: str, *args):
    """Call the learner's ``f`` on copies of ``args``; fail if it changed a tensor argument in place."""
    copies = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
    got = f(*copies)
    for a, c in zip(args, copies):
        if isinstance(a, torch.Tensor) and not torch.equal(a, c.detach()):
            raise Failed(f"{what}: your function changed its input tensor in place (e.g. `z -= z.max()`); "
                         "compute a new tensor instead (`z = z - z.max(...)`) so the caller's data stay intact")
    return got


def _close(got, value, atol: float, rtol: float) -> bool:
    """Whether ``got`` is a finite number or tensor close to ``value`` (of the same shape)."""
    try:
        got_t = torch.as_tensor(got, dtype=torch.float64)
        value_t = torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        return False
    return (got_t.shape == value_t.shape and bool(torch.isfinite(got_t).all())
            and torch.allclose(got_t, value_t, atol=atol, rtol=rtol))


def _expect_close_or_explain(got, want, what: str, mistakes=(), atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Fail unless ``got`` is close to ``want``; if it matches a known mistake, say which.

    ``want``: a tensor, or a number / one-element tensor for a scalar result.
    ``mistakes``: ``(value that mistake produces, explanation)`` pairs, consulted only on failure.
    """
    try:
        if isinstance(want, torch.Tensor) and want.ndim > 0:
            expect_tensor_close(got, want, what, atol=atol, rtol=rtol)
        else:
            expect_number_close(got, float(want), what, rel=rtol, abs_=atol)
    except Failed as e:
        for value, why in mistakes:
            if _close(got, value, atol, rtol):
                raise Failed(f"{e}. {why}") from None
        raise


def warmup_argmax(fn: Callable, verbose: bool = True) -> CheckResult:
    """Warm-up of lesson 00: ``fn(logits)`` returns the position (a Python ``int``) of the
    largest entry of a ``(C,)`` tensor of logits."""

    def reference(logits: torch.Tensor) -> int:
        return int(torch.argmax(logits))

    cases = [
        ("logits [0.1, 2.0, -1.0]", [0.1, 2.0, -1.0]),
        ("all-negative logits [-5.0, -0.5, -3.0]", [-5.0, -0.5, -3.0]),
        ("the largest last, [1.0, 2.0, 3.0, 4.0]", [1.0, 2.0, 3.0, 4.0]),
        ("large logits [10000, -10000, 10008, 9999]", [1e4, -1e4, 1e4 + 8, 9999.0]),
    ]

    def test(f):
        for what, values in cases:
            z = torch.tensor(values)
            got, want = _call_on_copies(f, what, z), reference(z)
            if isinstance(got, torch.Tensor):
                if got.numel() != 1:
                    raise Failed(f"{what}: expected one index, got a tensor of shape {tuple(got.shape)}")
                got = got.item()
            if isinstance(got, float) and got == float(z.max()):
                raise Failed(f"{what}: got {got}, the largest *value*; return its *position* (here {want})")
            if isinstance(got, bool) or not isinstance(got, int):
                raise Failed(f"{what}: expected an int index, got {type(got).__name__} {got!r}")
            if got == want + 1:
                raise Failed(f"{what}: got {got}, expected {want}: Python counts positions from 0, not 1")
            if got != want:
                raise Failed(f"{what}: got index {got} (logit {values[got] if 0 <= got < len(values) else '?'}), "
                             f"expected {want} (logit {values[want]})")

    return run_check("warmup_argmax", fn, reference, test, verbose=verbose,
                     hint="torch.argmax(logits) gives the position of the largest entry as a tensor; "
                          "int(...) or .item() turns it into a Python int.")


def stable_log_softmax(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise 1 of lesson 01: ``fn(logits, T)`` returns ``log softmax(logits / T)`` along the
    last dimension, for logits of shape ``(..., C)``, without overflow for large logits."""
    from .softmax import log_softmax

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
            got = _call_on_copies(f, what, z, T)
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
            _expect_close_or_explain(got, reference(z, T), what, mistakes, atol=1e-4, rtol=1e-5)

    return run_check("stable_log_softmax", fn, reference, test, verbose=verbose,
                     hint="z = logits / T; m = z.amax(dim=-1, keepdim=True) (each row's own maximum); return "
                          "(z - m) - torch.log(torch.exp(z - m).sum(dim=-1, keepdim=True)). Never take log(softmax): "
                          "tiny probabilities underflow to 0 and log 0 = -inf.")


def entropy_nats(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise 2 of lesson 01: ``fn(probs)`` returns the Shannon entropy ``−Σ p log p`` in nats
    over the last dimension: ``(..., C)`` probabilities → ``(...)`` entropies, with ``0·log 0 = 0``."""
    from .softmax import entropy, softmax

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
            got, want = _call_on_copies(f, what, p), reference(p) + 0.0  # + 0.0 turns -0.0 into 0.0
            mistakes = [
                (want / math.log(2), "That is in bits (log base 2): use the natural logarithm, torch.log"),
                (-want, "The sign is flipped: H = -Σ p log p is ≥ 0"),
            ]
            if p.ndim > 1:
                mistakes.append((want.sum(), "You summed over the whole batch: sum over the last dimension only"))
            _expect_close_or_explain(got, want, what, mistakes, atol=1e-5, rtol=1e-4)

    return run_check("entropy_nats", fn, reference, test, verbose=verbose,
                     hint="H = -(p * log p).sum(dim=-1) with the natural log. 0 * log 0 is 0 * (-inf) = NaN in "
                          "floating point: use torch.special.xlogy(p, p), which is 0 where p = 0.")


def temperature_for_entropy(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise 3 of lesson 01: ``fn(logits, target_entropy)`` returns the temperature ``T`` at which
    ``softmax(logits / T)`` has the given entropy (nats), for a ``(C,)`` logit vector, and raises
    ``ValueError`` unless ``0 < target_entropy < log C``. Correct to 1e-4 nats."""
    from .softmax import entropy_from_logits
    from .softmax import temperature_for_entropy as reference

    cat = torch.tensor([-1.0, -2.0, 2.0, 9.0, 3.0, 6.5, 2.5, 1.5, -1.5, -2.5])
    g = torch.Generator().manual_seed(103)
    cases = [
        ("the lesson's cat logits, target 1.0 nat", cat, 1.0),
        ("cat logits, target 2.0 nats (close to log 10 = 2.303)", cat, 2.0),
        ("cat logits, target 0.3 nats (sharper than at T = 1)", cat, 0.3),
        ("6 random logits, target 1.2 nats", 2 * torch.randn(6, generator=g), 1.2),
        ("the cat logits × 20, target 1.0 nat (T should grow 20-fold too)", 20 * cat, 1.0),
    ]

    def test(f):
        for what, z, target in cases:
            got = _call_on_copies(f, what, z, target)
            if isinstance(got, torch.Tensor):
                if got.numel() != 1:
                    raise Failed(f"{what}: expected one temperature, got a tensor of shape {tuple(got.shape)}")
                got = got.item()
            if isinstance(got, bool) or not isinstance(got, (int, float)) or not math.isfinite(got) or got <= 0:
                raise Failed(f"{what}: expected a finite temperature T > 0, got {got!r}")
            h = float(entropy_from_logits(z.double(), T=got))
            if abs(h - target) > 1e-4:
                t_true = reference(z, target)
                where = " (the edge of the search range: is your bisection going the wrong way?)" \
                    if got < 1.1e-3 or got > 0.9e3 else ""
                raise Failed(f"{what}: at your T = {got:.5g}{where} the entropy is {h:.5f} nats, not {target} "
                             f"(the answer is T = {t_true:.5g})")
        n = cases[0][1].numel()
        for bad, why in [(math.log(n) + 0.1, f"above log C = {math.log(n):.3f}"), (0.0, "zero"), (-1.0, "negative")]:
            expect_raises(lambda: f(cases[0][1].clone(), bad), ValueError,
                          f"target entropy {bad:.4g} ({why}: no temperature reaches it)")

    return run_check("temperature_for_entropy", fn, reference, test, verbose=verbose,
                     hint="Entropy grows with T. Bisect on log T between log(1e-3) and log(1e3): at the midpoint m "
                          "compute H(softmax(logits / exp(m))); if it is below the target the answer lies above m, "
                          "otherwise below. 60 halvings are plenty. Check 0 < target < log C first and raise "
                          "ValueError otherwise.")


# =========================================================================== lesson 02
# (checks for 02_losses_ce_kl_mse)
def _l02_pair(n: int, c: int, seed: int, scale: float = 3.0):
    """Teacher and student logits ``(n, c)`` for the lesson 02 checks (fixed seed)."""
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(n, c, generator=g), scale * torch.randn(n, c, generator=g)


def _l02_cases():
    """``(description, teacher, student, T)``: several shapes and temperatures, equal inputs, large logits."""
    t, s = _l02_pair(4, 5, 201)
    t100, s100 = _l02_pair(3, 100, 202)
    t1, s1 = _l02_pair(1, 10, 203)
    return [
        ("N = 4, C = 5 at T = 1", t, s, 1.0),
        ("the same logits at T = 4", t, s, 4.0),
        ("C = 100 classes, N = 3, at T = 2", t100, s100, 2.0),
        ("a single example (N = 1) at T = 8", t1, s1, 8.0),
        ("identical teacher and student (expect 0)", t, t.clone(), 3.0),
        ("large logits ±1000 at T = 1 (exp overflows, probabilities underflow to 0)",
         torch.tensor([[1000.0, 0.0, -1000.0], [0.0, 1000.0, -1000.0]]),
         torch.tensor([[0.0, 1000.0, -1000.0], [5.0, 1000.0, 0.0]]), 1.0),
    ]


def _kl_mistakes(t: torch.Tensor, s: torch.Tensor, T: float, scale: float) -> list:
    """Values that typical wrong KL implementations give (computed with torch.nn.functional)."""
    import torch.nn.functional as F

    logp, logq = torch.log_softmax(t / T, dim=1), torch.log_softmax(s / T, dim=1)
    n, c = t.shape
    kl = F.kl_div(logq, logp, reduction="batchmean", log_target=True)
    return [
        (scale * F.kl_div(logp, logq, reduction="batchmean", log_target=True),
         "That is the reverse KL(q ‖ p): the teacher's probabilities p weight the sum, Σ p (log p - log q)"),
        (scale * kl / c, "You averaged over the classes too (like reduction='mean'): sum over classes, "
                         "mean over the batch only ('batchmean')"),
        (scale * kl * n, "You summed over the batch: divide by the batch size N"),
        (scale * F.kl_div(torch.log_softmax(s, 1), torch.log_softmax(t, 1), reduction="batchmean",
                          log_target=True), "The temperature is missing: soften both, softmax(logits / T)"),
        (scale * F.kl_div(torch.softmax(s / T, 1), torch.softmax(t / T, 1), reduction="batchmean"),
         "F.kl_div's first argument must be log-probabilities (log_softmax), not probabilities"),
    ]


def _scalar_result(got, what: str):
    if not isinstance(got, torch.Tensor):
        raise Failed(f"{what}: expected a torch.Tensor (a scalar loss you can call .backward() on), "
                     f"got {type(got).__name__}")
    if got.numel() != 1:
        raise Failed(f"{what}: expected a single number (mean over the batch), got a tensor of shape "
                     f"{tuple(got.shape)}")
    return got


def kl_batchmean(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise 1 of lesson 02: ``fn(target_logits, input_logits, T)`` returns
    ``KL(p ‖ q)`` with ``p = softmax(target/T)``, ``q = softmax(input/T)``, summed over classes
    and averaged over the batch, for ``(N, C)`` logits."""
    from .losses import kl_divergence

    def reference(target_logits: torch.Tensor, input_logits: torch.Tensor, T: float = 1.0) -> torch.Tensor:
        return kl_divergence(target_logits, input_logits, T=T)

    def test(f):
        for what, t, s, T in _l02_cases():
            got = _scalar_result(_call_on_copies(f, what, t, s, T), what)
            _expect_close_or_explain(got, reference(t, s, T), what, _kl_mistakes(t, s, T, 1.0),
                                     atol=1e-5, rtol=1e-4)

    return run_check("kl_batchmean", fn, reference, test, verbose=verbose,
                     hint="logp = log_softmax(target / T), logq = log_softmax(input / T) (dim=1, stable); "
                          "KL = (logp.exp() * (logp - logq)).sum(dim=1).mean(). Work with log-probabilities "
                          "throughout: log(softmax(...)) gives -inf when a probability underflows.")


def kd_term(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise 3 of lesson 02 (fix the buggy snippet): ``fn(student_logits, teacher_logits, T)``
    returns ``T² · KL(softmax(teacher/T) ‖ softmax(student/T))``, batch-mean, differentiable
    with respect to the student's logits."""
    from .losses import kd_loss

    def reference(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float) -> torch.Tensor:
        return kd_loss(student_logits, teacher_logits, T=T)

    def test(f):
        for what, t, s, T in _l02_cases():
            got = _scalar_result(_call_on_copies(f, what, s, t, T), what)
            mistakes = _kl_mistakes(t, s, T, T * T) + [
                (reference(s, t, T) / (T * T), "The T² factor is missing: without it the gradient shrinks "
                                               "like 1/T² as T grows"),
                (reference(s, t, T) / T, "Multiply by T², not by T"),
            ]
            _expect_close_or_explain(got, reference(s, t, T), what, mistakes, atol=1e-5, rtol=1e-4)
        # the gradient reaching the student: T (q − p) / N
        what = "the gradient with respect to the student's logits (N = 4, C = 5, T = 4)"
        _, t, s, T = _l02_cases()[1]
        s = s.clone().requires_grad_(True)
        loss = _scalar_result(f(s, t.clone(), T), what)
        if not loss.requires_grad:
            raise Failed(f"{what}: your result is not connected to student_logits (did you use .item(), "
                         ".detach(), numpy, or compute the student's probabilities under torch.no_grad()?)")
        (grad,) = torch.autograd.grad(loss, s)
        p, q = torch.softmax(t / T, dim=1), torch.softmax(s.detach() / T, dim=1)
        expect_tensor_close(grad, T * (q - p) / t.shape[0], what, atol=1e-6, rtol=1e-4)

    return run_check("kd_term", fn, reference, test, verbose=verbose,
                     hint="F.kl_div(F.log_softmax(student / T, dim=1), F.log_softmax(teacher / T, dim=1), "
                          "reduction='batchmean', log_target=True) * T**2: log-probabilities for the student "
                          "(input), the teacher as the target, batch-mean, and T².")


def combined_kd_loss(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise 2 of lesson 02: ``fn(student_logits, teacher_logits, labels, T, alpha)`` returns
    ``(1 − α)·CE(labels, student) + α·T²·KL(softmax(teacher/T) ‖ softmax(student/T))``
    (this course's convention: α weighs the distillation term)."""
    import torch.nn.functional as F

    from .losses import distillation_loss

    def reference(student_logits, teacher_logits, labels, T: float = 4.0, alpha: float = 0.9) -> torch.Tensor:
        return distillation_loss(student_logits, teacher_logits, labels, T=T, alpha=alpha)

    t, s = _l02_pair(6, 10, 204)
    t100, s100 = _l02_pair(3, 100, 205)
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
            got = _scalar_result(_call_on_copies(f, what, s_, t_, y_, T, a), what)
            ce = F.cross_entropy(s_, y_)
            kl = F.kl_div(torch.log_softmax(s_ / T, 1), torch.log_softmax(t_ / T, 1), reduction="batchmean",
                          log_target=True)
            mistakes = [
                (a * ce + (1 - a) * T * T * kl, "Your α weighs the cross-entropy (torchdistill's and the Keras "
                                                "example's convention); here α weighs the distillation term"),
                ((1 - a) * ce + a * kl, "The T² factor on the KL term is missing"),
                ((1 - a) * F.cross_entropy(s_ / T, y_) + a * T * T * kl,
                 "The cross-entropy uses the student's ordinary logits (T = 1); only the KL term is softened"),
                ((1 - a) * ce + a * T * T * kl / s_.shape[1], "The KL term is divided by C (reduction='mean'): "
                                                              "use batch-mean"),
                ((1 - a) * ce + a * T * T * F.kl_div(torch.log_softmax(t_ / T, 1), torch.log_softmax(s_ / T, 1),
                                                     reduction="batchmean", log_target=True),
                 "The KL is reversed: KL(teacher ‖ student), with the teacher's probabilities as weights"),
            ]
            _expect_close_or_explain(got, reference(s_, t_, y_, T, a), what, mistakes, atol=1e-5, rtol=1e-4)

    return run_check("combined_kd_loss", fn, reference, test, verbose=verbose,
                     hint="(1 - alpha) * F.cross_entropy(student, labels) + alpha * T**2 * KL, where KL is the "
                          "batch-mean KL(softmax(teacher / T) ‖ softmax(student / T)) from exercise 1.")


# =========================================================================== lesson 03
# (checks for 03_teacher_training)


# =========================================================================== lesson 04
# (checks for 04_distilling_a_student)


# =========================================================================== lesson 05
# (checks for 05_evaluating_distillation)
