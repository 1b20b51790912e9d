"""Lesson 02 — the losses of knowledge distillation, with one convention.

Shapes: ``logits: (N, C) float``, ``labels: (N,) int64`` in ``[0, C)``,
``probs: (N, C)`` rows summing to 1. Every loss is summed over classes and
averaged over the batch (PyTorch's ``reduction="batchmean"``), in nats.

The combined loss (Hinton et al. 2015; the same convention as RepDistiller and
mdistiller), where α is the weight of the *distillation* term::

    loss = (1 − α) · CE(labels, student) + α · T² · KL(softmax(teacher/T) ‖ softmax(student/T))

Why T²: the gradient of the KL term with respect to the student logits is
``(q − p) / T`` (``p``, ``q`` the teacher's and student's softened probabilities),
so it shrinks like 1/T² as T grows (``q − p`` itself is O(1/T)); multiplying by
T² keeps its size comparable to the CE term whatever T is.
"""

from __future__ import annotations

import torch

from .softmax import check_logits, check_temperature, log_softmax


# --------------------------------------------------------------------------- checks
def check_labels(labels: torch.Tensor, logits: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``labels`` is ``(N,)`` int64 in ``[0, C)`` for ``logits`` ``(N, C)``."""
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (N, C), got {tuple(logits.shape)}")
    if labels.ndim != 1 or labels.shape[0] != logits.shape[0]:
        raise ValueError(
            f"labels must have shape (N,) = ({logits.shape[0]},) to match logits {tuple(logits.shape)}, "
            f"got {tuple(labels.shape)}"
        )
    if labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(
            f"labels must lie in [0, {logits.shape[1]}) for {logits.shape[1]} classes, "
            f"got values from {int(labels.min())} to {int(labels.max())}"
        )


def check_logit_pair(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> None:
    """Raise ``ValueError`` unless student and teacher logits are both ``(N, C)`` with the same N and C."""
    for name, z in (("student_logits", student_logits), ("teacher_logits", teacher_logits)):
        if not isinstance(z, torch.Tensor) or z.ndim != 2:
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"{name} must be a tensor of shape (N, C), got {shape}")
    (ns, cs), (nt, ct) = student_logits.shape, teacher_logits.shape
    if cs != ct:
        raise ValueError(
            f"teacher has {ct} classes but student has {cs} (teacher {tuple(teacher_logits.shape)}, "
            f"student {tuple(student_logits.shape)}): distillation compares distributions over the "
            "same classes; map the teacher's outputs to the student's label space first"
        )
    if ns != nt:
        raise ValueError(
            f"teacher logits are for {nt} examples but student logits for {ns}: "
            "both must come from the same batch, in the same order"
        )


def check_alpha(alpha: float) -> float:
    """Return ``alpha`` as a float, or raise ``ValueError`` unless 0 ≤ α ≤ 1."""
    try:
        alpha = float(alpha)
    except (TypeError, ValueError):
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}") from None
    if not (0.0 <= alpha <= 1.0):  # also false for NaN
        raise ValueError(f"alpha weighs the distillation term and must lie in [0, 1], got {alpha}")
    return alpha


def _check_probs(probs: torch.Tensor, logits: torch.Tensor) -> None:
    if probs.shape != logits.shape:
        raise ValueError(f"target probabilities {tuple(probs.shape)} and logits {tuple(logits.shape)} differ in shape")
    if not torch.isfinite(probs).all():
        raise ValueError("target probabilities must be finite (they contain NaN or inf)")
    if (probs < 0).any():
        raise ValueError(
            f"target probabilities must be ≥ 0 (got a minimum of {float(probs.min()):.4g}); "
            "did you pass logits instead of probabilities?"
        )
    sums = probs.sum(dim=1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-3):
        raise ValueError(
            "each row of target probabilities must sum to 1 (got sums from "
            f"{float(sums.min()):.4g} to {float(sums.max()):.4g}); did you pass logits instead of probabilities?"
        )


# --------------------------------------------------------------------------- losses
def cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0, check: bool = True
) -> torch.Tensor:
    """Hard-label cross-entropy ``−log q_y``, mean over the batch.

    With ``label_smoothing = ε`` the target is ``(1 − ε)·onehot(y) + ε/C``, as in
    ``torch.nn.functional.cross_entropy``.

    Args:
        logits: ``(N, C)`` student logits.
        labels: ``(N,)`` int64 class indices.
        check: check values (NaN, label range); see :func:`kdtutor.softmax.log_softmax`.
    Returns:
        scalar, nats.
    """
    if check:
        logits = check_logits(logits)
        check_labels(labels, logits)
    if not (0.0 <= label_smoothing < 1.0):
        raise ValueError(f"label_smoothing must lie in [0, 1), got {label_smoothing}")
    logq = log_softmax(logits, check=False)
    nll = -logq.gather(1, labels.long()[:, None]).squeeze(1)
    if label_smoothing:
        nll = (1 - label_smoothing) * nll - label_smoothing * logq.mean(dim=1)
    return nll.mean()


def soft_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor, T: float = 1.0) -> torch.Tensor:
    """Cross-entropy against a distribution: ``H(p, q) = −Σ_c p_c log q_c``, q = softmax(logits/T).

    Args:
        logits: ``(N, C)`` student logits.
        target_probs: ``(N, C)`` target probabilities p (rows sum to 1), *not* logits.
    Returns:
        scalar, nats, mean over the batch. Equals ``H(p) + KL(p ‖ q)``.
    """
    logits = check_logits(logits)
    _check_probs(target_probs, logits)
    return -(target_probs * log_softmax(logits, T=T)).sum(dim=1).mean()


def kl_divergence(
    target_logits: torch.Tensor, input_logits: torch.Tensor, T: float = 1.0, check: bool = True
) -> torch.Tensor:
    """``KL(p ‖ q) = Σ_c p_c (log p_c − log q_c)`` with p = softmax(target/T), q = softmax(input/T).

    Summed over classes, mean over the batch, in nats; ≥ 0, and 0 only when p = q.
    Note the order: the *target* (for distillation: the teacher) comes first,
    like the ``p`` in ``KL(p ‖ q)``. Swapping the arguments gives the reverse KL.

    Args:
        target_logits: ``(N, C)``, defines p.
        input_logits: ``(N, C)``, defines q.
    """
    check_logit_pair(input_logits, target_logits)
    logp = log_softmax(target_logits, T=T, check=check)
    logq = log_softmax(input_logits, T=T, check=check)
    return (logp.exp() * (logp - logq)).sum(dim=1).mean()


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float, check: bool = True) -> torch.Tensor:
    """The distillation term ``T² · KL(softmax(teacher/T) ‖ softmax(student/T))``.

    Its gradient with respect to the student logits is ``T · (q − p) / N``.
    Teacher logits must not carry gradients (compute them under ``torch.no_grad()``).

    Args:
        student_logits: ``(N, C)``.
        teacher_logits: ``(N, C)``, same classes, same examples.
        T: temperature > 0.
    Returns:
        scalar, nats × T².
    """
    T = check_temperature(T)
    check_logit_pair(student_logits, teacher_logits)
    if teacher_logits.requires_grad:
        raise ValueError(
            "teacher_logits require grad, so the loss would back-propagate into the teacher: "
            "compute them under torch.no_grad() with teacher.eval(), or pass teacher_logits.detach()"
        )
    return T * T * kl_divergence(teacher_logits, student_logits, T=T, check=check)


def logit_mse(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Mean squared error between logits, ``mean over N and C of (z_s − z_t)²``.

    Same as ``F.mse_loss(student, teacher)``. For zero-mean logits and large T,
    ``kd_loss(·, ·, T) → logit_mse / 2`` (lesson 02: the high-temperature limit).
    """
    check_logit_pair(student_logits, teacher_logits)
    s, t = check_logits(student_logits, "student_logits"), check_logits(teacher_logits, "teacher_logits")
    return ((s - t) ** 2).mean()


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    T: float = 4.0,
    alpha: float = 0.9,
    label_smoothing: float = 0.0,
    check: bool = True,
) -> torch.Tensor:
    """``(1 − α)·CE(labels, student) + α·T²·KL(softmax(teacher/T) ‖ softmax(student/T))``.

    α is the weight of the distillation term: α = 0 is training from labels
    alone, α = 1 is pure distillation (no labels needed).

    Args:
        student_logits: ``(N, C)`` float.
        teacher_logits: ``(N, C)`` float, no gradients.
        labels: ``(N,)`` int64.
        T: temperature > 0 (used for the KL term only).
        alpha: in [0, 1].
        label_smoothing: applied to the CE term only.
        check: check input values (NaN, label range); the training loop passes
            ``False`` and watches the loss for NaN itself (see ``kdtutor.train``).
    Returns:
        scalar loss.
    """
    alpha = check_alpha(alpha)
    ce = cross_entropy(student_logits, labels, label_smoothing=label_smoothing, check=check)
    kd = kd_loss(student_logits, teacher_logits, T=T, check=check)
    return (1 - alpha) * ce + alpha * kd
