"""Lesson 07 — the lesson's runs, each trained once and kept: a teacher and one student per method and seed.

Every student starts where GKD and MiniLLM start theirs — from a student that can already
write: the scratch student's weights (and optimizer state) after ``sizes.midpoint_steps`` of
cross-entropy (``student_warm.pt``). From there every method, scratch included (it simply
goes on with cross-entropy: the fair baseline), trains ``sizes.distill_steps`` more steps with
the same learning-rate schedule, once per training seed of ``sizes.seeds``. The seed fixes the
windows drawn (and the on-policy samples) after the midpoint; seed ``sizes.seed`` continues
the warm run's own random numbers, so scratch with that seed *is* an uninterrupted run. All
students see the same windows in the same order per seed — except the sequence-level and
on-policy ones, whose data are generated: the method is the only difference.

The lesson builds each student's objective itself (``kdtutor.lm.train``'s classes) and hands it to
:meth:`LMLesson.student` with a name and a seed.

Files (under ``data/checkpoints/lm_<profile>/``): ``teacher.pt``, ``student_warm.pt``,
``student_<name>_seed<k>.pt`` (resumable checkpoints) and ``teacher_top<k>.pt`` (the stored
top-k teacher logits). Each records the text's fingerprint and, for students, the teacher's and
the starting weights', so nothing made from another text, teacher or start is ever reused.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from kdtutor.evalcache import cached
from kdtutor.fingerprint import fingerprint, weights_fingerprint
from kdtutor.lm.distill import TopK, teacher_corpus, topk_cache
from kdtutor.lm.evaluate import heldout_scores, sample_ids, teacher_bits_on, word_measures, words
from kdtutor.lm.model import build_lm
from kdtutor.lm.text import TEXT_ENV, TextData, check_fits, cut, load_text, tiled_windows, transfer_windows
from kdtutor.lm.train import LMRun, LMSizes, LMTrainConfig, NextChar, lm_sizes, model_config, train_lm
from kdtutor.storage import CHECKPOINT_DIR, kept


@dataclass
class LMLesson:
    """The text, the sizes and where the files go; runs and caches are kept in memory once made."""

    data: TextData
    sizes: LMSizes
    profile_name: str
    device: torch.device
    progress: bool = True
    folder: Path = None
    _memo: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.folder = Path(self.folder or CHECKPOINT_DIR / f"lm_{self.profile_name}")

    # ------------------------------------------------------------------ data
    @property
    def transfer(self) -> torch.Tensor:
        """The students' fixed windows ``(M, L + 1)`` from the training split."""
        if "transfer" not in self._memo:
            self._memo["transfer"] = transfer_windows(self.data.train, self.sizes.block, self.sizes.transfer_windows,
                                                      seed=self.sizes.seed)
        return self._memo["transfer"]

    def heldout(self, split: str = "test") -> torch.Tensor:
        """Non-overlapping windows ``(M, L + 1)`` of ``split`` (``"val"`` or ``"test"``) for evaluation."""
        return tiled_windows(getattr(self.data, split), self.sizes.block, self.sizes.eval_windows)

    def prompts(self, split: str = "test") -> torch.Tensor:
        """``(n_samples, prompt_len)`` beginnings of held-out windows: every model continues the same ones."""
        w = tiled_windows(getattr(self.data, split), self.sizes.prompt_len)
        step = max(1, len(w) // self.sizes.n_samples)
        return w[::step][: self.sizes.n_samples, :-1]

    # ------------------------------------------------------------------ runs
    def _cfg(self, role: str, seed: int | None = None) -> LMTrainConfig:
        """The training settings of ``"teacher"``, ``"warm"`` (scratch up to the midpoint) or ``"student"``
        (after the midpoint, with training seed ``seed``): one learning-rate schedule over all student steps."""
        s = self.sizes
        if role == "teacher":
            return LMTrainConfig(steps=s.teacher_steps, lr=s.lr_teacher, seed=s.seed,
                                 save_every=max(10, s.teacher_steps // 10))
        steps, offset = (s.midpoint_steps, 0) if role == "warm" else (s.distill_steps, s.midpoint_steps)
        return LMTrainConfig(steps=steps, lr=s.lr_student, seed=s.seed if seed is None else seed,
                             save_every=max(10, steps // 5), schedule_steps=s.student_steps, offset=offset)

    def student_model(self):
        """A new, untrained student: the initial weights the scratch student starts from."""
        return build_lm(model_config(self.sizes, len(self.data.vocab), "student"), seed=self.sizes.seed).to(self.device)

    def teacher(self) -> LMRun:
        """The teacher: cross-entropy on random windows of the whole training split."""
        if "teacher" not in self._memo:
            s = self.sizes
            self._memo["teacher"] = train_lm(model_config(s, len(self.data.vocab), "teacher"),
                                             NextChar(self.data.train, s.batch, s.block), self._cfg("teacher"),
                                             self.data.fingerprint(), self.folder / "teacher.pt", self.device,
                                             self.progress, "teacher", role="teacher", profile=self.profile_name,
                                             dataset=self.data.name)
        return self._memo["teacher"]

    def warm(self) -> LMRun:
        """The scratch student up to the midpoint (``sizes.midpoint_steps`` of cross-entropy on the
        transfer windows): where every student of section 4 onwards starts."""
        if "warm" not in self._memo:
            s = self.sizes
            self._memo["warm"] = train_lm(model_config(s, len(self.data.vocab), "student"),
                                          NextChar(self.transfer, s.batch, s.block, name="scratch"), self._cfg("warm"),
                                          self.data.fingerprint(), self.warm_path, self.device, self.progress,
                                          "scratch to the midpoint", role="student", method="warm start",
                                          profile=self.profile_name, dataset=self.data.name)
        return self._memo["warm"]

    @property
    def warm_path(self) -> Path:
        return self.folder / "student_warm.pt"

    @property
    def seq_batch(self) -> int:
        """Windows per step of sequence-level KD: as many target positions per step as the token-level
        students' ``batch × block`` (its prompt positions do not count), rounded up."""
        s = self.sizes
        return math.ceil(s.batch * s.block / (s.block - s.prompt_len + 1))

    def student(self, name: str, objective, seed: int | None = None) -> LMRun:
        """The student ``name`` trained with ``objective`` (e.g. a :class:`kdtutor.lm.train.TokenKD`) after
        the midpoint with training seed ``seed`` (default: the first of ``sizes.seeds``), loaded if its
        finished checkpoint ``student_<name>_seed<k>.pt`` is there and was made with the same objective,
        teacher, start and settings (else trained again)."""
        seed = self.sizes.seeds[0] if seed is None else seed
        if seed not in self.sizes.seeds:
            raise ValueError(f"seed {seed!r} is not one of the lesson's training seeds {self.sizes.seeds}")
        if not (callable(objective) and callable(getattr(objective, "identity", None))):
            raise ValueError(f"objective must be an objective of kdtutor.lm.train (callable, with identity()), "
                             f"got {type(objective).__name__}")
        key = (name, seed)
        if key not in self._memo or self._memo[key].meta.get("objective") != objective.identity():
            s, t = self.sizes, self.teacher().model
            self.warm()
            slug = name.lower().replace(" ", "_").replace("(", "").replace(")", "").replace(".", "")
            self._memo[key] = train_lm(model_config(s, len(self.data.vocab), "student"), objective,
                                       self._cfg("student", seed), self.data.fingerprint(),
                                       self.folder / f"student_{slug}_seed{seed}.pt", self.device, self.progress,
                                       f"{name} (seed {seed})", init_from=self.warm_path, role="student",
                                       method=name, teacher_sha256=weights_fingerprint(t),
                                       profile=self.profile_name, dataset=self.data.name)
        return self._memo[key]

    # ------------------------------------------------------------------ what distillation trains on
    def corpus(self) -> torch.Tensor:
        """Sequence-level KD data: the teacher continues the first ``prompt_len`` characters of as many
        transfer windows as that student draws after the midpoint (at most all of them): ``(N, L + 1)``.
        The teacher *samples* at temperature 1 (ancestral sampling: the text follows its distribution),
        not beam search as in Kim & Rush 2016. Stored in ``teacher_corpus.pt`` (made once; a file of
        another teacher, prompts or seed is set aside and made again)."""
        if "corpus" not in self._memo:
            s, t = self.sizes, self.teacher().model
            prompts = self.transfer[:min(len(self.transfer), s.distill_steps * self.seq_batch), :s.prompt_len]
            ident = {"teacher": weights_fingerprint(t), "n_new": s.block + 1 - s.prompt_len, "temperature": 1.0,
                     "seed": s.seed, "prompts": fingerprint(prompts)}
            saved = kept(self.folder / "teacher_corpus.pt", "teacher_corpus", ident, lambda: {"rows": teacher_corpus(
                t, prompts, ident["n_new"], 1.0, s.seed, progress=self.progress)})
            self._memo["corpus"] = saved["rows"]
        return self._memo["corpus"]

    def topk(self) -> TopK:
        """The teacher's top-k log-probabilities on the transfer windows, stored in ``teacher_top<k>.pt``
        (made once; a file of another teacher, text or k is set aside and made again)."""
        if "topk" in self._memo:
            return self._memo["topk"]
        s, t = self.sizes, self.teacher().model
        ident = {"teacher": weights_fingerprint(t), "k": s.k, "T": s.T,
                 "windows": fingerprint(self.transfer)}

        def make():
            c = topk_cache(t, self.transfer, s.k, s.T, progress=self.progress)
            return {"logprobs": c.logprobs, "indices": c.indices, "rest": c.rest, "T": c.T, "vocab_size": c.vocab_size}

        saved = kept(self.folder / f"teacher_top{s.k}.pt", "topk_logits", ident, make)
        cache = TopK(saved["logprobs"], saved["indices"], saved["rest"], saved["T"], saved["vocab_size"])
        self._memo["topk"] = cache
        return cache

    # ------------------------------------------------------------------ evaluation
    @property
    def known_words(self) -> set:
        """The words of the training split (:func:`kdtutor.lm.evaluate.words`): what counts as a known word."""
        if "known_words" not in self._memo:
            self._memo["known_words"] = set(words(self.data.vocab.decode(self.data.train)))
        return self._memo["known_words"]

    def evaluate(self, models: dict, split: str = "test", temperature: float = 1.0) -> dict:
        """Per model: held-out scores (bits/char, entropy, both KLs to the teacher), the teacher's bits/char
        on its samples, their words (:func:`kdtutor.lm.evaluate.word_measures`, known words: the training
        split's), and the samples themselves (same prompts and random numbers for
        every model). Each model's row is :func:`kdtutor.evalcache.cached`: computed once per content of the
        model's and the teacher's weights, the held-out text and the settings, then loaded on a re-run."""
        teacher, windows, prompts = self.teacher().model, self.heldout(split), self.prompts(split)
        out = {}
        for name, model in models.items():
            def row(model=model):
                ids = sample_ids(model, prompts, self.sizes.sample_len, temperature, self.sizes.seed)
                texts = [self.data.vocab.decode(row) for row in ids]
                scores = heldout_scores(model, windows, None if model is teacher else teacher)
                return {**scores, "teacher_bpc_on_samples": teacher_bits_on(teacher, ids, self.sizes.block),
                        **word_measures(texts, self.known_words), "samples": texts}

            # computed once per content of the model, the teacher, the text and the settings (re-runs)
            inputs = {"model": model, "teacher": teacher, "is_teacher": model is teacher, "windows": windows,
                      "prompts": prompts, "vocab": "".join(self.data.vocab.chars), "temperature": temperature,
                      "sample_len": self.sizes.sample_len, "seed": self.sizes.seed, "block": self.sizes.block,
                      "text": self.data.fingerprint()}
            out[name] = cached("lm_evaluate", inputs, row, folder=self.folder / "evaluations")
        return out

    def reference_diversity(self, split: str = "test") -> dict:
        """The held-out text itself, cut into ``n_samples`` pieces as long as the samples: their word measures
        (as :meth:`evaluate`'s), and the teacher's bits/char on them (what "plausible to the teacher" is for real text)."""
        ids = getattr(self.data, split)
        n, m = self.sizes.sample_len, self.sizes.n_samples
        starts = torch.linspace(0, len(ids) - n - 1, m).long().tolist()
        pieces = torch.stack([ids[a:a + n] for a in starts])
        return {**word_measures([self.data.vocab.decode(p) for p in pieces], self.known_words),
                "teacher_bpc_on_samples": teacher_bits_on(self.teacher().model, pieces, self.sizes.block)}


def setup(profile_name: str | None = None, device=None, progress: bool = True, verbose: bool = True,
          folder=None) -> LMLesson:
    """The lesson's text and sizes for ``profile_name`` (default: ``$KDTUTOR_PROFILE``). The smoke profile
    never downloads: it uses ``$KDTUTOR_TEXT`` or a copy already on disk, else the stand-in."""
    from kdtutor.profiles import get_profile
    from kdtutor.images.train import default_device

    name = get_profile(profile_name).name
    sizes = lm_sizes(name)
    data = lesson_text(name, verbose)
    return LMLesson(data, sizes, name, torch.device(device) if device else default_device(), progress, folder)


def lesson_text(profile: str, verbose: bool = True) -> TextData:
    """The text of lesson 07 for ``profile``, cut to its sizes, checked to hold the profile's windows
    (:func:`kdtutor.text.check_fits`; the error names ``$KDTUTOR_TEXT`` when that chose the file)."""
    sizes = lm_sizes(profile)
    data = cut(load_text(download=profile != "smoke", verbose=verbose), sizes.n_train, sizes.n_val, sizes.n_test)
    local = os.environ.get(TEXT_ENV, "").strip()
    check_fits(data, sizes.block, f"{TEXT_ENV}={local}" if local and not data.is_standin else None)
    return data
