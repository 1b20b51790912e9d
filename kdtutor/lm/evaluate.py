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


def paired_gap(a_runs: list, b_runs: list, block: int = 10) -> dict:
    """How far model ``a`` is from model ``b`` over training seeds, and how sure that is.

    ``a_runs[i]``, ``b_runs[i]``: ``(M,)`` per-window bits (:func:`window_bits`) of the two methods
    trained with seed ``i`` on the same held-out windows (paired by seed and by window).

    Returns ``{"mean", "per_seed", "spread", "eval_se"}`` in bits/char: ``mean`` of the per-seed paired
    differences ``a − b`` (negative: ``a`` predicts better); ``spread`` their range over seeds (max −
    min, 0 for one seed); ``eval_se`` the standard error of ``mean`` from the evaluation alone —
    per seed the standard error over **blocks** of ``block`` consecutive windows (neighbouring
    windows of one text are correlated; their block means much less), combined over seeds as
    ``sqrt(Σ se_i²) / n``. Seed-to-seed variation is not in ``eval_se``: that is what ``spread`` is for."""
    if len(a_runs) != len(b_runs) or not a_runs:
        raise ValueError(f"need the same number (≥ 1) of seeds for both, got {len(a_runs)} and {len(b_runs)}")
    diffs, ses = [], []
    for a, b in zip(a_runs, b_runs):
        if a.shape != b.shape or a.ndim != 1:
            raise ValueError(f"need two (M,) tensors per seed, got {tuple(a.shape)} and {tuple(b.shape)}")
        n_blocks = len(a) // block
        if n_blocks < 2:
            raise ValueError(f"{len(a)} windows make fewer than 2 blocks of {block}: lower block")
        d = (a - b).double()[: n_blocks * block].view(n_blocks, block).mean(1)
        diffs.append((a - b).double().mean().item())
        ses.append((d.std() / math.sqrt(n_blocks)).item())
    n = len(diffs)
    return {"mean": sum(diffs) / n, "per_seed": diffs, "spread": max(diffs) - min(diffs),
            "eval_se": math.sqrt(sum(se * se for se in ses)) / n}


def gap_verdict(gap: dict, z: float = 2.0) -> str:
    """``"better"`` (``a`` predicts with fewer bits than ``b``), ``"worse"`` or ``"inconclusive"`` for a
    :func:`paired_gap`: a verdict only where every seed's difference has the same sign and the mean
    gap exceeds both the seed-to-seed spread and ``z`` evaluation standard errors."""
    mean, per_seed = gap["mean"], gap["per_seed"]
    same_sign = all(d < 0 for d in per_seed) or all(d > 0 for d in per_seed)
    if same_sign and abs(mean) > gap["spread"] and abs(mean) > z * gap["eval_se"]:
        return "better" if mean < 0 else "worse"
    return "inconclusive"


def gap_text(a: str, b: str, gap: dict, z: float = 2.0) -> str:
    """One line: the verdict of :func:`gap_verdict` and the numbers it was drawn from."""
    seeds = ", ".join(f"{d:+.3f}" for d in gap["per_seed"])
    return (f"{a} vs {b}: {gap_verdict(gap, z)} ({a} − {b} = {gap['mean']:+.3f} bits/char, mean of {len(gap['per_seed'])} "
            f"seeds [{seeds}]; seed spread {gap['spread']:.3f}, {z:g} × evaluation s.e. {z * gap['eval_se']:.3f})")


def seed_table(results: dict, keys=("bpc", "kl_teacher_student", "kl_student_teacher", "entropy",
                                     "teacher_bpc_on_samples", "distinct_2")) -> list[str]:
    """Markdown lines: per model, the mean over seeds ± half the range (max − min)/2 of each of ``keys``.
    ``results``: name → list of per-seed rows (``LMLesson.evaluate``); one row means no spread ("± —")."""
    names = {k: name for k, name, _ in COLUMNS}
    head = ["model", "seeds"] + [names.get(k, k) for k in keys]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for name, rows in results.items():
        cells = [name, str(len(rows))]
        for k in keys:
            vals = [r[k] for r in rows if r.get(k) is not None and not math.isnan(r[k])]
            if not vals:
                cells.append("—")
                continue
            half = (max(vals) - min(vals)) / 2
            cells.append(f"{sum(vals) / len(vals):.3f} ± {half:.3f}" if len(vals) > 1 else f"{vals[0]:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def per_seed_order(a: list[float], b: list[float]) -> str:
    """``"lower in every seed"``, ``"higher in every seed"`` or ``"seeds disagree"``: ``a[i]`` against
    ``b[i]`` for paired per-seed values of one measure (e.g. the teacher's bits/char on samples)."""
    if len(a) != len(b) or not a:
        raise ValueError(f"need the same number (≥ 1) of seeds for both, got {len(a)} and {len(b)}")
    if all(x < y for x, y in zip(a, b)):
        return "lower in every seed"
    if all(x > y for x, y in zip(a, b)):
        return "higher in every seed"
    return "seeds disagree"


def seed_mean(rows: list[dict]) -> dict:
    """The mean over seeds of every number all rows have (samples and other lists left out)."""
    keys = [k for k, v in rows[0].items() if isinstance(v, (int, float)) and all(k in r for r in rows)]
    return {k: sum(r[k] for r in rows) / len(rows) for k in keys}


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
