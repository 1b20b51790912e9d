"""Checks for lesson 04 (``04_distilling_a_student``): a distillation step, cached logits, a class shift."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from kdtutor.checks.core import CheckResult, Failed, expect_number_close, fmt, python_number, register, run_check

register("kd_step",
         nudge="three things matter: the teacher must neither change nor learn (its mode, its gradients), the loss "
               "is this course's combined loss, and the optimizer needs fresh gradients before each step.",
         answer="teacher.eval() and torch.no_grad() for the teacher's logits; the loss is "
                "(1-alpha)*CE + alpha*T*T*KL(teacher || student) at temperature T; "
                "optimizer.zero_grad() before loss.backward(), then optimizer.step(); return loss.item()")
register("cached_lookup",
         nudge="the loader shuffles, so a batch's position in the epoch says nothing about which examples it "
               "holds: what does the batch itself tell you?",
         answer="the cache is in split order; each batch tells you which examples it holds: return cache[batch.index]")
register("best_class_shift",
         nudge="try every shift on the whole validation set and keep the one with the best accuracy; on ties, "
               "the first (smallest) one.",
         answer="for each candidate shift, add it to column cls of the logits, compute the accuracy "
                "over all validation examples, and keep the best shift (the first one on ties)")


def _kd_step_reference(student, teacher, images, labels, optimizer, T, alpha) -> float:
    from kdtutor.images.distill import freeze, teacher_forward
    from kdtutor.kd.losses import distillation_loss

    teacher_logits = teacher_forward(freeze(teacher), images)
    loss = distillation_loss(student(images), teacher_logits, labels, T=T, alpha=alpha)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def _kd_step_setup(seed: int):
    """A teacher with dropout (its mode matters) and a student with BatchNorm (so does its mode), and a batch."""
    from torch import nn

    torch.manual_seed(seed)
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(12, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 5)).train()
    student = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 5))
    images, labels = torch.randn(16, 3, 2, 2), torch.randint(0, 5, (16,))
    return teacher, student, images, labels


def _kd_step_mistakes(student, teacher, images, labels, T: float, alpha: float, rng_seed: int) -> list:
    """``(loss, explanation)`` of the typical wrong losses, computed with torch.nn.functional on copies of the
    models as they were before the step; ``rng_seed``: the seed the step ran with (the teacher's dropout)."""
    import copy

    import torch.nn.functional as F

    def combined(s, t, ce_weight, kd_weight, reverse=False):
        a, b = (t, s) if reverse else (s, t)
        kl = F.kl_div(F.log_softmax(a / T, 1), F.log_softmax(b / T, 1), reduction="batchmean", log_target=True)
        return (ce_weight * F.cross_entropy(s, labels) + kd_weight * kl).item()

    with torch.no_grad(), torch.random.fork_rng(devices=[]):  # the caller's random state stays as it was
        s = copy.deepcopy(student).train()(images)
        s_eval = copy.deepcopy(student).eval()(images)
        t = copy.deepcopy(teacher).eval()(images)
        torch.manual_seed(rng_seed)
        t_train = copy.deepcopy(teacher).train()(images)
    n_classes = s.shape[1]
    a, t2 = alpha, T * T
    return [
        (combined(s, t, 1 - a, a), "the T² factor on the KL term is missing: (1 − α)·CE + α·T²·KL"),
        (combined(s, t, 1 - a, a * t2 / n_classes),  # what reduction="mean" gives
         "F.kl_div's reduction='mean' divides by N·C (the batch and the classes): use reduction='batchmean', "
         "which sums over the classes and divides by N"),
        (combined(s, t, 1 - a, a * t2, reverse=True),
         "that is the reverse KL(student ‖ teacher): you swapped F.kl_div's arguments; F.kl_div(input, target) "
         "takes the student's log-probabilities as input and the teacher's distribution as target"),
        (combined(s, t, a, (1 - a) * t2),
         "α weighs the cross-entropy in your loss; in this course α weighs the distillation term: "
         "(1 − α)·CE + α·T²·KL"),
        (combined(s, t_train, 1 - a, a * t2),
         "the teacher ran in train mode (its dropout was on, so its logits were noisy): call teacher.eval() "
         "before computing its logits"),
        (combined(s_eval, t, 1 - a, a * t2),
         "the student ran in eval mode (student.eval()): it must train in train mode, so that BatchNorm uses "
         "the batch's statistics and dropout is on; only the teacher goes to eval mode"),
    ]


def kd_step(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise: ``fn(student, teacher, images, labels, optimizer, T, alpha) -> float`` does one
    distillation training step (frozen teacher in eval mode, student in train mode, combined loss,
    zero_grad/backward/step) and returns the loss as a Python float. Each typical wrong loss is named."""
    import copy

    def test(f):
        for seed, T, alpha in [(0, 4.0, 0.9), (1, 1.0, 0.5), (2, 8.0, 0.3)]:
            teacher, student, images, labels = _kd_step_setup(seed)
            before, t_before = copy.deepcopy(student), copy.deepcopy(teacher)
            mine, ref = copy.deepcopy(student), copy.deepcopy(student)
            t_mine, t_ref = copy.deepcopy(teacher), copy.deepcopy(teacher)
            opt_mine = torch.optim.SGD(mine.parameters(), lr=0.5)
            opt_ref = torch.optim.SGD(ref.parameters(), lr=0.5)
            for p in mine.parameters():  # stale gradients from an earlier step
                p.grad = torch.ones_like(p)
            what = f"T={T}, alpha={alpha}"
            torch.manual_seed(100 + seed)
            got = f(mine, t_mine, images, labels, opt_mine, T, alpha)
            want = _kd_step_reference(ref, t_ref, images, labels, opt_ref, T, alpha)
            if any(p.grad is not None and p.grad.abs().sum() > 0 for p in t_mine.parameters()):
                raise Failed("the teacher received gradients: compute its logits under torch.no_grad()")
            if not mine.training:
                raise Failed(f"{what}: your step left the student in eval mode (student.eval()): the student "
                             "learns in train mode (BatchNorm normalises with the batch's statistics, dropout is "
                             "on); only the teacher goes to eval mode. Call student.train() instead, or leave its "
                             "mode alone")
            got = python_number(got, f"{what}: the returned loss")
            if not math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-6):
                if math.isnan(got):
                    raise Failed(f"{what}: your loss is NaN. F.kl_div(input, target) wants the student's "
                                 "log-probabilities as input and the teacher's probabilities as target (or its "
                                 "log-probabilities with log_target=True): did you swap its arguments, or give it "
                                 "probabilities as input?")
                for value, why in _kd_step_mistakes(before, t_before, images, labels, T, alpha, 100 + seed):
                    if math.isclose(got, value, rel_tol=1e-4, abs_tol=1e-6):
                        raise Failed(f"{what}: returned loss {got:.6g}, expected {want:.6g}: {why}")
                raise Failed(f"{what}: returned loss {got!r}, expected {want:.6g} "
                             "(return loss.item() of the combined loss)")
            stale = all(torch.allclose(a, b - 0.5, atol=1e-6) for a, b in zip(mine.parameters(), ref.parameters()))
            for (name, a), b in zip(mine.named_parameters(), ref.parameters()):
                if not torch.allclose(a, b, atol=1e-6):
                    if stale:
                        raise Failed(f"{what}: after your step the student's parameters moved by the stale gradients "
                                     "of an earlier step too: call optimizer.zero_grad() before loss.backward()")
                    raise Failed(f"{what}: after your step, student parameter {name!r} differs "
                                 "from the reference step")

    return run_check("kd_step", fn, _kd_step_reference, test, verbose=verbose)


def _cached_lookup_reference(cache: torch.Tensor, batch) -> torch.Tensor:
    return cache[batch.index]


def cached_lookup(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise: ``fn(cache (N, C), batch) -> (B, C)``: the cached teacher logits of the batch's examples."""
    from kdtutor.images.loader import DeviceLoader
    from kdtutor.images.splits import Split

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
                    raise Failed(f"expected a ({len(batch.labels)}, 5) tensor, got {fmt(got)}")
                if not torch.equal(got, cache[batch.index]):
                    raise Failed(f"epoch {epoch}, batch {b}: these logits belong to other examples — the loader "
                                 "shuffles, so batch b does not hold examples b·B … (b+1)·B − 1")

    return run_check("cached_lookup", fn, _cached_lookup_reference, test, verbose=verbose)


def best_class_shift(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise: ``fn(val_logits, val_labels, cls, shifts) -> float``: the shift of class ``cls``'s
    logit that maximises validation accuracy (the smallest such shift on ties); a Python or NumPy
    number, not a tensor (:func:`~kdtutor.checks.core.python_number`)."""
    from kdtutor.images import distill

    def test(f):
        g = torch.Generator().manual_seed(0)
        shifts = [0.25 * i for i in range(17)]
        for cls, bias in [(3, -2.0), (0, -0.7), (4, 0.0)]:
            labels = torch.randint(0, 5, (300,), generator=g)
            logits = torch.randn(300, 5, generator=g) + 2.5 * torch.nn.functional.one_hot(labels, 5)
            logits[:, cls] += bias  # a class the model under-predicts
            want = distill.best_class_shift(logits, labels, cls, shifts)
            what = f"class {cls} pushed down by {-bias:g}"
            got = python_number(f(logits.clone(), labels, cls, shifts), what)
            expect_number_close(got, want, what, rel=0, abs_=1e-9)
        tie = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]]), torch.tensor([0, 1, 0])
        what = "shifts 0, 0.25 and 0.5 tie (all correct): keep the smallest"
        got = python_number(f(tie[0].clone(), tie[1], 1, [0.0, 0.25, 0.5, 3.0]), what)
        expect_number_close(got, 0.0, what, rel=0, abs_=1e-9)

    return run_check("best_class_shift", fn, distill.best_class_shift, test, verbose=verbose)
