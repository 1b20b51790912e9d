"""Checks for lesson 00 (``00_welcome``): the warm-up exercise."""

from __future__ import annotations

from typing import Callable

import torch

from kdtutor.checks.core import CheckResult, Failed, call_on_copies, register, run_check

register("warmup_argmax",
         nudge="you want the *position* of the largest logit (counting from 0), as a Python int.",
         answer="return int(torch.argmax(logits)): torch.argmax gives the position of the largest entry as a "
                "tensor; int(...) or .item() turns it into a Python int.")


def _as_python(got):
    """A one-element tensor or a numpy scalar as the Python number it holds; anything else unchanged."""
    if isinstance(got, torch.Tensor):
        if got.numel() != 1:
            raise Failed(f"expected one index, got a tensor of shape {tuple(got.shape)}")
        return got.item()
    if type(got).__module__ == "numpy" and hasattr(got, "item") and getattr(got, "size", 1) == 1:
        return got.item()  # numpy's int64 from z.numpy().argmax() is fine: it is an index
    return got


def warmup_argmax(fn: Callable, verbose: bool = True) -> CheckResult:
    """Warm-up of lesson 00: ``fn(logits)`` returns the position (an ``int``; a numpy integer or a
    one-element tensor is accepted too) of the largest entry of a ``(C,)`` tensor of logits."""

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
            want = reference(z)
            try:
                got = _as_python(call_on_copies(f, what, z))
            except Failed as e:
                raise Failed(f"{what}: {e}") from None
            if isinstance(got, float) and got == float(z.max()):
                raise Failed(f"{what}: got {got}, the largest *value*; return its *position* (here {want})")
            if isinstance(got, bool) or not isinstance(got, int):
                raise Failed(f"{what}: expected an int index, got {type(got).__name__} {got!r}")
            if got == want + 1:
                raise Failed(f"{what}: got {got}, expected {want}: Python counts positions from 0, not 1")
            if got != want:
                raise Failed(f"{what}: got index {got} (logit {values[got] if 0 <= got < len(values) else '?'}), "
                             f"expected {want} (logit {values[want]})")

    return run_check("warmup_argmax", fn, reference, test, verbose=verbose)
