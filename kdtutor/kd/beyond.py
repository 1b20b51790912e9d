"""Lesson 06 — losses beyond Hinton's: decoupled KD, logit standardisation, feature hints.

Shapes: ``logits: (N, C) float``, ``labels: (N,) int64``, feature maps ``(N, D, H, W)``.
Every loss takes the **student first**, then the teacher (as in :mod:`kdtutor.kd.losses`),
sums over classes and averages over the batch, in nats.

* **Decoupled KD** (Zhao et al., CVPR 2022). With ``b = [p_t, 1 − p_t]`` the binary
  target / non-target probabilities and ``p̂`` the distribution over the *other* classes
  only (Eq. 1–2), classical KD splits exactly into (Eq. 4–5)::

      KL(p^T ‖ q^S) = KL(b^T ‖ b^S) + (1 − p_t^T) · KL(p̂^T ‖ p̂^S)
                    =      TCKD     + (1 − p_t^T) ·      NCKD

  DKD (Eq. 7) replaces the teacher-confidence weight ``1 − p_t^T`` by a free β:
  ``DKD = α·TCKD + β·NCKD``, each term multiplied by T² as in mdistiller's
  ``dkd_loss`` (whose CIFAR-100 default is α = 1, β = 8, T = 4, plus CE with weight 1).
  α and β here are DKD's, *not* this course's α of the combined loss.

* **Logit standardisation** (Sun et al., CVPR 2024): z-score each row of logits,
  ``Z(z) = (z − mean(z)) / (std(z) + ε)`` over the class axis (std with Bessel's
  correction, ε = 1e-7, as in the reference code), for teacher and student, then the usual
  ``T²·KL`` at a "base temperature" T (Eq. 9–10). Adding a constant to, or multiplying
  by a positive number, either side's logits changes nothing.

* **FitNets hints** (Romero et al., ICLR 2015): ``½‖u_h(x) − r(v_g(x))‖²`` (Eq. 3) between a
  teacher feature map and a regressor ``r`` of a student feature map. We use
  RepDistiller's ``HintLoss`` form, the *mean* squared error over all elements
  (``F.mse_loss``), so its weight is comparable across layer sizes; the regressor is in
  :mod:`kdtutor.images.hints`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from kdtutor.kd.losses import check_labels, check_logit_pair, cross_entropy
from kdtutor.kd.softmax import check_temperature, log_softmax


def _check_weight(name: str, value: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number ≥ 0, got {value!r}") from None
    if not value >= 0:  # also false for NaN
        raise ValueError(f"{name} weighs a loss term and must be ≥ 0, got {value}")
    return value


def _check_student_teacher_labels(student_logits, teacher_logits, labels) -> None:
    check_logit_pair(student_logits, teacher_logits)
    check_labels(labels, student_logits)
    if student_logits.shape[1] < 3:
        raise ValueError(f"decoupled KD needs at least 3 classes (2 non-target ones to form a distribution over), "
                         f"got {student_logits.shape[1]}")


# --------------------------------------------------------------------------- decoupled KD
def binary_target_log_probs(logits: torch.Tensor, labels: torch.Tensor, T: float = 1.0) -> torch.Tensor:
    """``log b = [log p_t, log(1 − p_t)]`` per example (DKD Eq. 1), ``(N, 2)``, for ``softmax(logits / T)``.

    Computed from log-sum-exps (stable even when ``p_t`` rounds to 1).
    """
    z = logits / check_temperature(T)
    labels = labels.long()
    mask = F.one_hot(labels, logits.shape[1]).bool()
    lse = torch.logsumexp(z, dim=1, keepdim=True)
    log_pt = z.gather(1, labels[:, None]) - lse
    log_rest = torch.logsumexp(z.masked_fill(mask, float("-inf")), dim=1, keepdim=True) - lse
    return torch.cat([log_pt, log_rest], dim=1)


def non_target_log_probs(logits: torch.Tensor, labels: torch.Tensor, T: float = 1.0) -> torch.Tensor:
    """``log p̂`` (DKD Eq. 2): log-softmax over the non-target classes only, ``(N, C)``.

    The target class gets ``−inf`` (probability 0); each row's other C − 1 entries
    sum to 1 after ``exp``.
    """
    z = logits / check_temperature(T)
    mask = F.one_hot(labels.long(), logits.shape[1]).bool()
    return torch.log_softmax(z.masked_fill(mask, float("-inf")), dim=1)


def _kl_rows(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """``Σ_c p_c (log p_c − log q_c)`` per row, ``(N,)``; entries with ``p_c = 0`` contribute 0."""
    zero = torch.isneginf(logp)
    terms = logp.exp() * (logp - logq.masked_fill(zero, 0.0)).masked_fill(zero, 0.0)
    return terms.sum(dim=1)


def non_target_entropy(logits: torch.Tensor, labels: torch.Tensor, T: float = 1.0) -> torch.Tensor:
    """How flat the distribution among the non-target classes is: ``H(p̂) / log(C − 1)``, ``(N,)``.

    1 means uniform over the C − 1 other classes (no "this 3 looks like an 8" left for NCKD to
    transfer); 0 means all of the non-target mass on one class.
    """
    if logits.ndim != 2 or logits.shape[1] < 3:
        raise ValueError(f"logits must have shape (N, C) with C ≥ 3, got {tuple(logits.shape)}")
    logp = non_target_log_probs(logits, labels, T)
    h = -(logp.exp() * logp.masked_fill(torch.isneginf(logp), 0.0)).sum(dim=1)
    return h / math.log(logits.shape[1] - 1)


def tckd_nckd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
              T: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The per-example pieces of DKD, *without* the T² factor.

    Returns:
        ``(tckd, nckd, weight)``, each ``(N,)``: ``KL(b^T ‖ b^S)``, ``KL(p̂^T ‖ p̂^S)`` in nats,
        and the teacher's ``1 − p_t^T``, so that per example
        ``KL(p^T ‖ q^S) = tckd + weight · nckd`` (Eq. 5).
    """
    _check_student_teacher_labels(student_logits, teacher_logits, labels)
    labels = labels.long()
    lb_s, lb_t = binary_target_log_probs(student_logits, labels, T), binary_target_log_probs(teacher_logits, labels, T)
    tckd = _kl_rows(lb_t, lb_s)
    nckd = _kl_rows(non_target_log_probs(teacher_logits, labels, T), non_target_log_probs(student_logits, labels, T))
    return tckd, nckd, lb_t[:, 1].exp()


def dkd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
             alpha: float = 1.0, beta: float = 8.0, T: float = 4.0) -> torch.Tensor:
    """Decoupled KD (Zhao et al. 2022, Eq. 7): ``T² · mean_N(α·TCKD + β·NCKD)``, nats.

    Args:
        student_logits, teacher_logits: ``(N, C)``, C ≥ 3; the teacher's without gradients.
        labels: ``(N,)`` int64, the true classes (which class is "the target").
        alpha: weight of TCKD (≥ 0); beta: weight of NCKD (≥ 0). DKD's own α and β.
        T: temperature > 0.
    With ``alpha = 1`` and ``beta`` replaced by each example's ``1 − p_t^T`` this is
    ``T²·KL``, i.e. :func:`kdtutor.kd.losses.kd_loss`.
    """
    alpha, beta, T = _check_weight("alpha", alpha), _check_weight("beta", beta), check_temperature(T)
    if teacher_logits.requires_grad:
        raise ValueError("teacher_logits require grad: compute them under torch.no_grad() or pass .detach()")
    tckd, nckd, _ = tckd_nckd(student_logits, teacher_logits, labels, T)
    return T * T * (alpha * tckd + beta * nckd).mean()


def dkd_training_loss(student_logits, teacher_logits, labels, alpha: float = 1.0, beta: float = 8.0,
                      T: float = 4.0, ce_weight: float = 1.0) -> torch.Tensor:
    """What mdistiller trains with: ``ce_weight · CE(labels, student) + dkd_loss(...)``."""
    ce_weight = _check_weight("ce_weight", ce_weight)
    return ce_weight * cross_entropy(student_logits, labels, check=False) + dkd_loss(
        student_logits, teacher_logits, labels, alpha, beta, T)


# --------------------------------------------------------------------------- logit standardisation
def standardize_logits(logits: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Z-score each row over the **class** axis: ``(z − mean_c z) / (std_c z + eps)``, ``(N, C)``.

    ``std`` uses Bessel's correction (``torch.std``'s default), as the reference code does.
    """
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"logits must have shape (N, C), got {shape}")
    if logits.shape[1] < 2:
        raise ValueError(f"standardising over classes needs at least 2 classes, got {logits.shape[1]}")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    return (logits - logits.mean(dim=1, keepdim=True)) / (logits.std(dim=1, keepdim=True) + eps)


def ls_kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float = 2.0) -> torch.Tensor:
    """KD on standardised logits (Sun et al. 2024): ``T² · KL(softmax(Z(z_t)/T) ‖ softmax(Z(z_s)/T))``.

    Args:
        student_logits, teacher_logits: ``(N, C)``, the teacher's without gradients.
        T: the base temperature > 0 (the reference code uses 2 on CIFAR-100).
    Returns:
        scalar, nats × T².
    """
    T = check_temperature(T)
    check_logit_pair(student_logits, teacher_logits)
    if teacher_logits.requires_grad:
        raise ValueError("teacher_logits require grad: compute them under torch.no_grad() or pass .detach()")
    logq = log_softmax(standardize_logits(student_logits), T=T, check=False)
    logp = log_softmax(standardize_logits(teacher_logits), T=T, check=False)
    return T * T * (logp.exp() * (logp - logq)).sum(dim=1).mean()


# --------------------------------------------------------------------------- FitNets hints
def hint_loss(student_features: torch.Tensor, teacher_features: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the (projected) student features and the teacher's.

    Args:
        student_features: ``(N, D, H, W)`` — already mapped by the regressor to the
            teacher's D, H, W (see :class:`kdtutor.images.hints.HintProjector`).
        teacher_features: ``(N, D, H, W)``, no gradients.
    Returns:
        scalar, mean over all N·D·H·W elements (FitNets Eq. 3 up to the factor ½ and the mean).
    """
    for name, f in (("student_features", student_features), ("teacher_features", teacher_features)):
        if not isinstance(f, torch.Tensor) or f.ndim < 2:
            shape = tuple(f.shape) if isinstance(f, torch.Tensor) else type(f).__name__
            raise ValueError(f"{name} must be a tensor of shape (N, D, ...), got {shape}")
    if student_features.shape != teacher_features.shape:
        raise ValueError(f"student features {tuple(student_features.shape)} and teacher features "
                         f"{tuple(teacher_features.shape)} differ in shape: project the student's with a "
                         "HintProjector built for these two layers")
    if teacher_features.requires_grad:
        raise ValueError("teacher_features require grad: compute them under torch.no_grad() or pass .detach()")
    return F.mse_loss(student_features, teacher_features)
