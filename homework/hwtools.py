"""What the graded homework needs besides your own code: your variant and a small run on digits.

* :func:`variant` — your homework's numbers, derived from your student id: the SHA-256 of
  ``"kdtutor-homework:<homework>:<id>"`` seeds a random generator that picks them. Every student
  gets their own; the grader checks you against the variant of the id on its roster, so a
  classmate's numbers (or notebook) fail for you.
* :func:`digits_run` — a teacher and two students (scratch, distilled with the loss you pass)
  on scikit-learn's 8×8 digits (1,797 images bundled with scikit-learn: no download), full
  batch, float64, in well under a second on a CPU. The same inputs give the same numbers on any
  machine up to rounding in the last digits.

This file ships with the homework notebooks; it holds no answer.
"""

from __future__ import annotations

import hashlib
import math
import random

PLACEHOLDER = "WRITE-YOUR-STUDENT-ID-HERE"
HOMEWORKS = ("hw1", "hw2")
DATA_NAME = "scikit-learn digits (8×8, 1,797 images)"


def seed_of(homework: str, student_id: str) -> int:
    """A 64-bit seed from ``homework`` and ``student_id`` (case and surrounding spaces ignored)."""
    if homework not in HOMEWORKS:
        raise ValueError(f"homework must be one of {HOMEWORKS}, got {homework!r}")
    if not isinstance(student_id, str):
        raise ValueError(f"the student id must be text, e.g. 's1234567', got {type(student_id).__name__}")
    sid = student_id.strip().lower()
    if not sid or sid == PLACEHOLDER.lower():
        raise ValueError("write your own student id in STUDENT_ID (the first code cell), e.g. STUDENT_ID = 's1234567'")
    if len(sid) > 64 or not sid.isprintable():
        raise ValueError(f"a student id is at most 64 printable characters, got {student_id!r}")
    digest = hashlib.sha256(f"kdtutor-homework:{homework}:{sid}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def variant(homework: str, student_id: str) -> dict:
    """Your numbers for ``homework`` (``"hw1"`` or ``"hw2"``): a dict, printed by the notebook's first cell."""
    rng = random.Random(seed_of(homework, student_id))
    v = {"homework": homework, "student_id": student_id.strip().lower(), "run_seed": rng.randrange(10_000)}
    if homework == "hw1":
        v.update(T=round(rng.uniform(2.0, 6.0), 1), alpha=rng.choice([0.5, 0.6, 0.7, 0.8, 0.9]),
                 eps=rng.choice([0.05, 0.1, 0.15, 0.2]), lam=rng.choice([0.1, 0.2, 0.3, 0.4]),
                 n_labelled=rng.randrange(20, 61, 5))
    else:
        n_seeds = rng.randrange(5, 9)
        true_gain = rng.choice([-1.0, 0.0, 0.6, 1.5])
        scratch = [round(rng.gauss(68.0, 0.8), 2) for _ in range(n_seeds)]
        kd = [round(s + true_gain + rng.gauss(0.0, 0.7), 2) for s in scratch]
        v.update(k=rng.randrange(2, 7), T=round(rng.uniform(2.0, 6.0), 1), alpha=rng.choice([0.7, 0.8, 0.9]),
                 n_labelled=rng.randrange(20, 61, 5), scratch=scratch, kd=kd)
    return v


def _pool(x):
    """(N, 64) 8×8 images → (N, 16): the mean of each 2×2 block (the student sees less)."""
    return x.reshape(-1, 4, 2, 4, 2).mean(dim=(2, 4)).reshape(-1, 16)


def _fit_linear(x, loss_of_logits, steps: int, lr: float):
    """A linear softmax classifier (N, F) → (N, 10) from zeros, full-batch gradient descent; its (W, b)."""
    import torch

    w = torch.zeros(x.shape[1], 10, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(10, dtype=torch.float64, requires_grad=True)
    for _ in range(steps):
        loss = loss_of_logits(x @ w + b)
        gw, gb = torch.autograd.grad(loss, (w, b))
        with torch.no_grad():
            w -= lr * gw
            b -= lr * gb
    return w.detach(), b.detach()


def digits_run(run_seed: int, n_labelled: int, loss_fn=None, steps: int = 300, lr: float = 0.5) -> dict:
    """Teacher, scratch student and distilled student on the digits; test accuracies (%) and logits.

    The teacher (linear, 64 pixels) learns from all 1,297 training images; the students (linear,
    16 pooled pixels) see only ``n_labelled`` of them, chosen by ``run_seed``. The scratch student
    minimises cross-entropy; the distilled one minimises ``loss_fn(student_logits, teacher_logits,
    labels)`` (``(n, 10)``, ``(n, 10)``, ``(n,)`` int64 → a scalar tensor), e.g. your own KD loss;
    without ``loss_fn`` there is no distilled student. The 500 test images are the same for everyone.

    Returns ``{"teacher_acc", "scratch_acc", "kd_acc"}`` (%, test), ``"kd_nll"`` (the distilled
    student's mean test cross-entropy, nats) and the test logits ``"teacher_logits"``,
    ``"scratch_logits"``, ``"kd_logits"`` ((500, 10) float64), ``"test_labels"`` ((500,) int64)."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    if not (isinstance(n_labelled, int) and 10 <= n_labelled <= 1297):
        raise ValueError(f"n_labelled must be a whole number in [10, 1297], got {n_labelled!r}")
    x_all, y_all = load_digits(return_X_y=True)
    x_all = torch.tensor(x_all / 16.0, dtype=torch.float64)
    y_all = torch.tensor(y_all, dtype=torch.int64)
    order = torch.randperm(len(y_all), generator=torch.Generator().manual_seed(0))  # one fixed split for all
    test, train = order[:500], order[500:]
    tw, tb = _fit_linear(x_all[train], lambda z: F.cross_entropy(z, y_all[train]), steps, lr)
    picked = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(int(run_seed)))[:n_labelled]]
    xs, ys = _pool(x_all[picked]), y_all[picked]
    teacher_on_picked = x_all[picked] @ tw + tb
    out = {"teacher_logits": x_all[test] @ tw + tb, "test_labels": y_all[test]}
    sw, sb = _fit_linear(xs, lambda z: F.cross_entropy(z, ys), steps, lr)
    out["scratch_logits"] = _pool(x_all[test]) @ sw + sb
    if loss_fn is not None:
        kw, kb = _fit_linear(xs, lambda z: loss_fn(z, teacher_on_picked, ys), steps, lr)
        out["kd_logits"] = _pool(x_all[test]) @ kw + kb
        out["kd_nll"] = float(F.cross_entropy(out["kd_logits"], y_all[test]))
    for arm in ("teacher", "scratch", "kd"):
        if f"{arm}_logits" in out:
            out[f"{arm}_acc"] = 100.0 * float((out[f"{arm}_logits"].argmax(1) == y_all[test]).double().mean())
    if not all(math.isfinite(v) for k, v in out.items() if k.endswith(("_acc", "_nll"))):
        raise ValueError("the run gave a non-finite accuracy or loss: does your loss_fn return a finite scalar?")
    return out
