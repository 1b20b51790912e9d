"""Lesson 07 — judging a character model: bits per character, closeness to the teacher, diversity.

* **Bits per character** (bpc): the mean cross-entropy of the next character on held-out
  text, in bits (nats / ln 2). Lower is better; a uniform guess over V characters scores
  log2 V (6.02 bits for 65 characters). Measured on non-overlapping windows of the
  held-out split (:func:`kdtutor.lm.text.tiled_windows`): every character but the first is
  predicted exactly once, from the characters before it in its window.
* **KL to the teacher** on the same positions, both directions, in bits per character:
  ``KL(teacher ‖ student)`` (what forward-KL training minimises) and ``KL(student ‖ teacher)``.
* **Entropy** of the model's next-character distribution, bits: how spread its bets are; and
  ``p_teacher_top``, the probability it gives the teacher's most likely character. A mode-seeking
  student narrows its bets (lower entropy) onto what the teacher finds most likely (higher ``p_teacher_top``).
* **The teacher's bits/char on a model's samples**: how plausible the teacher finds what the
  model writes (its own samples score about its entropy). Mode-seeking students write text the
  teacher finds likelier, even when their held-out bits/char are worse.
* **Words of samples** (:func:`word_measures`). A character model's samples are mostly new
  "words", so almost no word pair ever repeats in a few hundred characters and the usual
  diversity measures of language models (distinct-2, Li et al. 2016; repetition, Welleck et al.
  2019) are close to 1 and 0 for every model. Measured on single words instead: the share of
  *known* words (found in the training text), *distinct words* (distinct-1), *repeated words* (a
  sample's words already used earlier in it) and the mean *word length*.
* **Comparisons over training seeds** (:func:`bits_gap`): the course's one verdict rule,
  :func:`kdtutor.images.stats.paired_seed_difference` on the per-seed differences, with the
  evaluation's own standard error added to its interval.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from kdtutor.images.stats import VERDICTS, PairedDifference, paired_seed_difference

LN2 = math.log(2.0)
_Z975 = 1.959964  # the 0.975 quantile of the standard normal


@torch.no_grad()
def heldout_scores(model, windows: torch.Tensor, teacher=None, batch_size: int = 256) -> dict:
    """Scores of ``model`` on ``windows (M, L + 1) int64``, all in **bits per character**.

    Returns:
        ``{"bpc", "entropy", "p_teacher_top", "n_chars"}``, plus ``"kl_teacher_student"`` (KL(teacher ‖ model))
        and ``"kl_student_teacher"`` (KL(model ‖ teacher)) when ``teacher`` is given. ``p_teacher_top``
        (a probability, not bits) is the mean probability the model gives the character the teacher
        finds most likely — without ``teacher``, its own most likely one (its mean top probability).
    """
    if windows.ndim != 2 or windows.shape[1] < 2:
        raise ValueError(f"windows must be (M, L + 1) with L ≥ 1, got {tuple(windows.shape)}")
    model.eval()
    device = next(model.parameters()).device
    sums = {"bpc": 0.0, "entropy": 0.0, "kl_teacher_student": 0.0, "kl_student_teacher": 0.0}
    n, top = 0, 0.0
    for i in range(0, len(windows), batch_size):
        w = windows[i:i + batch_size].to(device)
        log_q = F.log_softmax(model(w[:, :-1]).double(), dim=-1)  # (B, L, V)
        sums["bpc"] += -log_q.gather(-1, w[:, 1:, None]).sum().item()
        sums["entropy"] += -(log_q.exp() * log_q).sum().item()
        log_p = log_q if teacher is None else F.log_softmax(teacher.eval()(w[:, :-1]).double(), dim=-1)
        top += log_q.gather(-1, log_p.argmax(-1, keepdim=True)).exp().sum().item()
        if teacher is not None:
            sums["kl_teacher_student"] += (log_p.exp() * (log_p - log_q)).sum().item()
            sums["kl_student_teacher"] += (log_q.exp() * (log_q - log_p)).sum().item()
        n += w[:, 1:].numel()
    out = {k: v / n / LN2 for k, v in sums.items() if teacher is not None or not k.startswith("kl")}
    out["p_teacher_top"], out["n_chars"] = top / n, n
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


@dataclass
class BitsGap:
    """How much better model ``a`` predicts held-out text than model ``b``, over training seeds.

    ``seeds``: :func:`kdtutor.images.stats.paired_seed_difference` of the per-seed mean bits/char
    ``a − b`` — the course's one rule: a paired t-interval over seeds and the minimum detectable
    difference ``seeds.mdd`` (80 % power); ``per_seed``: those differences (negative: ``a`` needs fewer
    bits). ``eval_se``: the standard error of their mean from the held-out text alone — every seed is
    scored on the same windows, so this part of the noise is shared by the seeds and no spread over
    seeds can show it. The verdict's interval is the seeds' t-interval widened by ``1.96 · eval_se``
    on each side (adding the two margins is conservative)."""

    seeds: PairedDifference
    per_seed: list
    eval_se: float

    @property
    def margin(self) -> float:
        """The evaluation's own 95 % margin, bits/char."""
        return _Z975 * self.eval_se

    @property
    def low(self) -> float:
        return self.seeds.low - self.margin

    @property
    def high(self) -> float:
        return self.seeds.high + self.margin

    @property
    def verdict(self) -> str:
        """``"better"`` (``a`` needs reliably fewer bits/char than ``b``), ``"worse"`` or ``"no reliable
        difference"``: :attr:`PairedDifference.verdict` of the widened interval (its "reliably better"
        is an interval above 0, which for bits/char means ``a`` is worse)."""
        widened = direction(replace(self.seeds, low=self.low, high=self.high))
        return {"reliably higher": "worse", "reliably lower": "better"}.get(widened, widened)

    def text(self, a: str, b: str) -> str:
        """One line: the verdict and the numbers it comes from."""
        seeds = ", ".join(f"{d:+.3f}" for d in self.per_seed)
        return (f"{a} vs {b}: {self.verdict} ({a} − {b} = {self.seeds.mean:+.3f} bits/char, 95 % interval "
                f"[{self.low:+.3f}, {self.high:+.3f}]; per seed [{seeds}]; evaluation margin ±{self.margin:.3f}; "
                f"minimum detectable difference over {self.seeds.n} seeds {self.seeds.mdd:.3f})")

    def as_dict(self) -> dict:
        return {"mean": self.seeds.mean, "per_seed": list(self.per_seed), "low": self.low, "high": self.high,
                "seed_low": self.seeds.low, "seed_high": self.seeds.high, "eval_se": self.eval_se,
                "mdd": self.seeds.mdd, "verdict": self.verdict}


def bits_gap(a_runs: list, b_runs: list, block: int = 10) -> BitsGap:
    """Compare two methods trained with the same ``n ≥ 2`` seeds on the same held-out windows.

    Args:
        a_runs, b_runs: per seed, the ``(M,)`` bits/char of each window (:func:`window_bits`) of the
            two methods' students of that seed (paired by seed and by window).
        block: windows per block for the evaluation's standard error: neighbouring windows of one text
            are correlated, the means of blocks of ``block`` consecutive ones much less.
    Returns:
        a :class:`BitsGap`; ``eval_se`` is the standard error over blocks of the per-window
        differences averaged over seeds.
    """
    if len(a_runs) != len(b_runs) or len(a_runs) < 2:
        raise ValueError(f"need the same number (≥ 2) of seeds for both, got {len(a_runs)} and {len(b_runs)}")
    for a, b in zip(a_runs, b_runs):
        if a.shape != b.shape or a.ndim != 1 or a.shape != a_runs[0].shape:
            raise ValueError(f"need (M,) tensors of one length per seed, got {tuple(a.shape)} and {tuple(b.shape)}")
    n_blocks = len(a_runs[0]) // block
    if n_blocks < 2:
        raise ValueError(f"{len(a_runs[0])} windows make fewer than 2 blocks of {block}: lower block")
    mean_a, mean_b = [a.double().mean().item() for a in a_runs], [b.double().mean().item() for b in b_runs]
    d = torch.stack([(a - b).double() for a, b in zip(a_runs, b_runs)]).mean(0)  # (M,) mean over seeds
    blocks = d[: n_blocks * block].view(n_blocks, block).mean(1)
    return BitsGap(paired_seed_difference(mean_a, mean_b), [x - y for x, y in zip(mean_a, mean_b)],
                   (blocks.std() / math.sqrt(n_blocks)).item())


def seed_gap(a_rows: list[dict], b_rows: list[dict], key: str) -> PairedDifference:
    """The course's one rule on one measure: :func:`kdtutor.images.stats.paired_seed_difference` of the
    values ``key`` (e.g. ``"entropy"``) of two methods' per-seed rows (``LMLesson.evaluate``, in seed order):
    the 95 % t-interval of ``a − b`` over seeds. (For held-out bits/char use :func:`bits_gap`, which
    adds the evaluation's own error.)"""
    missing = [i for i, r in enumerate(a_rows + b_rows) if key not in r]
    if missing:
        raise ValueError(f"measure {key!r} is missing from rows {missing} (a's rows first, then b's)")
    return paired_seed_difference([r[key] for r in a_rows], [r[key] for r in b_rows])


def direction(d: PairedDifference) -> str:
    """The verdict of :class:`kdtutor.images.stats.PairedDifference` for a measure that is neither good nor
    bad: ``"reliably higher"`` (the interval of ``a − b`` lies above 0), ``"reliably lower"`` or
    ``"no reliable difference"``."""
    names = {VERDICTS[0]: "reliably higher", VERDICTS[1]: "reliably lower", VERDICTS[2]: "no reliable difference"}
    return names[d.verdict]


def seed_table(results: dict, keys=("bpc", "kl_teacher_student", "kl_student_teacher", "entropy", "p_teacher_top",
                                     "teacher_bpc_on_samples", "known_words", "distinct_1")) -> list[str]:
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


def teacher_bits_on(teacher, ids: torch.Tensor, length: int) -> float:
    """How surprising the ``teacher`` finds generated text ``ids (B, N)``: its mean bits per character
    on the non-overlapping windows of ``length`` + 1 characters of each row (each window read on its
    own, as in the held-out bits/char). Lower: text more like what the teacher would write."""
    from kdtutor.lm.text import tiled_windows

    windows = torch.cat([tiled_windows(row, length) for row in ids])
    return bits_per_char(teacher, windows)


_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


def words(text: str) -> list[str]:
    """The words of ``text``: runs of letters, lower-cased, an apostrophe inside a word kept
    (``"Ta'en, my LORD!"`` → ``["ta'en", "my", "lord"]``); punctuation, digits and newlines separate words."""
    return _WORD.findall(text.lower())


def _ngrams(ws: list[str], n: int) -> list[tuple]:
    return [tuple(ws[i:i + n]) for i in range(len(ws) - n + 1)]


def distinct_n(texts: list[str], n: int = 2) -> float:
    """Distinct word n-grams over all ``texts`` ÷ all word n-grams (1.0: no n-gram repeats). NaN if none."""
    if n < 1:
        raise ValueError(f"n must be ≥ 1, got {n}")
    grams = [g for t in texts for g in _ngrams(words(t), n)]
    return len(set(grams)) / len(grams) if grams else float("nan")


def repetition(texts: list[str], n: int = 1) -> float:
    """Mean over texts of the fraction of a text's word n-grams seen earlier in the same text. NaN if none."""
    if n < 1:
        raise ValueError(f"n must be ≥ 1, got {n}")
    rates = []
    for t in texts:
        grams = _ngrams(words(t), n)
        if grams:
            rates.append(1 - len(set(grams)) / len(grams))
    return sum(rates) / len(rates) if rates else float("nan")


def word_measures(texts: list[str], known: set) -> dict:
    """Word-level measures of a list of samples (see the module doc), all NaN where there is no word:

    * ``"known_words"``: the share of the samples' words (every occurrence) found in ``known``, the
      training text's words (:func:`words`): how much of what a model writes is spelled as English;
    * ``"distinct_1"``, ``"distinct_2"``: :func:`distinct_n` of words and of word pairs;
    * ``"repetition_1"``: :func:`repetition` of single words within a sample;
    * ``"word_length"``: the mean length of a word, characters.
    """
    if not isinstance(known, (set, frozenset)) or not known:
        raise ValueError(f"known must be a non-empty set of words (the training text's), got {type(known).__name__}")
    ws = [w for t in texts for w in words(t)]
    nan = float("nan")
    return {"known_words": sum(w in known for w in ws) / len(ws) if ws else nan,
            "distinct_1": distinct_n(texts, 1), "distinct_2": distinct_n(texts, 2), "repetition_1": repetition(texts, 1),
            "word_length": sum(map(len, ws)) / len(ws) if ws else nan}


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
           ("p_teacher_top", "p(teacher's top char)", "{:.3f}"),
           ("teacher_bpc_on_samples", "teacher bits/char on its samples", "{:.3f}"),
           ("known_words", "known words", "{:.3f}"), ("distinct_1", "distinct words", "{:.3f}"),
           ("repetition_1", "repeated words", "{:.3f}"), ("word_length", "word length", "{:.2f}")]



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
