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
def flip_batch(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise: ``fn(images (B, C, H, W), flip (B,) bool)`` mirrors left–right the flagged images."""
    from . import data

    def test(f):
        g = torch.Generator().manual_seed(0)
        for shape in [(4, 3, 5, 6), (7, 1, 8, 8)]:
            x = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
            for flip in [torch.rand(shape[0], generator=g) < 0.5, torch.ones(shape[0], dtype=torch.bool),
                         torch.zeros(shape[0], dtype=torch.bool)]:
                original = x.clone()
                got = f(x, flip)
                if not torch.equal(x, original):
                    raise Failed("your function changed its input images in place")
                if not isinstance(got, torch.Tensor) or got.shape != x.shape:
                    raise Failed(f"expected a tensor of shape {tuple(x.shape)}, got {_fmt(got)}")
                want = data.flip_batch(x, flip)
                if not torch.equal(got, want):
                    bad = (got != want).flatten(1).any(1).nonzero().flatten().tolist()
                    raise Failed(f"images {bad} are wrong for flip = {flip.tolist()} (shape {shape})")

    return run_check("flip_batch", fn, data.flip_batch, test,
                     "mirror the last dimension (width): images.flip(-1), and choose per image with "
                     "torch.where(flip[:, None, None, None], flipped, images)", verbose)


def translate_batch(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise: ``fn(padded, dx, dy, pad)`` crops H×W windows shifted by (dx, dy) from padded images."""
    from . import data

    def test(f):
        g = torch.Generator().manual_seed(1)
        for pad, (h, w) in [(2, (6, 6)), (1, (4, 7)), (3, (8, 5))]:
            n = 9
            padded = torch.randint(0, 256, (n, 2, h + 2 * pad, w + 2 * pad), generator=g, dtype=torch.uint8)
            dx = torch.randint(-pad, pad + 1, (n,), generator=g)
            dy = torch.randint(-pad, pad + 1, (n,), generator=g)
            dx[0] = dy[0] = 0
            got = f(padded, dx, dy, pad)
            want = data.translate_batch(padded, dx, dy, pad)
            if not isinstance(got, torch.Tensor) or got.shape != want.shape:
                raise Failed(f"padded {tuple(padded.shape)} with pad={pad}: expected shape {tuple(want.shape)}, "
                             f"got {_fmt(got)}")
            for i in range(n):
                if not torch.equal(got[i], want[i]):
                    raise Failed(f"pad={pad}, image {i} with dx={int(dx[i])}, dy={int(dy[i])} is wrong "
                                 "(dx moves the window right, dy moves it down)")

    return run_check("translate_batch", fn, data.translate_batch, test,
                     "the window of image i starts at row dy[i] + pad and column dx[i] + pad of the padded "
                     "image: padded[i, :, dy+pad : dy+pad+H, dx+pad : dx+pad+W]", verbose)


def _conv_bn_params_reference(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k + 2 * c_out


def conv_bn_params(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise: ``fn(c_in, c_out, k)`` = parameters of ``Conv2d(c_in, c_out, k, bias=False)`` + ``BatchNorm2d(c_out)``."""
    from torch import nn

    def test(f):
        for c_in, c_out, k in [(3, 16, 3), (16, 32, 3), (32, 48, 1), (12, 5, 5), (1, 1, 2)]:
            block = nn.Sequential(nn.Conv2d(c_in, c_out, k, bias=False), nn.BatchNorm2d(c_out))
            want = sum(p.numel() for p in block.parameters())
            got = f(c_in, c_out, k)
            if got != want:
                raise Failed(f"conv {c_in}→{c_out}, {k}×{k} kernel, + BatchNorm: got {got}, expected {want}")

    return run_check("conv_bn_params", fn, _conv_bn_params_reference, test,
                     "each of the c_out filters has c_in·k·k weights (no bias here); BatchNorm learns a "
                     "scale and a shift per channel (its running mean/variance are buffers, not parameters)",
                     verbose)


# =========================================================================== lesson 04
# (checks for 04_distilling_a_student)
def _kd_step_reference(student, teacher, images, labels, optimizer, T, alpha) -> float:
    from .distill import freeze, teacher_forward
    from .losses import distillation_loss

    teacher_logits = teacher_forward(freeze(teacher), images)
    loss = distillation_loss(student(images), teacher_logits, labels, T=T, alpha=alpha)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def _kd_step_setup(seed: int):
    from torch import nn

    torch.manual_seed(seed)
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(12, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 5)).train()
    student = nn.Sequential(nn.Flatten(), nn.Linear(12, 5))
    images, labels = torch.randn(16, 3, 2, 2), torch.randint(0, 5, (16,))
    return teacher, student, images, labels


def kd_step(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise: ``fn(student, teacher, images, labels, optimizer, T, alpha) -> float`` does one
    distillation training step (frozen teacher, combined loss, zero_grad/backward/step)."""
    import copy

    def test(f):
        for seed, T, alpha in [(0, 4.0, 0.9), (1, 1.0, 0.5), (2, 8.0, 0.3)]:
            teacher, student, images, labels = _kd_step_setup(seed)
            mine, ref = copy.deepcopy(student), copy.deepcopy(student)
            t_mine, t_ref = copy.deepcopy(teacher), copy.deepcopy(teacher)
            opt_mine = torch.optim.SGD(mine.parameters(), lr=0.5)
            opt_ref = torch.optim.SGD(ref.parameters(), lr=0.5)
            for p in mine.parameters():  # stale gradients from an earlier step
                p.grad = torch.ones_like(p)
            torch.manual_seed(100 + seed)
            got = f(mine, t_mine, images, labels, opt_mine, T, alpha)
            want = _kd_step_reference(ref, t_ref, images, labels, opt_ref, T, alpha)
            if any(p.grad is not None and p.grad.abs().sum() > 0 for p in t_mine.parameters()):
                raise Failed("the teacher received gradients: compute its logits under torch.no_grad()")
            if isinstance(got, torch.Tensor):
                got = got.item()
            if not isinstance(got, float) or not math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-6):
                raise Failed(f"T={T}, alpha={alpha}: returned loss {got!r}, expected {want:.6g} "
                             "(return loss.item() of the combined loss)")
            for (name, a), b in zip(mine.named_parameters(), ref.parameters()):
                if not torch.allclose(a, b, atol=1e-6):
                    raise Failed(f"T={T}, alpha={alpha}: after your step, student parameter {name!r} differs "
                                 "from the reference step")

    return run_check("kd_step", fn, _kd_step_reference, test,
                     "teacher.eval() and torch.no_grad() for the teacher's logits; the loss is "
                     "(1-alpha)*CE + alpha*T*T*KL(teacher || student) at temperature T; "
                     "optimizer.zero_grad() before loss.backward(), then optimizer.step()", verbose)


def _cached_lookup_reference(cache: torch.Tensor, batch) -> torch.Tensor:
    return cache[batch.index]


def cached_lookup(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise: ``fn(cache (N, C), batch) -> (B, C)``: the cached teacher logits of the batch's examples."""
    from .data import DeviceLoader, Split

    def test(f):
        g = torch.Generator().manual_seed(0)
        split = Split(torch.randint(0, 256, (50, 1, 4, 4), generator=g, dtype=torch.uint8), torch.arange(50) % 5)
        cache = torch.randn(50, 5, generator=g)
        loader = DeviceLoader(split, 16, mean=(0.5,), std=(0.25,), train=True, flip=False, translate=0, seed=3)
        for epoch in range(2):
            loader.set_epoch(epoch)
            for b, batch in enumerate(loader):
                got = f(cache, batch)
                if not isinstance(got, torch.Tensor) or got.shape != (len(batch.labels), 5):
                    raise Failed(f"expected a ({len(batch.labels)}, 5) tensor, got {_fmt(got)}")
                if not torch.equal(got, cache[batch.index]):
                    raise Failed(f"epoch {epoch}, batch {b}: these logits belong to other examples — the loader "
                                 "shuffles, so batch b does not hold examples b·B … (b+1)·B − 1")

    return run_check("cached_lookup", fn, _cached_lookup_reference, test,
                     "the cache is in split order; each batch tells you which examples it holds: batch.index",
                     verbose)


def best_class_shift(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise: ``fn(val_logits, val_labels, cls, shifts) -> float``: the shift of class ``cls``'s
    logit that maximises validation accuracy (the smallest such shift on ties)."""
    from . import distill

    def test(f):
        g = torch.Generator().manual_seed(0)
        shifts = [0.25 * i for i in range(17)]
        for cls, bias in [(3, -2.0), (0, -0.7), (4, 0.0)]:
            labels = torch.randint(0, 5, (300,), generator=g)
            logits = torch.randn(300, 5, generator=g) + 2.5 * torch.nn.functional.one_hot(labels, 5)
            logits[:, cls] += bias  # a class the model under-predicts
            want = distill.best_class_shift(logits, labels, cls, shifts)
            got = f(logits.clone(), labels, cls, shifts)
            expect_number_close(got, want, f"class {cls} pushed down by {-bias:g}", rel=0, abs_=1e-9)
        tie = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]]), torch.tensor([0, 1, 0])
        expect_number_close(f(tie[0].clone(), tie[1], 1, [0.0, 0.25, 0.5, 3.0]), 0.0,
                            "shifts 0, 0.25 and 0.5 tie (all correct): keep the smallest", rel=0, abs_=1e-9)

    return run_check("best_class_shift", fn, distill.best_class_shift, test,
                     "for each candidate shift, add it to column cls of the logits, compute the accuracy "
                     "over all validation examples, and keep the best shift (the first one on ties)", verbose)


# =========================================================================== lesson 05
# (checks for 05_evaluating_distillation)
def _l05_number(got, what: str) -> float:
    """``got`` as a float (a Python number or a one-element tensor), or :class:`Failed`."""
    if isinstance(got, torch.Tensor):
        if got.numel() != 1:
            raise Failed(f"{what}: expected a single number, got a tensor of shape {tuple(got.shape)}")
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        raise Failed(f"{what}: expected a number, got {type(got).__name__}")
    return float(got)


def _l05_expect(got, want: float, what: str, mistakes, abs_: float = 1e-5) -> None:
    """Fail unless ``got`` ≈ ``want``; if it matches a known wrong answer instead, say which.

    ``mistakes``: ``{explanation: the value that mistake would give}``, or a function
    returning that dict (called only when ``got`` is wrong).
    """
    got = _l05_number(got, what)
    if math.isclose(got, want, rel_tol=1e-4, abs_tol=abs_):
        return
    if math.isnan(got):
        raise Failed(f"{what}: got NaN, expected {want:.6g} — is something divided by zero "
                     "(an empty bin, a class that is never predicted)?")
    if callable(mistakes):
        mistakes = mistakes()
    for explanation, value in mistakes.items():
        if value is not None and math.isfinite(value) and not math.isclose(value, want, rel_tol=1e-4, abs_tol=abs_) \
                and math.isclose(got, value, rel_tol=1e-4, abs_tol=abs_):
            raise Failed(f"{what}: got {got:.6g}, expected {want:.6g} — that is what you get if you {explanation}")
    raise Failed(f"{what}: got {got:.6g}, expected {want:.6g}")


def _l05_calibration_cases():
    """``(description, logits, labels, n_bins)`` for the ECE check."""
    g = torch.Generator().manual_seed(505)
    z = 3 * torch.randn(600, 10, generator=g)
    # over-confident where it is sure (labels drawn from a softer distribution), under-confident
    # where it is not (labels drawn from a sharper one): the gaps have both signs, so binning matters
    sure_rows = torch.softmax(z, dim=1).amax(dim=1, keepdim=True) > 0.6
    y = torch.multinomial(torch.softmax(torch.where(sure_rows, z / 2, 2 * z), dim=1), 1, generator=g).squeeze(1)
    sure = torch.zeros(8, 4)
    sure[torch.arange(8), torch.arange(8) % 4] = 100.0  # confidence exactly 1.0
    sure_y = torch.tensor([0, 1, 2, 3, 1, 2, 3, 0])  # the first four right, the last four wrong
    few = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 4.0]])
    conf90 = torch.log(torch.tensor([[0.9, 0.05, 0.05]])).repeat(10, 1)
    # confidences 0.62 (right) and 0.68 (wrong): one bin of (0.6, 0.7] with 10 bins, two with 15
    pair = torch.log(torch.tensor([[0.62, 0.38], [0.68, 0.32]]))
    return [
        ("random logits, 600 examples, 10 classes", z, y, 15),
        ("the same logits with n_bins=10", z, y, 10),
        ("n_bins=10, confidences 0.62 (right) and 0.68 (wrong) in the same bin (ECE = 0.15)", pair,
         torch.tensor([0, 1]), 10),
        ("confidence exactly 1.0 (it belongs in the last bin, (14/15, 1])", sure, sure_y, 15),
        ("3 examples, so most bins are empty", few, torch.tensor([0, 2, 2]), 15),
        ("always 90 % sure, always right (ECE = 0.1)", conf90, torch.zeros(10, dtype=torch.long), 15),
    ]


def _l05_ece_mistakes(logits: torch.Tensor, labels: torch.Tensor, n_bins: int) -> dict:
    """What typical wrong ECE implementations return for this case."""
    from .evaluate import reliability_bins

    b = reliability_bins(logits, labels, n_bins)
    full = b.count > 0
    gaps = (b.accuracy[full] - b.confidence[full]).abs()
    probs = torch.softmax(logits.double(), dim=1)
    correct = (logits.argmax(dim=1) == labels).double()
    true_p = probs.gather(1, labels[:, None]).squeeze(1)
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    idx = torch.bucketize(true_p, edges[1:-1])
    wrong_conf = sum((idx == i).sum().item() / len(labels)
                     * abs(correct[idx == i].mean().item() - true_p[idx == i].mean().item())
                     for i in range(n_bins) if (idx == i).any())
    return {
        "average the bins' gaps |acc − conf| without weighting each bin by its share n_b/N of the examples":
            gaps.mean().item(),
        "divide the sum of the bins' gaps by the number of bins (empty ones included)": gaps.sum().item() / n_bins,
        "take as confidence the probability of the *true* class instead of the largest probability": wrong_conf,
        "use a single bin: |overall accuracy − mean confidence|":
            abs(correct.mean().item() - probs.max(dim=1).values.mean().item()),
        "return a percentage (ECE is a fraction in [0, 1] here)": 100 * b.ece(),
    }


def expected_calibration_error(fn: Callable, verbose: bool = True) -> CheckResult:
    """Check ``fn(logits (N, C), labels (N,), n_bins=15) -> float``: the ECE with equal-width bins."""
    from . import evaluate

    def test(f):
        for what, z, y, n_bins in _l05_calibration_cases():
            want = evaluate.expected_calibration_error(z, y, n_bins)
            got = f(z.clone(), y.clone(), n_bins=n_bins)
            _l05_expect(got, want, what, lambda: _l05_ece_mistakes(z, y, n_bins))

    return run_check("expected_calibration_error", fn, evaluate.expected_calibration_error, test,
                     hint="confidence = the largest softmax probability of each row; put it in bin "
                          "ceil(conf·n_bins) − 1 so that 1.0 lands in the last bin (bins are (lower, upper]); "
                          "ECE = Σ over non-empty bins of (n_b / N)·|accuracy_b − mean confidence_b|.",
                     verbose=verbose)


def _l05_agreement_cases():
    """``(description, student_logits, teacher_logits)`` for the agreement check."""
    g = torch.Generator().manual_seed(506)
    t = torch.randn(200, 10, generator=g)
    s = t + 1.2 * torch.randn(200, 10, generator=g)
    four_t = torch.eye(4) * 5
    four_s = torch.eye(4)[[0, 1, 3, 3]] * 5  # agrees on 3 of 4
    ties_t = torch.zeros(3, 5)  # all tied: argmax is class 0
    ties_s = torch.tensor([[1.0, 0, 0, 0, 0], [0, 1.0, 0, 0, 0], [2.0, 2.0, 0, 0, 0]])
    return [
        ("a model against itself", t, t),
        ("student = teacher + a different constant per row (same softmax)", t + 10 * torch.randn(200, 1, generator=g), t),
        ("random student and teacher, 200 examples, 10 classes", s, t),
        ("4 examples, 3 agree", four_s, four_t),
        ("ties (argmax picks the first largest class)", ties_s, ties_t),
    ]


def top1_agreement(fn: Callable, verbose: bool = True) -> CheckResult:
    """Check ``fn(student_logits (N, C), teacher_logits (N, C)) -> float``: fraction of equal argmaxes."""
    from . import evaluate

    def test(f):
        for what, s, t in _l05_agreement_cases():
            want = evaluate.top1_agreement(s, t)
            got = f(s.clone(), t.clone())
            same = s.argmax(dim=1) == t.argmax(dim=1)
            mistakes = {
                "take the argmax over dim=0 (over examples) instead of dim=1 (over classes)":
                    (s.argmax(dim=0) == t.argmax(dim=0)).double().mean().item(),
                "count the agreeing examples instead of taking their fraction": float(same.sum()),
                "return the disagreement (1 − agreement)": 1 - want,
                "return a percentage (agreement is a fraction in [0, 1] here)": 100 * want,
                "compare the logits (or probabilities) themselves instead of the predicted classes":
                    torch.isclose(s, t).all(dim=1).double().mean().item(),
            }
            _l05_expect(got, want, what, mistakes, abs_=1e-9)

    return run_check("top1_agreement", fn, evaluate.top1_agreement, test,
                     hint="agreement = mean over examples of [argmax_c student[i, c] == argmax_c teacher[i, c]]; "
                          "labels play no part — compare the student with the teacher, not with the truth.",
                     verbose=verbose)


def _l05_f1_cases():
    """``(description, logits, labels)`` for the macro-F1 check."""
    g = torch.Generator().manual_seed(507)
    z = 2 * torch.randn(300, 6, generator=g)
    z[:, 4] -= 20  # class 4 is never predicted
    y = torch.randint(0, 6, (300,), generator=g)
    y[torch.rand(300, generator=g) < 0.4] = 0  # imbalanced: class 0 is common
    y[:5] = 4
    major = torch.tensor([[1.0, 0.0]]).repeat(100, 1)
    major_y = torch.tensor([0] * 90 + [1] * 10)
    perfect = torch.eye(3)[[0, 1, 2, 2, 1]] * 3
    return [
        ("random logits, 300 examples, 6 classes, class 4 never predicted", z, y),
        ("90 % class 0, always predicts class 0 (accuracy 0.9)", major, major_y),
        ("every prediction right", perfect, perfect.argmax(1)),
    ]


def _l05_f1_mistakes(z: torch.Tensor, y: torch.Tensor) -> dict:
    from .evaluate import precision_recall_f1, top1_accuracy

    prf = precision_recall_f1(z, y)
    p, r, f, n = prf["precision"], prf["recall"], prf["f1"], prf["support"].double()
    P, R = p.mean().item(), r.mean().item()
    predicted = torch.bincount(z.argmax(1), minlength=z.shape[1]) > 0
    return {
        "compute micro-F1, which equals the accuracy (macro-F1 averages the per-class F1 scores)":
            top1_accuracy(z, y),
        "weight each class's F1 by its number of examples (that is 'weighted' F1)": (f * n).sum().item() / n.sum().item(),
        "take the F1 of the mean precision and mean recall (average the F1 scores instead)":
            2 * P * R / (P + R) if P + R else 0.0,
        "average the recalls (balanced accuracy), not the F1 scores": R,
        "average the precisions, not the F1 scores": P,
        "skip classes that are never predicted (they count, with F1 = 0)": f[predicted].mean().item(),
    }


def macro_f1(fn: Callable, verbose: bool = True) -> CheckResult:
    """Check ``fn(logits (N, C), labels (N,)) -> float``: the mean of the C per-class F1 scores."""
    from . import evaluate

    def test(f):
        for what, z, y in _l05_f1_cases():
            want = evaluate.macro_f1(z, y)
            got = f(z.clone(), y.clone())
            _l05_expect(got, want, what, lambda: _l05_f1_mistakes(z, y), abs_=1e-6)

    return run_check("macro_f1", fn, evaluate.macro_f1, test,
                     hint="for each class c: TP = predicted c and truly c, FP = predicted c but not c, "
                          "FN = truly c but predicted otherwise; F1_c = 2·TP / (2·TP + FP + FN) (0 when that "
                          "denominator is 0); macro-F1 = the plain mean of F1_c over all C classes.",
                     verbose=verbose)


def _l05_summarize_seeds_tuple(values) -> tuple[float, float, float, float]:
    """kdtutor's answer to the exercise: ``(mean, std, low, high)``."""
    from .evaluate import summarize_seeds as reference

    s = reference(values)
    return s.mean, s.std, s.low, s.high


def summarize_seeds(fn: Callable, verbose: bool = True) -> CheckResult:
    """Check ``fn(values: list[float]) -> (mean, std, low, high)``: sample std and the 95 % t-interval."""
    from .evaluate import t_quantile_975

    cases = [
        ("5 seeds", [0.912, 0.918, 0.905, 0.921, 0.915]),
        ("2 seeds (t with 1 degree of freedom is 12.7)", [0.80, 0.84]),
        ("12 seeds", [0.70 + 0.004 * ((7 * i) % 12) for i in range(12)]),
        ("3 equal values (no spread)", [0.5, 0.5, 0.5]),
    ]

    def test(f):
        for what, values in cases:
            want = _l05_summarize_seeds_tuple(values)
            got = f(list(values))
            try:
                got = tuple(got)
            except TypeError:
                raise Failed(f"{what}: expected a tuple (mean, std, low, high), got {type(got).__name__}") from None
            if len(got) != 4:
                raise Failed(f"{what}: expected 4 numbers (mean, std, low, high), got {len(got)}")
            n, mean = len(values), want[0]
            std0 = math.sqrt(sum((v - mean) ** 2 for v in values) / n)
            t, se = t_quantile_975(n - 1), want[1] / math.sqrt(n)
            _l05_expect(got[0], mean, f"{what}, mean", {}, abs_=1e-9)
            _l05_expect(got[1], want[1], f"{what}, std", {
                "divide by n instead of n − 1 (use the sample standard deviation, ddof = 1)": std0}, abs_=1e-9)
            mistakes = {
                "use the normal quantile 1.96 instead of Student's t with n − 1 degrees of freedom":
                    mean - 1.96 * se,
                "use std instead of the standard error std/√n": mean - t * want[1],
                "use n degrees of freedom instead of n − 1": mean - t_quantile_975(n) * se,
                "use the population std (ddof = 0) in the interval": mean - t * std0 / math.sqrt(n),
            }
            _l05_expect(got[2], want[2], f"{what}, low end of the interval", mistakes, abs_=1e-9)
            _l05_expect(got[3], want[3], f"{what}, high end of the interval",
                                {k: 2 * mean - v for k, v in mistakes.items()}, abs_=1e-9)

    return run_check("summarize_seeds", fn, _l05_summarize_seeds_tuple, test,
                     hint="std = sqrt(Σ (x − mean)² / (n − 1)); the 95 % interval is mean ± t·std/√n with "
                          "t = kdtutor.evaluate.t_quantile_975(n − 1).",
                     verbose=verbose)
