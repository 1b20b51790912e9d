"""Lesson 01 — softmax with a temperature, computed so that it never overflows.

Shapes: ``logits`` is ``(..., C)`` float; every function works along ``dim``
(default: the last one, the classes). Probabilities have no unit; entropy is in
nats (natural logarithm).

For temperature ``T > 0``::

    softmax(z / T)_c = exp(z_c / T) / Σ_k exp(z_k / T)

``T = 1`` is the ordinary softmax, ``T > 1`` flattens the distribution (more
"dark knowledge" in the small probabilities), ``T → 0`` approaches one-hot.
"""

from __future__ import annotations

import math

import torch


def check_temperature(T: float) -> float:
    """Return ``T`` as a float, or raise ``ValueError`` unless it is finite and > 0."""
    if isinstance(T, torch.Tensor):
        if T.numel() != 1:
            raise ValueError(f"temperature T must be a single number, got a tensor of shape {tuple(T.shape)}")
        T = T.item()
    try:
        T = float(T)
    except (TypeError, ValueError):
        raise ValueError(f"temperature T must be a number, got {T!r}") from None
    if not math.isfinite(T) or T <= 0:
        raise ValueError(f"temperature T must be finite and > 0, got T = {T}")
    return T


def check_logits(logits: torch.Tensor, name: str = "logits") -> torch.Tensor:
    """Return ``logits`` as a float tensor, or raise if it holds NaN or ±inf."""
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        logits = logits.to(torch.get_default_dtype())
    if logits.ndim == 0:
        raise ValueError(f"{name} must have a class dimension, got a scalar")
    if not torch.isfinite(logits).all():
        n_nan = int(torch.isnan(logits).sum())
        n_inf = int(torch.isinf(logits).sum())
        raise ValueError(
            f"{name} contain {n_nan} NaN and {n_inf} infinite value(s); "
            "softmax of non-finite logits is undefined (look for a diverged model or a bad input)"
        )
    return logits


def exp_overflow_threshold(dtype: torch.dtype = torch.float32) -> float:
    """The largest ``x`` for which ``exp(x)`` is still finite in ``dtype``: ``log(finfo(dtype).max)``.

    About 88.72 for float32 and bfloat16 (same exponent range), 11.09 for float16
    (largest value 65504), 709.78 for float64.
    """
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point type, got {dtype}")
    return math.log(torch.finfo(dtype).max)


def naive_softmax(logits: torch.Tensor, T: float = 1.0, dim: int = -1) -> torch.Tensor:
    """The textbook formula ``exp(z/T) / Σ exp(z/T)``, for teaching only.

    It overflows as soon as a logit / T exceeds :func:`exp_overflow_threshold`:
    ``exp(89.)`` is already ``inf`` in float32 (and ``exp(12.)`` in float16), and
    ``inf / inf = NaN``. Use :func:`softmax` instead.
    """
    e = torch.exp(logits / T)
    return e / e.sum(dim=dim, keepdim=True)


def log_softmax(logits: torch.Tensor, T: float = 1.0, dim: int = -1, check: bool = True) -> torch.Tensor:
    """``log softmax(logits / T)``, stable for any finite logits.

    Subtracting the maximum first (the log-sum-exp trick) leaves the result
    unchanged, because softmax ignores a constant added to every logit, and keeps
    every ``exp`` argument ≤ 0, so nothing overflows::

        log p_c = (z_c − m) − log Σ_k exp(z_k − m),   z = logits / T,  m = max_k z_k

    (computed as ``(logits − max logits) / T``, the same numbers, so that dividing by
    a small T cannot overflow either).

    Args:
        logits: ``(..., C)`` float.
        T: temperature, finite and > 0.
        check: look for NaN/inf in ``logits`` first. Each look makes a GPU wait for
            its work to finish (a synchronisation), so the training loop turns it
            off and watches the loss instead.
    Returns:
        ``(..., C)`` log-probabilities (≤ 0).
    """
    T = check_temperature(T)
    if check:
        logits = check_logits(logits)
    # Shift first, then scale: (z − max z) / T is ≤ 0 whatever T is. Dividing first
    # overflows when T < 1 and the logits are large (float16 logits of 1000 at T = 0.01
    # give inf, and inf − inf = NaN).
    z = (logits - logits.amax(dim=dim, keepdim=True)) / T
    return z - torch.log(torch.exp(z).sum(dim=dim, keepdim=True))


def softmax(logits: torch.Tensor, T: float = 1.0, dim: int = -1, check: bool = True) -> torch.Tensor:
    """``softmax(logits / T)``, stable for any finite logits. ``(..., C)`` → ``(..., C)``."""
    return torch.exp(log_softmax(logits, T=T, dim=dim, check=check))


def entropy(probs: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Shannon entropy ``H(p) = −Σ p log p`` in nats, with ``0·log 0 = 0``.

    Args:
        probs: ``(..., C)`` probabilities (each row sums to 1).
    Returns:
        ``(...)`` entropies, between 0 (one-hot) and ``log C`` (uniform).
    """
    if not torch.isfinite(probs).all() or (probs < 0).any():
        raise ValueError("probs must be finite and ≥ 0")
    return -torch.special.xlogy(probs, probs).sum(dim=dim)


def entropy_from_logits(logits: torch.Tensor, T: float = 1.0, dim: int = -1) -> torch.Tensor:
    """``H(softmax(logits / T))`` in nats, computed from log-probabilities (no ``log 0``)."""
    logp = log_softmax(logits, T=T, dim=dim)
    return -(logp.exp() * logp).sum(dim=dim)


def temperature_summary(logits: torch.Tensor, T: float) -> dict:
    """What temperature ``T`` does to one logit vector: the data behind lesson 01's slider.

    Args:
        logits: ``(C,)`` float, one example.
        T: temperature > 0.
    Returns:
        dict with ``probs`` ``(C,)``, ``entropy`` (nats), ``max_entropy`` (``log C``),
        ``top_prob`` and ``effective_classes`` (``exp(H)``: 1 for one-hot, C for uniform).
    """
    if logits.ndim != 1:
        raise ValueError(f"expected one logit vector of shape (C,), got shape {tuple(logits.shape)}")
    probs = softmax(logits, T=T)
    H = float(entropy(probs))
    return {
        "T": check_temperature(T),
        "probs": probs,
        "entropy": H,
        "max_entropy": math.log(logits.numel()),
        "top_prob": float(probs.max()),
        "effective_classes": math.exp(H),
    }


def temperature_for_entropy(logits: torch.Tensor, target_entropy: float, rel_tol: float = 1e-10) -> float:
    """The temperature ``T`` at which ``H(softmax(logits / T))`` equals ``target_entropy`` (nats).

    For logits that are not all equal the entropy grows strictly with ``T``: from
    ``log k`` as ``T → 0`` (``k`` = how many logits tie for the maximum, usually 1) to
    ``log C`` as ``T → ∞``. So one bisection on ``log T`` finds the answer.

    Args:
        logits: ``(C,)`` float, one example.
        target_entropy: nats, strictly between the two limits above.
        rel_tol: stop when the bracket ``[T_lo, T_hi]`` satisfies ``log(T_hi / T_lo) < rel_tol``
            (a relative precision of about ``rel_tol`` on T).
    Returns:
        ``T`` as a float.
    Raises:
        ValueError: for a target outside ``(0, log C)``, all-equal logits, or a target
            that no temperature in ``[1e-4, 1e4] × (max − min logit)`` reaches.
    """
    logits = check_logits(logits)
    if logits.ndim != 1:
        raise ValueError(f"expected one logit vector of shape (C,), got shape {tuple(logits.shape)}")
    target = float(target_entropy)
    h_max = math.log(logits.numel())
    if not (0.0 < target < h_max):  # also false for NaN
        raise ValueError(
            f"target entropy must lie strictly between 0 and log C = {h_max:.4f} nats "
            f"for C = {logits.numel()} classes, got {target}"
        )
    z = logits.double()
    spread = float(z.max() - z.min())
    if spread == 0.0:
        raise ValueError("all logits are equal: the entropy is log C at every temperature")

    def h(log_t: float) -> float:
        return float(entropy_from_logits(z, T=math.exp(log_t)))

    lo, hi = math.log(spread * 1e-4), math.log(spread * 1e4)
    h_lo, h_hi = h(lo), h(hi)
    if not (h_lo < target < h_hi):
        raise ValueError(
            f"no temperature in [{math.exp(lo):.3g}, {math.exp(hi):.3g}] reaches {target} nats "
            f"(the entropy there goes from {h_lo:.4f} to {h_hi:.4f})"
        )
    while hi - lo > rel_tol:
        mid = 0.5 * (lo + hi)
        if h(mid) < target:
            lo = mid
        else:
            hi = mid
    return math.exp(0.5 * (lo + hi))
