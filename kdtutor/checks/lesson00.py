"""Checks for lesson 00 (``00_welcome``): the warm-up exercise."""

from __future__ import annotations

import numbers
from collections.abc import Callable

import torch

from kdtutor.checks.core import CheckResult, Failed, call_on_copies, python_number, register, run_check

register("warmup_argmax",
         nudge="you want the *position* of the largest logit (counting from 0), as a Python int.",
         answer="return int(torch.argmax(logits)): torch.argmax gives the position of the largest entry as a "
                "tensor; int(...) or .item() turns it into a Python int.")


def warmup_argmax(fn: Callable, verbose: bool = True) -> CheckResult:
    """Warm-up of lesson 00: ``fn(logits)`` returns the position (a Python ``int``; a NumPy integer
    is accepted too, a tensor is not: see :func:`~kdtutor.checks.core.python_number`) of the largest
    entry of a ``(C,)`` tensor of logits."""

    def reference(logits: torch.Tensor) -> int:
        return int(torch.argmax(logits))

    cases = [
        ("logits [0.1, 2.0, -1.0]", [0.1, 2.0, -1.0]),
        ("all-negative logits [-5.0, -0.5, -3.0]", [-5.0, -0.5, -3.0]),
        ("the largest last, [1.0, 2.0, 3.0, 4.0]", [1.0, 2.0, 3.0, 4.0]),
        ("large logits [10000, -10000, 10008, 9999]", [1e4, -1e4, 1e4 + 8, 9999.0]),
        ("the largest first, [5.0, 1.0, 3.0]", [5.0, 1.0, 3.0]),
    ]

    def test(f):
        for what, values in cases:
            z = torch.tensor(values)
            want = reference(z)
            got = call_on_copies(f, what, z)
            if isinstance(got, torch.Tensor) and got.numel() > 1:
                raise Failed(f"{what}: expected one index, got a tensor of shape {tuple(got.shape)}")
            if isinstance(got, numbers.Real) and not isinstance(got, numbers.Integral) and got == float(z.max()):
                raise Failed(f"{what}: got {got}, the largest *value*; return its *position* (here {want})")
            got = python_number(got, what, integer=True)
            if got == want + 1:
                raise Failed(f"{what}: got {got}, expected {want}: Python counts positions from 0, not 1")
            if got != want and want == 0:
                raise Failed(f"{what}: got index {got}, expected 0: the largest logit is the first one here "
                             "(position 0); does your loop start at 1 instead of 0, or skip the first entry?")
            if got != want:
                raise Failed(f"{what}: got index {got} (logit {values[got] if 0 <= got < len(values) else '?'}), "
                             f"expected {want} (logit {values[want]})")

    return run_check("warmup_argmax", fn, reference, test, verbose=verbose)
