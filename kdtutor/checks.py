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


# =========================================================================== lesson 04
# (checks for 04_distilling_a_student)


# =========================================================================== lesson 05
# (checks for 05_evaluating_distillation)
