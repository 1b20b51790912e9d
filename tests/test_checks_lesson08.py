"""Lesson 08's exercise: the reference answer passes, typical wrong answers fail naming the mistake,
and kdtutor's shared_mistakes agrees with a count written independently (NumPy, by loop)."""

import numpy as np
import pytest
import torch

from kdtutor import checks
from kdtutor.images.metrics import shared_mistakes
from solutions import lesson08 as sol


@pytest.fixture(autouse=True)
def _fresh():
    checks.reset()
    yield
    checks.reset()


def _fails(fn, *words):
    result = checks.shared_mistakes(fn, verbose=False)
    assert result.passed is False, result.message
    for w in words:
        assert w in result.message, result.message


def test_the_reference_answer_passes_and_a_stub_falls_back():
    assert checks.shared_mistakes(sol.shared_mistakes, verbose=False).passed is True

    def stub(student_logits, teacher_logits, labels):
        raise NotImplementedError
    result = checks.shared_mistakes(stub, verbose=False)
    assert result.passed is None and result.fn.__wrapped__ is shared_mistakes


def test_dividing_by_all_images_fails():
    def wrong(s, t, y):
        ps, pt = s.argmax(1), t.argmax(1)
        return ((ps == pt) & (pt != y)).float().mean().item()
    _fails(wrong, "divide by all images")


def test_any_wrong_class_instead_of_the_teachers_fails():
    def wrong(s, t, y):
        bad = t.argmax(1) != y
        return (s.argmax(1)[bad] != y[bad]).float().mean().item()
    _fails(wrong, "whatever class the student predicts")


def test_plain_agreement_and_a_count_and_a_tensor_fail():
    _fails(lambda s, t, y: (s.argmax(1) == t.argmax(1)).float().mean().item(), "agreement over all images")
    _fails(lambda s, t, y: float(((s.argmax(1) == t.argmax(1)) & (t.argmax(1) != y)).sum()), "count")
    _fails(lambda s, t, y: torch.tensor(sol.shared_mistakes(s, t, y)), "a tensor is not a number")


def test_an_answer_that_changes_the_labels_in_place_fails():
    def in_place(s, t, y):
        out = sol.shared_mistakes(s, t, y)
        y.zero_()
        return out
    _fails(in_place, "in place")


def test_kdtutors_shared_mistakes_matches_an_independent_count():
    g = np.random.default_rng(8)
    for _ in range(5):
        t, s = g.normal(size=(300, 5)), g.normal(size=(300, 5))
        y = g.integers(0, 5, 300)
        copied = wrong = 0
        for i in range(300):
            if int(np.argmax(t[i])) != y[i]:
                wrong += 1
                copied += int(np.argmax(s[i])) == int(np.argmax(t[i]))
        got = shared_mistakes(torch.from_numpy(s), torch.from_numpy(t), torch.from_numpy(y))
        assert got == pytest.approx(copied / wrong, abs=1e-12)


def test_shared_mistakes_refuses_a_teacher_that_is_never_wrong_and_bad_shapes():
    t = torch.eye(3) * 4
    with pytest.raises(ValueError, match="right on all 3 examples"):
        shared_mistakes(t, t, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError):
        shared_mistakes(torch.zeros(3, 4), t, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError):
        shared_mistakes(t, t, torch.tensor([0, 1, 7]))
