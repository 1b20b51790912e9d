"""Lesson 04 exercises: the reference answers pass their checks, typical mistakes fail."""

import torch
import torch.nn.functional as F

from kdtutor import checks
from kdtutor.images import distill


def _step(student, teacher, images, labels, optimizer, T, alpha, *, eval_teacher=True, no_grad=True,
          t_squared=True, zero_grad=True, reverse=False):
    if eval_teacher:
        teacher.eval()
    with torch.set_grad_enabled(not no_grad):
        t = teacher(images)
    s = student(images)
    p, q = (s, t) if reverse else (t, s)
    kl = F.kl_div(F.log_softmax(q / T, 1), F.log_softmax(p / T, 1), reduction="batchmean", log_target=True)
    loss = (1 - alpha) * F.cross_entropy(s, labels) + alpha * (T * T if t_squared else 1) * kl
    if zero_grad:
        optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


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
