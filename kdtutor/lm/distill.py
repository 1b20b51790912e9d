"""Lesson 07 — distilling a language model: token-level losses, top-k teacher logits, and the
data that sequence-level and on-policy distillation train on.

Conventions (the course's, extended from one prediction per image to one per position):

* **Argument order**: the student's logits first, then the teacher's, everywhere.
* **Shapes**: ``student_logits, teacher_logits: (..., V) float`` — usually ``(B, L, V)``,
  one distribution over the ``V`` characters at each of ``L`` positions;
  ``mask: (...) bool`` — True where the position counts (False: padding, prompt).
* **Reduction**: sum over the vocabulary, **mean over the counted positions** (every real
  token weighs the same — the token-level analogue of ``reduction="batchmean"``). Nats.
* **Temperature**: both distributions at temperature T, the result multiplied by T² (lesson 02).

Divergences, with p = teacher, q = student at temperature T:

* forward KL  ``KL(p ‖ q) = Σ_v p_v (log p_v − log q_v)`` — mode-covering (what lessons 02–04 use);
* reverse KL  ``KL(q ‖ p)`` — mode-seeking when the student cannot match the teacher. Here it is
  computed token by token on fixed text (off-policy); MiniLLM (Gu et al. 2024) minimises the
  *sequence-level* reverse KL by policy gradient on the student's own samples, which this is not;
* generalised JSD(β) as in GKD (Agarwal et al. 2024) and TRL's ``generalized_jsd_loss``:
  with ``m = β·p + (1 − β)·q``, ``JSD_β = β·KL(p ‖ m) + (1 − β)·KL(q ‖ m)``; β = 0 is defined as
  forward KL and β = 1 as reverse KL (TRL's convention from version 0.16 on; 0.15.2 and earlier
  swap them). ``JSD_β / β → KL(p ‖ q)`` as β → 0 and
  ``JSD_β / (1 − β) → KL(q ‖ p)`` as β → 1, which is why the ends are named that way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from kdtutor.kd.losses import distillation_loss
from kdtutor.kd.softmax import check_temperature

DIVERGENCES = ("forward", "reverse", "jsd")


# --------------------------------------------------------------------------- checks of inputs
def check_pair(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor | None = None,
               T: float = 1.0) -> None:
    """Raise ``ValueError`` unless both are float tensors of one shape ``(..., V)`` with V ≥ 2,
    ``mask`` (if given) is a bool tensor of shape ``(...)`` with at least one True, and T > 0."""
    for name, z in (("student_logits", student_logits), ("teacher_logits", teacher_logits)):
        if not isinstance(z, torch.Tensor) or not z.is_floating_point():
            raise ValueError(f"{name} must be a float tensor, got {type(z).__name__} "
                             f"{getattr(z, 'dtype', '')}")
        if z.ndim < 2 or z.shape[-1] < 2:
            raise ValueError(f"{name} must have shape (..., V) with V ≥ 2, got {tuple(z.shape)}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student_logits {tuple(student_logits.shape)} and teacher_logits "
                         f"{tuple(teacher_logits.shape)} must have the same shape")
    check_mask(mask, student_logits.shape[:-1])
    check_temperature(T)


def check_mask(mask: torch.Tensor | None, shape) -> None:
    if mask is None:
        return
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor (True = count this position), got "
                         f"{type(mask).__name__} {getattr(mask, 'dtype', '')}")
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"mask has shape {tuple(mask.shape)}, expected {tuple(shape)} (the logits without V)")
    if not mask.any():
        raise ValueError("mask selects no position: there is nothing to average over")


def check_beta(beta: float) -> float:
    if not (isinstance(beta, (int, float)) and 0.0 <= beta <= 1.0):
        raise ValueError(f"beta must be a number in [0, 1] (0 = forward KL, 1 = reverse KL), got {beta!r}")
    return float(beta)


def _real(z: torch.Tensor) -> torch.Tensor:
    """``z`` in float32, or float64 if it is float64 (half precision is too coarse for log-probabilities)."""
    return z.double() if z.dtype == torch.float64 else z.float()


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of ``values (...)`` over the positions where ``mask (...)`` is True.

    Masked positions are *selected out* (``torch.where``), not multiplied by 0, so a NaN or
    inf at a padded position cannot leak into the result's **value** (``inf · 0`` is NaN).
    The **gradient** is another matter: if ``values`` was computed from inputs that give inf at a
    padded position (``−log 0``), the gradient there is ``0 · inf`` = NaN through ``torch.where``
    as through a multiplication. Select the *inputs* before the operation (as
    :func:`generalized_jsd` does with ``logits[mask]``), then average the result here.
    """
    if mask is None:
        return values.mean()
    check_mask(mask, values.shape)
    return torch.where(mask, values, torch.zeros((), dtype=values.dtype, device=values.device)).sum() / mask.sum()


# --------------------------------------------------------------------------- per-position divergences
def _kl_per_position(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """``KL(p ‖ q) = Σ p (log p − log q)`` over the last dimension, from log-probabilities.

    Terms with p = 0 (log p = −inf) are 0, selected out so no ``0 · inf`` NaN appears."""
    terms = log_p.exp() * (log_p - log_q)
    return torch.where(torch.isneginf(log_p), torch.zeros((), dtype=terms.dtype, device=terms.device), terms).sum(-1)


def token_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor, beta: float = 0.0,
                     T: float = 1.0) -> torch.Tensor:
    """Generalised JSD(β) between teacher and student at each position, at temperature T,
    **without** T² and without reduction: ``(...)`` in nats. β = 0: forward KL, β = 1: reverse KL."""
    check_pair(student_logits, teacher_logits, None, T)
    beta = check_beta(beta)
    log_q = F.log_softmax(_real(student_logits) / T, dim=-1)
    log_p = F.log_softmax(_real(teacher_logits) / T, dim=-1)
    if beta == 0.0:
        return _kl_per_position(log_p, log_q)
    if beta == 1.0:
        return _kl_per_position(log_q, log_p)
    log_m = torch.logsumexp(torch.stack([log_p + math.log(beta), log_q + math.log1p(-beta)]), dim=0)
    return beta * _kl_per_position(log_p, log_m) + (1 - beta) * _kl_per_position(log_q, log_m)


def generalized_jsd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, beta: float = 0.5,
                    mask: torch.Tensor | None = None, T: float = 1.0) -> torch.Tensor:
    """Mean over counted positions of ``JSD_β(p_t^T, p_s^T)``: a scalar, nats (no T²: like
    :func:`kdtutor.kd.losses.kl_divergence`; :func:`token_kd_loss` is the T²-scaled KD loss)."""
    check_pair(student_logits, teacher_logits, mask, T)
    if mask is not None:  # keep the counted positions only: (N, V); padding never enters the arithmetic
        student_logits, teacher_logits = student_logits[mask], teacher_logits[mask]
    return token_divergence(student_logits, teacher_logits, beta, T).mean()


def forward_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor | None = None,
               T: float = 1.0) -> torch.Tensor:
    """Mean over counted positions of ``KL(p_teacher^T ‖ p_student^T)``: scalar, nats (no T²)."""
    return generalized_jsd(student_logits, teacher_logits, 0.0, mask, T)


def reverse_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor | None = None,
               T: float = 1.0) -> torch.Tensor:
    """Mean over counted positions of ``KL(p_student^T ‖ p_teacher^T)``: scalar, nats (no T²)."""
    return generalized_jsd(student_logits, teacher_logits, 1.0, mask, T)


def beta_of(divergence: str, beta: float = 0.5) -> float:
    """The β of a divergence named ``"forward"`` (0), ``"reverse"`` (1) or ``"jsd"`` (``beta``)."""
    if divergence not in DIVERGENCES:
        raise ValueError(f"divergence must be one of {DIVERGENCES}, got {divergence!r}")
    return {"forward": 0.0, "reverse": 1.0}.get(divergence, check_beta(beta))


def token_kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor | None = None,
                  divergence: str = "forward", beta: float = 0.5, T: float = 1.0, alpha: float = 1.0,
                  mask: torch.Tensor | None = None) -> torch.Tensor:
    """The course's combined loss, per token: ``(1 − α)·CE(targets, student) + α·T²·D(teacher, student)``.

    It *is* :func:`kdtutor.kd.losses.distillation_loss` (the image lessons' loss) over the counted
    positions, with the divergence D chosen here: forward KL, reverse KL or JSD(β).

    Args:
        student_logits, teacher_logits: ``(..., V)``.
        targets: ``(...) int64`` the next characters (needed only when α < 1).
        divergence: ``"forward"``, ``"reverse"`` or ``"jsd"`` (with ``beta``).
        mask: ``(...)`` bool, True where a position counts.
    Both terms are means over the counted positions.
    """
    b = beta_of(divergence, beta)
    check_pair(student_logits, teacher_logits, mask, T)
    if alpha != 1.0 and (targets is None or targets.shape != student_logits.shape[:-1]):
        raise ValueError("alpha < 1 needs targets of shape (...) matching the logits without V")

    def term(s: torch.Tensor, t: torch.Tensor, T: float, check: bool = True) -> torch.Tensor:
        return T * T * token_divergence(s, t, b, T).mean()

    return distillation_loss(student_logits, teacher_logits, targets if alpha != 1.0 else None, T, alpha,
                             mask=mask, divergence=term)


# --------------------------------------------------------------------------- top-k teacher logits
@dataclass
class TopK:
    """The teacher's k most likely characters at each position, stored instead of all V logits.

    ``logprobs (..., k) float32``: ``log p_t^T`` of those characters (at temperature ``T``),
    largest first; ``indices (..., k) uint8`` (``int16`` if V > 256): which characters;
    ``rest (...) float32``: ``log`` of the probability of all the others (−inf when k = V).
    """

    logprobs: torch.Tensor
    indices: torch.Tensor
    rest: torch.Tensor
    T: float
    vocab_size: int

    @property
    def k(self) -> int:
        return self.logprobs.shape[-1]

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.logprobs, self.indices, self.rest))

    def full_nbytes(self, dtype: torch.dtype = torch.float32) -> int:
        """What the full logits of the same positions take: positions × V × bytes per value."""
        return self.rest.numel() * self.vocab_size * torch.empty((), dtype=dtype).element_size()

    def __getitem__(self, idx) -> TopK:
        return TopK(self.logprobs[idx], self.indices[idx], self.rest[idx], self.T, self.vocab_size)


def topk_from_logits(teacher_logits: torch.Tensor, k: int, T: float = 1.0) -> TopK:
    """Keep the top ``k`` of ``teacher_logits (..., V)`` at temperature ``T`` (see :class:`TopK`)."""
    V = teacher_logits.shape[-1]
    if not (isinstance(k, int) and 1 <= k <= V):
        raise ValueError(f"k must be a whole number in [1, V = {V}], got {k!r}")
    check_pair(teacher_logits, teacher_logits, None, T)
    logp = F.log_softmax(_real(teacher_logits) / T, dim=-1)
    values, indices = logp.topk(k, dim=-1)
    others = logp.scatter(-1, indices, float("-inf"))
    rest = torch.logsumexp(others, dim=-1)  # −inf when nothing is left
    index_dtype = torch.uint8 if V <= 256 else torch.int16 if V <= 32767 else torch.int32
    return TopK(values, indices.to(index_dtype), rest, float(T), V)


def topk_kd_loss(student_logits: torch.Tensor, topk: TopK, mask: torch.Tensor | None = None,
                 rest: str = "bucket") -> torch.Tensor:
    """``T² · mean over counted positions`` of a KL from the teacher's stored top-k to the student.

    ``rest="bucket"``: the exact KL between the two distributions over k + 1 outcomes —
    the k kept characters and one "everything else" bucket, whose teacher probability is
    stored (``topk.rest``) and whose student probability is the student's mass on the other
    characters. It never exceeds the full KL (merging outcomes cannot increase a KL) and
    equals it when k = V.

    ``rest="renormalize"``: the teacher's top-k probabilities rescaled to sum to 1 (the
    stored tail is dropped), against the student's full-vocabulary log-probabilities at the
    same characters: ``Σ_i p̃_i (log p̃_i − log q_i)``. It pushes the student's mass into the
    teacher's top k, so it teaches a sharper distribution than the teacher's.
    Both equal the full forward KL when k = V.
    """
    if rest not in ("bucket", "renormalize"):
        raise ValueError(f"rest must be 'bucket' or 'renormalize', got {rest!r}")
    if student_logits.shape[:-1] != topk.logprobs.shape[:-1] or student_logits.shape[-1] != topk.vocab_size:
        raise ValueError(f"student_logits {tuple(student_logits.shape)} do not fit top-k targets of "
                         f"{tuple(topk.logprobs.shape[:-1])} positions over V = {topk.vocab_size}")
    check_mask(mask, student_logits.shape[:-1])
    if mask is not None:  # keep the counted positions only
        student_logits, topk = student_logits[mask], topk[mask]
    T = topk.T
    log_q = F.log_softmax(_real(student_logits) / T, dim=-1)
    idx = topk.indices.long()
    log_q_k = log_q.gather(-1, idx)  # (..., k)
    log_p_k = topk.logprobs.to(log_q.dtype)
    if rest == "renormalize":
        log_p_k = log_p_k - torch.logsumexp(log_p_k, dim=-1, keepdim=True)
        per_pos = _kl_per_position(log_p_k, log_q_k)
    elif topk.k == topk.vocab_size:  # nothing left over: the bucket is empty on both sides
        per_pos = _kl_per_position(log_p_k, log_q_k)
    else:
        log_q_rest = torch.logsumexp(log_q.scatter(-1, idx, float("-inf")), dim=-1)
        per_pos = _kl_per_position(torch.cat([log_p_k, topk.rest[..., None].to(log_q.dtype)], -1),
                                   torch.cat([log_q_k, log_q_rest[..., None]], -1))
    return T * T * per_pos.mean()


@torch.no_grad()
def topk_cache(teacher, windows: torch.Tensor, k: int, T: float = 1.0, batch_size: int = 256,
               progress: bool = True) -> TopK:
    """Run the frozen ``teacher`` once over ``windows (M, L + 1) int64`` (inputs: the first L
    columns) and keep its top ``k`` at every position: a :class:`TopK` of shape ``(M, L, k)``."""
    from tqdm.auto import tqdm

    teacher.eval()
    device = next(teacher.parameters()).device
    parts = [topk_from_logits(teacher(windows[i:i + batch_size, :-1].to(device)), k, T)
             for i in tqdm(range(0, len(windows), batch_size), desc=f"teacher top-{k} cache", disable=not progress,
                           leave=False)]
    return TopK(torch.cat([p.logprobs for p in parts]).cpu(), torch.cat([p.indices for p in parts]).cpu(),
                torch.cat([p.rest for p in parts]).cpu(), float(T), parts[0].vocab_size)


# --------------------------------------------------------------------------- what the student trains on
@torch.no_grad()
def teacher_corpus(teacher, prompts: torch.Tensor, n_new: int, temperature: float = 1.0, seed: int = 0,
                   batch_size: int = 256, progress: bool = True) -> torch.Tensor:
    """Sequence-level KD data (Kim & Rush 2016): the teacher continues each prompt.

    Args:
        prompts: ``(M, P) int64`` beginnings of real training windows.
    Returns:
        ``(M, P + n_new) int64``: prompt + the teacher's sampled continuation. The student
        trains with plain cross-entropy on these rows, predicting only the generated part.
    """
    from tqdm.auto import tqdm

    from kdtutor.lm.model import generate

    device = next(teacher.parameters()).device
    g = torch.Generator(device=device).manual_seed(seed)
    rows = [generate(teacher, prompts[i:i + batch_size].to(device), n_new, temperature, g).cpu()
            for i in tqdm(range(0, len(prompts), batch_size), desc="teacher writes", disable=not progress, leave=False)]
    return torch.cat(rows)


def prompt_mask(batch: int, length: int, prompt_len: int, device=None) -> torch.Tensor:
    """``(batch, length) bool``: False at the positions whose *target* is still part of the prompt.

    For a window ``x = seq[:, :-1]``, ``y = seq[:, 1:]``, position ``i`` predicts ``seq[i + 1]``; the
    prompt is ``seq[:prompt_len]``, so positions ``0 … prompt_len − 2`` predict prompt characters."""
    if not 1 <= prompt_len <= length:
        raise ValueError(f"prompt_len must be in [1, {length}], got {prompt_len}")
    mask = torch.ones(batch, length, dtype=torch.bool, device=device)
    mask[:, :prompt_len - 1] = False
    return mask


def on_policy_batch(student, fixed: torch.Tensor, prompt_len: int, temperature: float = 1.0,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """On-policy data (as in GKD; MiniLLM samples from the student too): the student continues the first ``prompt_len`` characters of
    each fixed window ``fixed (B, L + 1)`` with its own samples.

    Returns:
        ``(seq (B, L + 1) int64, mask (B, L) bool)``: the prompt + the student's continuation, and
        the positions whose target is a sampled character (the loss counts only those).
    """
    from kdtutor.lm.model import generate

    B, n = fixed.shape
    seq = generate(student, fixed[:, :prompt_len], n - prompt_len, temperature, generator)
    return seq, prompt_mask(B, n - 1, prompt_len, fixed.device)
