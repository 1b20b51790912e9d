"""Reference answers to the exercises of lesson 02 (``02_losses_ce_kl_mse``).

Written from scratch with plain torch operations; ``kdtutor.kd.losses`` holds the same
formulas with input checks (shapes, NaN, labels, a teacher that still tracks gradients).
Every function takes the student's logits first, then the teacher's (like
``F.kl_div(input, target)``), and returns a loss connected to the student's logits.
"""

import torch
import torch.nn.functional as F


def _log_softmax(logits: torch.Tensor, T: float) -> torch.Tensor:
    z = logits / T
    z = z - z.amax(dim=1, keepdim=True)
    return z - torch.log(torch.exp(z).sum(dim=1, keepdim=True))


def kl_batchmean(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float = 1.0) -> torch.Tensor:
    """``KL(p ‖ q)``, p = softmax(teacher/T), q = softmax(student/T): sum over classes, mean over the batch."""
    logp = _log_softmax(teacher_logits, T)
    logq = _log_softmax(student_logits, T)
    per_example = (logp.exp() * (logp - logq)).sum(dim=1)  # (N,)
    return per_example.mean()


def combined_kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                     T: float = 4.0, alpha: float = 0.9) -> torch.Tensor:
    """``(1 − α)·CE(labels, student) + α·T²·KL(p_teacher^T ‖ q_student^T)``; α weighs the distillation term."""
    logq = _log_softmax(student_logits, 1.0)  # the CE term uses the ordinary (T = 1) logits
    ce = -logq.gather(1, labels.long()[:, None]).mean()
    kd = T * T * kl_batchmean(student_logits, teacher_logits, T)
    return (1 - alpha) * ce + alpha * kd


def kd_term(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float) -> torch.Tensor:
    """The fixed snippet: ``T² · KL(softmax(teacher/T) ‖ softmax(student/T))``, batch-mean.

    The buggy version fed probabilities to ``F.kl_div``, used ``reduction='mean'`` and
    dropped T². Here: log-probabilities for both (``log_target=True``), the teacher as the
    target, ``'batchmean'``, and T². (Compute ``teacher_logits`` under ``torch.no_grad()``.)
    """
    log_q = F.log_softmax(student_logits / T, dim=1)
    log_p = F.log_softmax(teacher_logits / T, dim=1)
    return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True) * T * T


def _hidden_kl_batchmean(fn):
    """Hidden test (nbgrader hides it from learners): a batch shape and temperature the visible check
    does not use, against an independent reference, torch.nn.functional.kl_div."""
    g = torch.Generator().manual_seed(1414)
    student, teacher = 2 * torch.randn(5, 13, generator=g), 2 * torch.randn(5, 13, generator=g)
    want = F.kl_div(F.log_softmax(student / 3.0, dim=1), F.log_softmax(teacher / 3.0, dim=1),
                    reduction="batchmean", log_target=True)
    got = fn(student.clone(), teacher.clone(), 3.0)
    assert isinstance(got, torch.Tensor) and got.numel() == 1, "expected a scalar tensor"
    assert torch.allclose(got.double(), want.double(), atol=1e-6), f"got {got.item():.6g}, expected {want.item():.6g}"
