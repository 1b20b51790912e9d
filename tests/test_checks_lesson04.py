"""Lesson 04 exercises: the reference answers pass their checks, typical mistakes fail."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdtutor import checks
from kdtutor.images import distill
from solutions import lesson04 as sol


def _step(student, teacher, images, labels, optimizer, T, alpha, *, eval_teacher=True, no_grad=True,
          t_squared=True, zero_grad=True, reverse=False, reduction="batchmean", alpha_on_ce=False,
          eval_student=False, probabilities_swapped=False, as_tensor=False):
    """One distillation step, right by default; each keyword makes one typical mistake."""
    if eval_teacher:
        teacher.eval()
    if eval_student:
        student.eval()
    with torch.set_grad_enabled(not no_grad):
        t = teacher(images)
    s = student(images)
    p, q = (s, t) if reverse else (t, s)
    if probabilities_swapped:  # F.kl_div(teacher's probabilities, student's log-probabilities)
        kl = F.kl_div(F.softmax(t / T, 1), F.log_softmax(s / T, 1), reduction=reduction)
    else:
        kl = F.kl_div(F.log_softmax(q / T, 1), F.log_softmax(p / T, 1), reduction=reduction, log_target=True)
    a = 1 - alpha if alpha_on_ce else alpha
    loss = (1 - a) * F.cross_entropy(s, labels) + a * (T * T if t_squared else 1) * kl
    if zero_grad:
        optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.detach() if as_tensor else loss.item()


def test_typical_kd_step_mistakes_fail():
    mistakes = [dict(eval_teacher=False), dict(no_grad=False), dict(t_squared=False), dict(zero_grad=False),
                dict(reverse=True)]
    for kw in mistakes:
        wrong = lambda *a, kw=kw: _step(*a, **kw)  # noqa: E731
        assert checks.kd_step(wrong, verbose=False).passed is False, kw
    assert checks.kd_step(lambda *a: _step(*a), verbose=False).passed is True  # the helper itself is right


def test_lookup_by_batch_position_fails():
    by_position = {"b": 0}

    def buggy(cache, batch):
        b = by_position["b"]
        by_position["b"] += 1
        return cache[b * 16:(b * 16) + len(batch.labels)]

    assert checks.cached_lookup(buggy, verbose=False).passed is False
    assert checks.cached_lookup(lambda cache, batch: cache[: len(batch.labels)], verbose=False).passed is False


def test_wrong_shift_choices_fail():
    def maximise_recall(logits, labels, cls, shifts):  # finds every 3, ignores everything else
        return max(shifts, key=lambda s: ((logits[:, cls] + s >= logits.max(1).values)[labels == cls]).float().mean())

    def last_on_ties(logits, labels, cls, shifts):
        accs = [((distill.shift_class_logit(logits, cls, s).argmax(1) == labels).float().mean().item(), s)
                for s in shifts]
        return max(accs)[1]

    assert checks.best_class_shift(maximise_recall, verbose=False).passed is False
    assert checks.best_class_shift(last_on_ties, verbose=False).passed is False


# --------------------------------------------------------------------------- issue 35: each answer and its message
# wrong answers of kd_step: (the mistake, fragments its failure message must hold)
WRONG_STEPS = {
    "student.eval() called": (dict(eval_student=True), ["left the student in eval mode", "student.train()"]),
    "missing T²": (dict(t_squared=False), ["T² factor", "is missing"]),
    "reduction='mean'": (dict(reduction="mean"), ["reduction='mean'", "N·C", "batchmean"]),
    "swapped kl_div arguments (reverse KL)": (dict(reverse=True), ["reverse KL", "swapped"]),
    "swapped kl_div arguments (probabilities as input)": (dict(probabilities_swapped=True), ["NaN", "swap"]),
    "α on the CE": (dict(alpha_on_ce=True), ["α weighs the cross-entropy"]),
    "teacher left in train mode": (dict(eval_teacher=False), ["teacher ran in train mode", "teacher.eval()"]),
    "teacher with gradients": (dict(no_grad=False), ["torch.no_grad()"]),
    "no zero_grad": (dict(zero_grad=False), ["optimizer.zero_grad()"]),
    "the loss as a tensor": (dict(as_tensor=True), ["got a 0-d tensor", "Python float", ".item()"]),
}


@pytest.mark.parametrize("name", WRONG_STEPS)
@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")
def test_issue35_wrong_kd_step_fails_naming_its_mistake(name):
    kw, fragments = WRONG_STEPS[name]
    r = checks.kd_step(lambda *a: _step(*a, **kw), verbose=False)
    assert r.passed is False, r.message
    for fragment in fragments:
        assert fragment in r.message, r.message


def test_issue35_a_kd_step_that_restores_the_teachers_mode_passes():
    def polite(student, teacher, *rest):
        was_training = teacher.training
        loss = sol.kd_step(student, teacher, *rest)
        teacher.train(was_training)
        return loss

    assert checks.kd_step(polite, verbose=False).passed is True


def test_issue35_best_class_shift_as_numpy_float32_passes():
    r = checks.best_class_shift(lambda *a: np.float32(sol.best_class_shift(*a)), verbose=False)
    assert r.passed is True, r.message


def test_issue35_best_class_shift_as_a_tensor_fails():
    r = checks.best_class_shift(lambda *a: torch.tensor(sol.best_class_shift(*a)), verbose=False)
    assert r.passed is False and "got a 0-d tensor" in r.message, r.message
