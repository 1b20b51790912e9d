"""Checks for lesson 08 (``08_distil_your_own_model``): how many of its teacher's mistakes a student copies.

    shared_mistakes   of the images the teacher gets wrong, the fraction where the student predicts the teacher's class
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from kdtutor.checks.core import CheckResult, Failed, call_checked, python_number, register, run_check
from kdtutor.images import metrics

register("shared_mistakes",
         nudge="look only at the images the teacher gets wrong (its argmax differs from the label); among those, "
               "count where the student's argmax equals the teacher's argmax — the same wrong class, not just any "
               "wrong class — and divide by the number of the teacher's mistakes.",
         answer="t = teacher_logits.argmax(1); s = student_logits.argmax(1); wrong = t != labels; "
                "return (s[wrong] == t[wrong]).float().mean().item()  — a fraction of the teacher's mistakes, "
                "not of all images.")


def _l08_cases():
    """``(description, student_logits, teacher_logits, labels)``: no ties, so argmax is unambiguous."""
    g = torch.Generator().manual_seed(808)
    t = torch.randn(400, 6, generator=g, dtype=torch.float64)
    y = torch.where(torch.rand(400, generator=g) < 0.7, t.argmax(1), torch.randint(0, 6, (400,), generator=g))
    s = t + 1.5 * torch.randn(400, 6, generator=g, dtype=torch.float64)
    eye = torch.eye(4, dtype=torch.float64) * 3
    # the teacher predicts 0, 1, 2, 3, 3; the labels are 0, 2, 2, 1, 0: it is wrong on images 1, 3 and 4;
    # the student predicts 0, 1 (the teacher's mistake), 2, 1 (right, not the teacher's), 2 (wrong, another class)
    t5, s5 = eye[[0, 1, 2, 3, 3]], eye[[0, 1, 2, 1, 2]]
    y5 = torch.tensor([0, 2, 2, 1, 0])
    return [("random logits, 400 images, 6 classes, the teacher right on about 80 %", s.float(), t.float(), y),
            ("the same in float64", s, t, y),
            ("5 images: the teacher is wrong on 3, the student copies 1 of those mistakes (1/3)", s5, t5, y5),
            ("a student identical to the teacher (it copies every mistake: 1.0)", t.clone(), t, y)]


def _l08_mistakes(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> dict:
    """What typical wrong answers return."""
    ps, pt = s.argmax(1), t.argmax(1)
    wrong = pt != y
    same = (ps == pt) & wrong
    return {
        "divide by all images instead of by the teacher's mistakes": same.double().mean().item(),
        "count the images where both are wrong, whatever class the student predicts (the same wrong class is "
        "asked)": ((ps != y) & wrong).double().sum().item() / wrong.sum().item(),
        "return the agreement over all images (the labels play a part here)": (ps == pt).double().mean().item(),
        "count the shared mistakes instead of taking their fraction": float(same.sum()),
        "return a percentage (a fraction in [0, 1] is asked)": 100 * same.double().sum().item() / wrong.sum().item(),
        "compare the student with the labels instead of with the teacher (the student's accuracy on the "
        "teacher's mistakes)": (ps[wrong] == y[wrong]).double().mean().item(),
    }


def shared_mistakes(fn: Callable, verbose: bool = True) -> CheckResult:
    """Check ``fn(student_logits (N, C), teacher_logits (N, C), labels (N,)) -> float``: of the images the teacher
    gets wrong, the fraction on which the student predicts the teacher's (wrong) class."""

    def test(f):
        for what, s, t, y in _l08_cases():
            want = metrics.shared_mistakes(s, t, y)
            got = python_number(call_checked(f, what, ("student_logits", "teacher_logits", "labels"), s, t, y), what)
            if abs(got - want) <= 1e-6:
                continue
            for explanation, value in _l08_mistakes(s, t, y).items():
                if abs(value - want) > 1e-6 and abs(got - value) <= 1e-6:
                    raise Failed(f"{what}: got {got:.6g}, expected {want:.6g} — that is what you get if you "
                                 f"{explanation}")
            raise Failed(f"{what}: got {got:.6g}, expected {want:.6g}")

    return run_check("shared_mistakes", fn, metrics.shared_mistakes, test, verbose=verbose)
