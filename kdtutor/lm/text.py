"""Lesson 07 — the text: tiny Shakespeare, characters as tokens, contiguous splits.

Where the text comes from, in order:

1. ``$KDTUTOR_TEXT`` — a local text file. Once set it is used or the run stops with an
   error (never a silent fallback). The reference copy (SHA-256 :data:`SHA256`) is named
   "tiny Shakespeare"; any other file is named after itself, never "tiny Shakespeare".
2. ``data/tinyshakespeare.txt``, downloaded on first use from karpathy/char-rnn
   (1,115,394 characters), to a ``.part`` file that is renamed only once its SHA-256 is right.
3. only if neither is there and the download fails (or ``KDTUTOR_OFFLINE=1``, or the
   smoke profile, which never downloads): a generated **stand-in** text of invented
   words, with a banner, named "stand-in text (generated, NOT Shakespeare)".

Splits are contiguous blocks: the first 90 % of the characters train, the next 5 %
validate, the last 5 % test. Windows are cut *within* a split, so no window crosses a
boundary and no test character is ever seen in training. The vocabulary is every
character of the file (65 for tiny Shakespeare), sorted.

Shapes: a split is ``(N,) int64`` character ids; a batch of windows is ``(B, L + 1)``,
whose first ``L`` columns are the input and last ``L`` the next-character targets.
"""

from __future__ import annotations

import math
import os
import random
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch

from kdtutor.fingerprint import digest, fingerprint
from kdtutor.storage import CorruptFileError, DATA_DIR, sha256_bytes, sha256_file

TEXT_ENV = "KDTUTOR_TEXT"
URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
FILENAME = "tinyshakespeare.txt"
SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
NAME = "tiny Shakespeare"
STANDIN_NAME = "stand-in text (generated, NOT Shakespeare)"
FRACTIONS = (0.90, 0.05, 0.05)


class TextUnavailable(OSError):
    """The text is not on disk and could not be downloaded."""


# --------------------------------------------------------------------------- characters
class Vocab:
    """Characters ↔ ids. ``Vocab(text)`` takes the sorted set of the characters in ``text``."""

    def __init__(self, text: str):
        self.chars = sorted(set(text))
        if not self.chars:
            raise ValueError("cannot build a vocabulary from an empty text")
        self._id = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        """``(len(text),) int64`` ids; a character outside the vocabulary raises ``ValueError``."""
        try:
            return torch.tensor([self._id[c] for c in text], dtype=torch.int64)
        except KeyError as e:
            raise ValueError(f"character {e.args[0]!r} is not in the vocabulary") from None

    def decode(self, ids) -> str:
        """The text of a 1-D sequence of ids (tensor or list)."""
        return "".join(self.chars[int(i)] for i in ids)


@dataclass
class TextData:
    """A text cut into contiguous train / validation / test splits of character ids."""

    name: str
    vocab: Vocab
    train: torch.Tensor  # (N_train,) int64
    val: torch.Tensor
    test: torch.Tensor
    is_standin: bool = False
    source: str = ""

    def fingerprint(self) -> str:
        """SHA-256 (16 hex digits) of the vocabulary and the training and validation ids: what a
        trained model depends on. Runs record it, so a checkpoint made on other text is never reused."""
        return digest("".join(self.vocab.chars), fingerprint(self.train, self.val))

    def __str__(self) -> str:
        return (f"{self.name}: {len(self.vocab)} characters in the vocabulary; train {len(self.train):,d}, "
                f"validation {len(self.val):,d}, test {len(self.test):,d} characters")


def split_ids(ids: torch.Tensor, fractions=FRACTIONS) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cut ``ids (N,)`` into three contiguous blocks of the given fractions (train, val, test)."""
    if len(fractions) != 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must be three positive numbers summing to 1, got {fractions}")
    n = len(ids)
    a, b = int(n * fractions[0]), int(n * (fractions[0] + fractions[1]))
    if min(a, b - a, n - b) < 2:
        raise ValueError(f"a text of {n} characters is too short to split into {fractions}")
    return ids[:a], ids[a:b], ids[b:]


def from_text(text: str, name: str, is_standin: bool = False, source: str = "", fractions=FRACTIONS) -> TextData:
    """A :class:`TextData` from a string: vocabulary of all its characters, contiguous splits."""
    vocab = Vocab(text)
    train, val, test = split_ids(vocab.encode(text), fractions)
    return TextData(name, vocab, train, val, test, is_standin, source)


# --------------------------------------------------------------------------- windows
def random_windows(ids: torch.Tensor, n: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """``(n, length + 1)`` windows of ``ids`` at random offsets drawn with ``generator``, all inside ``ids``."""
    if len(ids) < length + 1:
        raise ValueError(f"a split of {len(ids)} characters has no window of {length + 1}")
    starts = torch.randint(0, len(ids) - length, (n,), generator=generator)
    return torch.stack([ids[s:s + length + 1] for s in starts.tolist()])


def tiled_windows(ids: torch.Tensor, length: int, limit: int | None = None) -> torch.Tensor:
    """Non-overlapping ``(M, length + 1)`` windows at offsets ``0, length, 2·length, …`` (consecutive
    windows share one character: the last target of one is the first input of the next), so every
    character but the first is predicted exactly once. ``limit`` keeps the first ``limit`` windows."""
    m = (len(ids) - 1) // length
    if m < 1:
        raise ValueError(f"a split of {len(ids)} characters has no window of {length + 1}")
    m = m if limit is None else min(m, limit)
    return torch.stack([ids[i * length:i * length + length + 1] for i in range(m)])


def transfer_windows(ids: torch.Tensor, length: int, m: int | None = None, seed: int = 0) -> torch.Tensor:
    """The students' fixed training windows: ``m`` of the :func:`tiled_windows` of ``ids``, chosen at
    random with ``seed`` (spread over the whole split), in text order; ``None`` keeps them all."""
    tiles = tiled_windows(ids, length)
    if m is None or m >= len(tiles):
        return tiles
    chosen = torch.randperm(len(tiles), generator=torch.Generator().manual_seed(seed))[:m]
    return tiles[chosen.sort().values]


# --------------------------------------------------------------------------- getting the text
def download_text(root: str | os.PathLike = DATA_DIR, url: str = URL, sha256: str = SHA256,
                  timeout: float = 30.0) -> Path:
    """Download tiny Shakespeare into ``root``, verified by SHA-256, via ``<file>.part`` and a rename.

    Raises:
        TextUnavailable: no network (or the server refused).
        CorruptFileError: the bytes are not the expected file (removed again).
    """
    root = Path(root)
    path, part = root / FILENAME, root / (FILENAME + ".part")
    root.mkdir(parents=True, exist_ok=True)
    part.unlink(missing_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, open(part, "wb") as f:
            f.write(r.read())
    except OSError as e:
        part.unlink(missing_ok=True)
        raise TextUnavailable(f"tiny Shakespeare is not in {root} and could not be downloaded from {url} ({e})") from e
    found = sha256_file(part)
    if found != sha256:
        part.unlink(missing_ok=True)
        raise CorruptFileError(f"the download of {url} is not tiny Shakespeare (SHA-256 {found}, expected {sha256}); "
                               "it was removed. A proxy or captive portal may have answered instead of the server")
    part.replace(path)
    return path


MIN_PRINTABLE = 0.95  # the fraction of characters that must be printable (or whitespace) in a text


def check_text(text: str, where: str) -> None:
    """Raise ValueError (naming ``where``) unless ``text`` is mostly printable characters: at least
    :data:`MIN_PRINTABLE` of them printable or whitespace (a binary file, or one of NUL bytes, is not)."""
    if not text:
        raise ValueError(f"{where} is empty: lesson 07 needs a text to learn from")
    sample = text[:1_000_000]
    ok = sum(1 for c in sample if c.isprintable() or c in "\n\r\t")
    if ok < MIN_PRINTABLE * len(sample):
        raise ValueError(f"{where} is not a readable text: only {ok / len(sample):.0%} of its characters are "
                         f"printable (needs ≥ {MIN_PRINTABLE:.0%}); is it a binary file?")


def check_fits(data: TextData, block: int, where: str | None = None) -> None:
    """Raise ValueError unless every split holds at least one window of ``block + 1`` characters
    (the profile's context length ``L`` plus the next character); the message says how long a text must be."""
    short = {name: len(ids) for name, ids in (("train", data.train), ("validation", data.val), ("test", data.test))
             if len(ids) < block + 1}
    if short:
        need = math.ceil((block + 1) / min(FRACTIONS)) + 2
        where = where or data.source or data.name
        raise ValueError(f"{where} is too short for this profile: its " + ", ".join(
            f"{k} part has {v:,} characters" for k, v in short.items()) + f", fewer than one window of {block + 1}; "
            f"use a text of at least {need:,} characters (validation and test are {min(FRACTIONS):.0%} each)")


def read_text_file(path: str | os.PathLike, variable: str | None = None) -> TextData:
    """The text at ``path``: "tiny Shakespeare" if its SHA-256 is the reference one, else named
    after the file. ``variable`` (e.g. ``"KDTUTOR_TEXT"``) is the setting that pointed here, named
    in every error.

    Raises:
        FileNotFoundError: nothing there.
        ValueError: not UTF-8, not mostly printable (:func:`check_text`), or too short to split.
    """
    path = Path(path).expanduser()
    where = f"{variable}={path}" if variable else str(path)
    if not path.is_file():
        raise FileNotFoundError(f"{where}: no file there. Point it at a copy of tiny Shakespeare "
                                f"(or another UTF-8 text), or unset it to download the reference copy")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{where} is not UTF-8 text ({e})") from None
    check_text(text, where)
    ok = sha256_bytes(raw) == SHA256
    try:
        return from_text(text, NAME if ok else f"text of {path.name} (NOT the reference tiny Shakespeare)",
                         source=str(path))
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


def make_standin_text(n_chars: int = 120_000, seed: int = 0) -> str:
    """A generated play of invented words (speaker lines, verses, punctuation): the stand-in.

    It has tiny Shakespeare's layout (``NAME:\\n`` lines, short verses) so every code path
    runs, but its words are random syllables: it says nothing about Shakespeare.
    """
    rng = random.Random(seed)
    syll = ["ba", "ro", "ki", "ne", "tha", "lu", "mor", "ve", "sa", "di", "ent", "gor", "wyn", "el", "ast", "ou"]
    words = ["".join(rng.choice(syll) for _ in range(rng.choice((1, 1, 2, 2, 3)))) for _ in range(400)]
    weights = [1 / (i + 1) for i in range(len(words))]  # a Zipf-like word frequency
    names = [w.upper() for w in rng.sample(words, 8)]
    parts = []
    while sum(map(len, parts)) < n_chars:
        lines = []
        for _ in range(rng.randint(1, 4)):
            verse = " ".join(rng.choices(words, weights, k=rng.randint(4, 9)))
            lines.append(verse[0].upper() + verse[1:] + rng.choice([",", ".", ";", "!", "?", ":"]))
        parts.append(f"{rng.choice(names)}:\n" + "\n".join(lines) + "\n\n")
    return "".join(parts)[:n_chars]


def text_standin_banner(reason: str) -> str:
    line = "=" * 78
    return (f"{line}\n  USING THE STAND-IN TEXT — results below are NOT tiny Shakespeare results.\n"
            f"  Why: {reason}\n  It is generated: invented words in a play's layout.\n"
            f"  Have the text on disk? Set {TEXT_ENV}=<file> (e.g. shared/data/tinyshakespeare.txt).\n{line}")


def load_text(root: str | os.PathLike = DATA_DIR, download: bool = True, verbose: bool = True,
              n_standin: int = 120_000) -> TextData:
    """The course's text (see the module docstring for where it comes from, in order)."""
    local = os.environ.get(TEXT_ENV, "").strip()
    if local:
        return read_text_file(local, TEXT_ENV)
    path = Path(root) / FILENAME
    if path.exists():
        found = sha256_file(path)
        if found != SHA256:
            raise CorruptFileError(f"{path} is not tiny Shakespeare (SHA-256 {found}, expected {SHA256}); "
                                   "delete it to download it again")
        return read_text_file(path)
    reason = "downloading is switched off (smoke profile or KDTUTOR_OFFLINE=1) and no copy is on disk"
    if download and os.environ.get("KDTUTOR_OFFLINE") != "1":
        try:
            return read_text_file(download_text(root))
        except TextUnavailable as e:
            reason = str(e)
    if verbose:
        print(text_standin_banner(reason))
    return from_text(make_standin_text(n_standin), STANDIN_NAME, is_standin=True, source="generated")


def cut(data: TextData, n_train: int | None = None, n_val: int | None = None, n_test: int | None = None) -> TextData:
    """The same text with each split cut to its first ``n`` characters (``None`` keeps it whole)."""
    take = lambda ids, n: ids if n is None else ids[:n]  # noqa: E731
    return TextData(data.name, data.vocab, take(data.train, n_train), take(data.val, n_val), take(data.test, n_test),
                    data.is_standin, data.source)
