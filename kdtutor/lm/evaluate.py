"""Lesson 07 — judging a character model: bits per character, closeness to the teacher, diversity.

* **Bits per character** (bpc): the mean cross-entropy of the next character on held-out
  text, in bits (nats / ln 2). Lower is better; a uniform guess over V characters scores
  log2 V (6.02 bits for 65 characters). Measured on non-overlapping windows of the
  held-out split (:func:`kdtutor.lm.text.tiled_windows`): every character but the first is
  predicted exactly once, from the characters before it in its window.
* **KL to the teacher** on the same positions, both directions, in bits per character:
  ``KL(teacher ‖ student)`` (what forward-KL training minimises) and ``KL(student ‖ teacher)``.
* **Entropy** of the model's next-character distribution, bits: how spread its bets are.
* **The teacher's bits/char on a model's samples**: how plausible the teacher finds what the
  model writes (its own samples score about its entropy). Mode-seeking students write text the
  teacher finds likelier, even when their held-out bits/char are worse.
* **Diversity of samples** (Li et al. 2016; Welleck et al. 2019): *distinct-n*, the fraction
  of word n-grams over all samples that are different; *repetition*, the fraction of a
  sample's word n-grams that already occurred earlier in the same sample (mean over
  samples). Mode-seeking students tend to lower distinct-n and raise repetition.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LN2 = math.log(2.0)


@torch.no_grad()
def heldout_scores(model, windows: torch.Tensor, teacher=None, batch_size: int = 256) -> dict:
    """Scores of ``model`` on ``windows (M, L + 1) int64``, all in **bits per character**.

    Returns:
        ``{"bpc", "entropy", "n_chars"}``, plus ``"kl_teacher_student"`` (KL(teacher ‖ model))
        and ``"kl_student_teacher"`` (KL(model ‖ teacher)) when ``teacher`` is given.
    """
    if windows.ndim != 2 or windows.shape[1] < 2:
        raise ValueError(f"windows must be (M, L + 1) with L ≥ 1, got {tuple(windows.shape)}")
    model.eval()
    device = next(model.parameters()).device
    sums = {"bpc": 0.0, "entropy": 0.0, "kl_teacher_student": 0.0, "kl_student_teacher": 0.0}
    n = 0
    for i in range(0, len(windows), batch_size):
        w = windows[i:i + batch_size].to(device)
        log_q = F.log_softmax(model(w[:, :-1]).double(), dim=-1)  # (B, L, V)
        sums["bpc"] += -log_q.gather(-1, w[:, 1:, None]).sum().item()
        sums["entropy"] += -(log_q.exp() * log_q).sum().item()
        if teacher is not None:
            log_p = F.log_softmax(teacher.eval()(w[:, :-1]).double(), dim=-1)
            sums["kl_teacher_student"] += (log_p.exp() * (log_p - log_q)).sum().item()
            sums["kl_student_teacher"] += (log_q.exp() * (log_q - log_p)).sum().item()
        n += w[:, 1:].numel()
    out = {k: v / n / LN2 for k, v in sums.items() if teacher is not None or not k.startswith("kl")}
    out["n_chars"] = n
    return out


@torch.no_grad()
def window_bits(model, windows: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """``(M,) float64``: the mean bits per character of ``model`` on each window of ``windows (M, L + 1)``."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(windows), batch_size):
        w = windows[i:i + batch_size].to(device)
        log_q = F.log_softmax(model(w[:, :-1]).double(), dim=-1)
        out.append(-log_q.gather(-1, w[:, 1:, None])[..., 0].mean(-1).cpu() / LN2)
    return torch.cat(out)


def paired_difference(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """Mean and standard error of ``a − b`` over paired measurements ``(M,)`` (e.g. :func:`window_bits`
    of two models on the same windows). It measures how sure the *evaluation* is; the spread between
    training seeds is not in it."""
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"need two (M,) tensors with M ≥ 2, got {tuple(a.shape)} and {tuple(b.shape)}")
    d = (a - b).double()
    return d.mean().item(), (d.std() / math.sqrt(len(d))).item()


def bits_per_char(model, windows: torch.Tensor) -> float:
    """Mean next-character cross-entropy of ``model`` on ``windows (M, L + 1)``, bits."""
    return heldout_scores(model, windows)["bpc"]


# --------------------------------------------------------------------------- samples
@torch.no_grad()
def sample_ids(model, prompts: torch.Tensor, n_chars: int, temperature: float = 1.0, seed: int = 0) -> torch.Tensor:
    """``(B, n_chars) int64``: one sample per row of ``prompts (B, P)`` (the prompt not included), drawn
    at ``temperature`` with a generator seeded by ``seed`` (every model gets the same random numbers)."""
    from kdtutor.lm.model import generate

    device = next(model.parameters()).device
    g = torch.Generator(device=device).manual_seed(seed)
    return generate(model, prompts.to(device), n_chars, temperature, g)[:, prompts.shape[1]:].cpu()


def samples(model, prompts: torch.Tensor, n_chars: int, decode, temperature: float = 1.0, seed: int = 0) -> list[str]:
    """The texts of :func:`sample_ids`."""
    return [decode(row) for row in sample_ids(model, prompts, n_chars, temperature, seed)]


def teacher_bits_on(teacher, ids: torch.Tensor, length: int) -> float:
    """How surprising the ``teacher`` finds generated text ``ids (B, N)``: its mean bits per character
    on the non-overlapping windows of ``length`` + 1 characters of each row (each window read on its
    own, as in the held-out bits/char). Lower: text more like what the teacher would write."""
    from kdtutor.lm.text import tiled_windows

    windows = torch.cat([tiled_windows(row, length) for row in ids])
    return bits_per_char(teacher, windows)


def _ngrams(words: list[str], n: int) -> list[tuple]:
    return [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]


def distinct_n(texts: list[str], n: int = 2) -> float:
    """Distinct word n-grams over all ``texts`` ÷ all word n-grams (1.0: no n-gram repeats). NaN if none."""
    if n < 1:
        raise ValueError(f"n must be ≥ 1, got {n}")
    grams = [g for t in texts for g in _ngrams(t.split(), n)]
    return len(set(grams)) / len(grams) if grams else float("nan")


def repetition(texts: list[str], n: int = 2) -> float:
    """Mean over texts of the fraction of a text's word n-grams seen earlier in the same text. NaN if none."""
    if n < 1:
        raise ValueError(f"n must be ≥ 1, got {n}")
    rates = []
    for t in texts:
        grams = _ngrams(t.split(), n)
        if grams:
            rates.append(1 - len(set(grams)) / len(grams))
    return sum(rates) / len(rates) if rates else float("nan")


def diversity(texts: list[str]) -> dict:
    """``{"distinct_1", "distinct_2", "repetition_2"}`` of a list of samples (see the module doc)."""
    return {"distinct_1": distinct_n(texts, 1), "distinct_2": distinct_n(texts, 2), "repetition_2": repetition(texts, 2)}


def side_by_side(texts: dict[str, str], width: int = 60) -> str:
    """Samples of several models in labelled blocks of at most ``width`` characters per line (newlines shown as ⏎)."""
    out = []
    for name, text in texts.items():
        flat = text.replace("\n", "⏎")
        lines = [flat[i:i + width] for i in range(0, len(flat), width)] or [""]
        out.append(f"── {name} " + "─" * max(0, width - len(name) - 4) + "\n" + "\n".join(lines))
    return "\n".join(out)


COLUMNS = [("bpc", "bits/char", "{:.3f}"), ("kl_teacher_student", "KL(teacher‖model)", "{:.3f}"),
           ("kl_student_teacher", "KL(model‖teacher)", "{:.3f}"), ("entropy", "entropy (bits)", "{:.3f}"),
           ("teacher_bpc_on_samples", "teacher bits/char on its samples", "{:.3f}"),
           ("distinct_2", "distinct-2", "{:.3f}"), ("repetition_2", "repetition-2", "{:.3f}")]


def lm_table(results: dict, reference: dict | None = None, seconds: dict | None = None) -> list[str]:
    """Lines of a markdown table: one row per model of ``results`` (as made by
    ``LMLesson.evaluate``), the held-out text's own diversity (``reference``) as a last row,
    and training seconds per model when given. KLs in bits per character; "—" where undefined."""
    def cell(row, key, fmt):
        v = row.get(key)
        return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)

    head = ["model"] + [c[1] for c in COLUMNS] + (["training (s)"] if seconds else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for name, row in results.items():
        extra = [f"{seconds[name]:.0f}" if name in seconds else "—"] if seconds else []
        lines.append("| " + " | ".join([name] + [cell(row, k, f) for k, _, f in COLUMNS] + extra) + " |")
    if reference:
        cells = ["held-out text itself"] + [cell(reference, k, f) for k, _, f in COLUMNS] + (["—"] if seconds else [])
        lines.append("| " + " | ".join(cells) + " |")
    return lines
