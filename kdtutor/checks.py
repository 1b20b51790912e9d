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
# (checks for 01_softmax_temperature)


# =========================================================================== lesson 02
# (checks for 02_losses_ce_kl_mse)


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
