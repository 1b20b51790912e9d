"""Lesson 02 — the losses of knowledge distillation, with one convention.

Shapes: ``logits: (N, C) float``, ``labels: (N,) int64`` in ``[0, C)``. Every loss is
summed over classes and averaged over the batch (PyTorch's ``reduction="batchmean"``),
in nats.

**One argument order**, in every loss here and in every exercise of the course: the
student's logits first, then the teacher's, like ``F.kl_div(input, target)``::

    kl_divergence(student_logits, teacher_logits, T)  = KL(p ‖ q)
    p = softmax(teacher_logits / T)   (the target),   q = softmax(student_logits / T)

Swapping the two arguments gives the *reverse* KL, ``KL(q ‖ p)``.

The combined loss (Hinton et al. 2015; the same convention as RepDistiller and
mdistiller), where α is the weight of the *distillation* term::

    loss = (1 − α) · CE(labels, softmax(student)) + α · T² · KL(p ‖ q)

Why T²: the gradient of ``KL(p ‖ q)`` with respect to the student's logits is
``(q − p) / T`` per example, and ``q − p`` itself shrinks like 1/T for large T, so the
gradient shrinks like 1/T²; multiplying by T² keeps its size comparable to the CE term's.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from kdtutor.kd.softmax import check_logits, check_temperature, log_softmax


# --------------------------------------------------------------------------- checks
def check_labels(labels: torch.Tensor, logits: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``labels`` is ``(N,)`` int64 in ``[0, C)`` for ``logits`` ``(N, C)``."""
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (N, C), got {tuple(logits.shape)}")
    if not isinstance(labels, torch.Tensor):
        raise ValueError(f"labels must be a tensor of class indices, got {type(labels).__name__}")
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


def _check_teacher_is_constant(teacher_logits: torch.Tensor) -> None:
    if teacher_logits.requires_grad:
        raise ValueError(
            "teacher_logits require grad, so the loss would back-propagate into the teacher: "
            "compute them under torch.no_grad() with teacher.eval(), or pass teacher_logits.detach()"
        )


# --------------------------------------------------------------------------- losses
def cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0, check: bool = True
) -> torch.Tensor:
    """Hard-label cross-entropy ``−log q_y`` with ``q = softmax(logits)`` (T = 1), mean over the batch.

    With ``label_smoothing = ε`` the target is ``(1 − ε)·onehot(y) + ε/C``, as in
    ``torch.nn.functional.cross_entropy``. Its gradient is ``(q − target) / N``.

    Args:
        logits: ``(N, C)`` student logits.
        labels: ``(N,)`` int64 class indices.
        check: check values (NaN, label range); see :func:`kdtutor.kd.softmax.log_softmax`.
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


def kl_divergence(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float = 1.0, check: bool = True
) -> torch.Tensor:
    """``KL(p ‖ q) = Σ_c p_c (log p_c − log q_c)``, p = softmax(teacher/T), q = softmax(student/T).

    Summed over classes, mean over the batch, in nats; ≥ 0, and 0 only when p = q.
    The order is ``F.kl_div(input, target)``'s: the distribution being fitted (the
    student, q) first, the target (the teacher, p) second; p weights the sum.
    ``kl_divergence(teacher_logits, student_logits)`` is the reverse KL ``KL(q ‖ p)``.

    Args:
        student_logits: ``(N, C)``, defines q.
        teacher_logits: ``(N, C)``, defines p.
        T: temperature > 0, applied to both.
    Returns:
        scalar, nats. Its gradient with respect to ``student_logits`` is ``(q − p) / (T·N)``.
    """
    check_logit_pair(student_logits, teacher_logits)
    logq = log_softmax(student_logits, T=T, check=check)
    logp = log_softmax(teacher_logits, T=T, check=check)
    return (logp.exp() * (logp - logq)).sum(dim=1).mean()


def soft_cross_entropy(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float = 1.0, check: bool = True
) -> torch.Tensor:
    """Cross-entropy against the teacher's softened distribution: ``H(p, q) = −Σ_c p_c log q_c``.

    p = softmax(teacher/T), q = softmax(student/T); both arguments are *logits*, the
    student's first. Equals ``H(p) + KL(p ‖ q)``: the same gradient as
    :func:`kl_divergence` (``H(p)`` does not depend on the student), but its minimum is
    the teacher's entropy ``H(p)``, not 0. Hinton et al. (2015) wrote the distillation
    objective in this form, and so did earlier revisions of the PyTorch KD tutorial (a later
    revision computes the KL).

    Args:
        student_logits: ``(N, C)``.
        teacher_logits: ``(N, C)``, no gradients needed.
        T: temperature > 0, applied to both.
    Returns:
        scalar, nats, mean over the batch.
    """
    check_logit_pair(student_logits, teacher_logits)
    logq = log_softmax(student_logits, T=T, check=check)
    p = log_softmax(teacher_logits, T=T, check=check).exp()
    return -(p * logq).sum(dim=1).mean()


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
    _check_teacher_is_constant(teacher_logits)
    return T * T * kl_divergence(student_logits, teacher_logits, T=T, check=check)


def logit_mse(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Mean squared error between logits, ``mean over N and C of (s − z)²``.

    Same as ``F.mse_loss(student, teacher)``. For large T,
    ``kd_loss(s, z, T) → ½ · logit_mse(s − mean s, z − mean z)``, the MSE of the
    *centred* logits (each row minus its own mean): lesson 02's high-temperature limit
    (Hinton et al. 2015; regressing logits is how Ba & Caruana 2014 trained their students).
    """
    check_logit_pair(student_logits, teacher_logits)
    s, t = check_logits(student_logits, "student_logits"), check_logits(teacher_logits, "teacher_logits")
    return ((s - t) ** 2).mean()


def probability_mse(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float = 1.0) -> torch.Tensor:
    """``½ · Σ_c (q_c − p_c)²`` between the softened probabilities, mean over the batch.

    p = softmax(teacher/T), q = softmax(student/T). A common alternative to the KL; its
    gradient with respect to the student's logits is, per example,

        ``q_j · [(q_j − p_j) − Σ_c q_c (q_c − p_c)] / T``,

    the KL's ``(q − p)/T`` multiplied by the student's own probability (and centred),
    so it vanishes where the student's softmax saturates (q one-hot), even when the
    student is confidently wrong. For large T, ``C · T² · probability_mse`` tends to the
    same limit as ``kd_loss``: ½ · MSE of the centred logits.

    Args:
        student_logits: ``(N, C)``.
        teacher_logits: ``(N, C)``.
        T: temperature > 0.
    Returns:
        scalar (probability² units).
    """
    T = check_temperature(T)
    check_logit_pair(student_logits, teacher_logits)
    q = log_softmax(student_logits, T=T).exp()
    p = log_softmax(teacher_logits, T=T).exp()
    return 0.5 * ((q - p) ** 2).sum(dim=1).mean()


def select_positions(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor | None,
                     mask: torch.Tensor | None = None):
    """The counted positions of ``(…, C)`` logits (and ``(…)`` labels) as ``(N, C)`` rows.

    ``mask (…) bool`` keeps the positions where it is True (padding and prompts are *selected
    out* before any arithmetic, so a NaN or inf there reaches neither the value nor the
    gradient); without a mask every position counts. ``(N, C)`` logits without a mask are
    returned as they are: one position per image is the case every image lesson uses.
    """
    if student_logits.ndim == 2 and mask is None:
        return student_logits, teacher_logits, labels
    if not isinstance(student_logits, torch.Tensor) or not isinstance(teacher_logits, torch.Tensor):
        raise ValueError("student_logits and teacher_logits must be tensors of shape (..., C)")
    if student_logits.ndim < 2 or student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student_logits {tuple(student_logits.shape)} and teacher_logits "
                         f"{tuple(teacher_logits.shape)} must have one shape (..., C)")
    positions = student_logits.shape[:-1]
    if labels is not None and tuple(labels.shape) != tuple(positions):
        raise ValueError(f"labels must have shape {tuple(positions)} (the logits without C), got {tuple(labels.shape)}")
    if mask is None:
        C = student_logits.shape[-1]
        rows = (student_logits.reshape(-1, C), teacher_logits.reshape(-1, C))
        return (*rows, None if labels is None else labels.reshape(-1))
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or tuple(mask.shape) != tuple(positions):
        raise ValueError(f"mask must be a bool tensor of shape {tuple(positions)} (True = count this position), "
                         f"got {type(mask).__name__} {tuple(getattr(mask, 'shape', ()))} {getattr(mask, 'dtype', '')}")
    if not mask.any():
        raise ValueError("mask selects no position: there is nothing to average over")
    return student_logits[mask], teacher_logits[mask], None if labels is None else labels[mask]


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor | None,
    T: float = 4.0,
    alpha: float = 0.9,
    label_smoothing: float = 0.0,
    check: bool = True,
    mask: torch.Tensor | None = None,
    divergence: Callable | None = None,
) -> torch.Tensor:
    """``(1 − α)·CE(labels, student) + α·T²·KL(softmax(teacher/T) ‖ softmax(student/T))``.

    α is the weight of the distillation term: α = 0 is training from labels alone
    (exactly :func:`cross_entropy`), α = 1 is pure distillation, which needs no labels
    (pass ``labels=None``). The same loss serves one prediction per image (``(N, C)``) and
    one per position of a sequence (``(B, L, V)``, lesson 07): both terms are means over the
    counted positions (:func:`select_positions`).

    Args:
        student_logits: ``(N, C)`` or ``(…, C)`` float.
        teacher_logits: same shape, no gradients.
        labels: ``(N,)`` / ``(…)`` int64, or ``None`` when ``alpha == 1``.
        T: temperature > 0 (used for the distillation term only).
        alpha: in [0, 1].
        label_smoothing: applied to the CE term only.
        check: check input values (NaN, label range); the training loop passes
            ``False`` and watches the loss for NaN itself (see ``kdtutor.images.train``).
        mask: ``(…)`` bool, True where a position counts (padding and prompts False).
        divergence: ``(student (N, C), teacher (N, C), T, check) → T²-scaled scalar``, the
            distillation term; default :func:`kd_loss` (forward KL). Lesson 07 passes its
            reverse KL and JSD(β) here.
    Returns:
        scalar loss.
    """
    alpha = check_alpha(alpha)
    T = check_temperature(T)
    student_logits, teacher_logits, labels = select_positions(student_logits, teacher_logits, labels, mask)
    kd = (divergence or kd_loss)(student_logits, teacher_logits, T=T, check=check)
    if labels is None:
        if alpha != 1.0:
            raise ValueError(f"labels=None is only allowed for pure distillation (alpha = 1), got alpha = {alpha}: "
                             "the cross-entropy term (weight 1 − alpha) needs the labels")
        return kd
    ce = cross_entropy(student_logits, labels, label_smoothing=label_smoothing, check=check)
    return (1 - alpha) * ce + alpha * kd


def teacher_gradient_effect(loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                            student_logits: torch.Tensor, teacher_logits: torch.Tensor, seed: int = 0) -> float:
    """Does the teacher reach the student? How much the student's gradient changes with the teacher.

    Computes ``g = ∂ loss_fn(s, z) / ∂ s`` once with the real teacher logits ``z`` and once
    with random teacher logits ``z'`` of the same shape and spread (seeded), and returns
    ``‖g(z) − g(z')‖ / ‖g(z)‖``. A distillation loss gives a clearly positive number; **0
    means the student's update does not depend on the teacher at all** (soft labels
    computed but never used, or α = 0, which must then equal training from scratch).

    Args:
        loss_fn: ``(student_logits, teacher_logits) -> scalar``, e.g.
            ``lambda s, z: distillation_loss(s, z, labels, T=4, alpha=0.9)``.
        student_logits: ``(N, C)`` float.
        teacher_logits: ``(N, C)`` float.
        seed: for the random replacement teacher.
    Returns:
        a float ≥ 0 (no unit).
    """
    check_logit_pair(student_logits, teacher_logits)
    teacher = teacher_logits.detach()
    g = torch.Generator(device="cpu").manual_seed(seed)
    spread = float(teacher.std()) if teacher.numel() > 1 and float(teacher.std()) > 0 else 1.0
    other = (spread * torch.randn(teacher.shape, generator=g, dtype=torch.float64)).to(teacher)

    def grad(z: torch.Tensor) -> torch.Tensor:
        s = student_logits.detach().clone().requires_grad_(True)
        loss = loss_fn(s, z)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise ValueError(f"loss_fn must return a scalar tensor, got {type(loss).__name__}")
        if not loss.requires_grad:
            raise ValueError("loss_fn's result does not depend on the student's logits (it carries no gradient)")
        (gs,) = torch.autograd.grad(loss, s, allow_unused=True)
        return torch.zeros_like(s) if gs is None else gs

    g_real, g_other = grad(teacher), grad(other)
    norm = float(g_real.norm())
    if norm == 0.0:
        return 0.0 if float(g_other.norm()) == 0.0 else float("inf")
    return float((g_real - g_other).norm()) / norm


# --------------------------------------------------------------------------- lesson 02's toy: forward vs reverse KL
def _kl_in_direction(student_logits: torch.Tensor, teacher_logits: torch.Tensor, direction: str) -> torch.Tensor:
    if direction == "forward":
        return kl_divergence(student_logits, teacher_logits, check=False)  # KL(p ‖ q), what KD uses
    if direction == "reverse":
        return kl_divergence(teacher_logits, student_logits, check=False)  # KL(q ‖ p)
    raise ValueError(f"direction must be 'forward' (KL(p ‖ q)) or 'reverse' (KL(q ‖ p)), got {direction!r}")


def one_bump_logits(x: torch.Tensor, mu, sigma) -> torch.Tensor:
    """``(1, K)`` logits ``−(x − μ)² / (2σ²)`` over the K positions ``x``: a student that can make one bump."""
    return (-(x - mu) ** 2 / (2 * sigma ** 2))[None]


def kl_landscape(teacher_logits: torch.Tensor, x: torch.Tensor, mus, sigmas, direction: str = "forward"):
    """The loss of the one-bump student against its centre μ, each μ at its best width σ.

    Args:
        teacher_logits: ``(1, K)``.
        x: ``(K,)`` positions.
        mus: ``M`` centres to try; sigmas: widths to try (> 0).
        direction: ``"forward"`` for ``KL(teacher ‖ student)``, ``"reverse"`` for ``KL(student ‖ teacher)``.
    Returns:
        ``(losses, best_sigmas)``, two ``(M,)`` float64 tensors: nats, and the σ reaching each.
    """
    x = x.double()
    t = teacher_logits.double()
    losses, best = [], []
    for mu in mus:
        values = torch.stack([_kl_in_direction(one_bump_logits(x, float(mu), float(s)), t, direction)
                              for s in sigmas])
        i = int(values.argmin())
        losses.append(values[i])
        best.append(float(sigmas[i]))
    return torch.stack(losses), torch.tensor(best, dtype=torch.float64)


def fit_one_bump(teacher_logits: torch.Tensor, x: torch.Tensor, direction: str, mu0: float = 1.0,
                 sigma0: float = 1.0, steps: int = 400, lr: float = 0.05) -> tuple[float, float, float]:
    """Fit the one-bump student's μ and σ by gradient descent (Adam) on the forward or reverse KL.

    Returns:
        ``(μ, σ, final loss in nats)``. Which local minimum the reverse KL ends in depends on ``mu0``.
    """
    x = x.double()
    t = teacher_logits.double()
    mu = torch.tensor(float(mu0), dtype=torch.float64, requires_grad=True)
    log_sigma = torch.tensor(float(sigma0), dtype=torch.float64).log().requires_grad_(True)
    opt = torch.optim.Adam([mu, log_sigma], lr=lr)
    for _ in range(steps):
        loss = _kl_in_direction(one_bump_logits(x, mu, log_sigma.exp()), t, direction)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        final = _kl_in_direction(one_bump_logits(x, mu, log_sigma.exp()), t, direction)
    return mu.item(), log_sigma.exp().item(), final.item()
