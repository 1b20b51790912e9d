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


def naive_softmax(logits: torch.Tensor, T: float = 1.0, dim: int = -1) -> torch.Tensor:
    """The textbook formula ``exp(z/T) / Σ exp(z/T)``, for teaching only.

    It overflows: ``exp(89.)`` is already ``inf`` in float32, so logits of a few
    hundred give ``inf / inf = NaN``. Use :func:`softmax` instead.
    """
    e = torch.exp(logits / T)
    return e / e.sum(dim=dim, keepdim=True)


def log_softmax(logits: torch.Tensor, T: float = 1.0, dim: int = -1, check: bool = True) -> torch.Tensor:
    """``log softmax(logits / T)``, stable for any finite logits.

    Subtracting the maximum first (the log-sum-exp trick) leaves the result
    unchanged, because softmax ignores a constant added to every logit, and keeps
    every ``exp`` argument ≤ 0, so nothing overflows::

        log p_c = (z_c − m) − log Σ_k exp(z_k − m),   z = logits / T,  m = max_k z_k

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
    z = logits / T
    z = z - z.amax(dim=dim, keepdim=True)
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
