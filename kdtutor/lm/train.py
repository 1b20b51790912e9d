"""Lesson 07 — training the character models: sizes per profile, one loop, one objective per method.

The loop (:func:`fit_lm`) is the course's (lesson 03) with AdamW in place of SGD, as is usual for
transformers: seeded, a progress bar, a checkpoint written atomically (``save_checked``)
every ``save_every`` steps with the run's identity — model size, data fingerprint, teacher
fingerprint, method, settings — so an interrupted run resumes where it stopped and a
finished one is loaded, never retrained; a checkpoint of another run is refused.

Each step's randomness (which windows, which samples) comes from a generator seeded by
``(seed, step)`` alone, so a resumed run takes exactly the steps it would have taken.

An *objective* is a callable ``objective(model, step, generator) → scalar loss`` with an
``identity()`` dict; the methods of the lesson are objectives:

=====================  =====================================================================
:class:`NextChar`      cross-entropy on windows (the teacher; the student from scratch;
                       sequence-level KD on the teacher's text, prompt positions masked)
:class:`TokenKD`       forward KL / reverse KL / JSD(β) to a frozen teacher at every position
:class:`OnPolicyKD`    the same, on the student's own continuations for a fraction λ of steps
:class:`TopKKD`        forward KL to the teacher's stored top-k (+ "rest" bucket)
=====================  =====================================================================
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from kdtutor.checkpoints import check_writable, resume_state
from kdtutor.fingerprint import code_fingerprint, code_key, digest, weights_fingerprint
from kdtutor.images.train import versions
from kdtutor.lm.distill import (TopK, beta_of, masked_mean, on_policy_batch, prompt_mask, token_kd_loss,
                                topk_kd_loss)
from kdtutor.lm.model import CharTransformer, LMConfig, build_lm
from kdtutor.storage import load_checked, save_checked


# --------------------------------------------------------------------------- sizes per profile
@dataclass(frozen=True)
class LMSizes:
    """Every size knob of lesson 07. Characters per split: ``None`` keeps the split whole.

    ``student_steps`` is the scratch student's whole run; every distilled student starts from its
    weights after ``midpoint_steps`` and trains ``distill_steps`` more, as scratch does."""

    n_train: int | None
    n_val: int | None
    n_test: int | None
    block: int  # context length L, characters
    batch: int  # windows per step
    teacher: tuple[int, int, int]  # (n_layer, n_head, n_embd)
    student: tuple[int, int, int]
    teacher_steps: int
    student_steps: int
    transfer_windows: int | None  # the students' fixed windows (None: the whole training split, tiled)
    eval_windows: int | None  # held-out windows for bits/char and KL (None: the whole split)
    k: int  # top-k kept per position
    prompt_len: int  # on-policy and sequence-level prompts, characters
    lmbda: float = 0.5  # on-policy: fraction of the distilled steps on the student's own samples
    midpoint: float = 0.5  # the fraction of scratch's steps after which every distilled student starts
    seeds: tuple[int, ...] = (0, 1)  # training seeds of the part after the midpoint (data order, samples)
    beta: float = 0.5  # the JSD's β
    T: float = 1.0  # distillation temperature
    n_samples: int = 32  # samples per model for the diversity measures
    sample_len: int = 200  # characters per sample
    lr_teacher: float = 3e-3
    lr_student: float = 3e-3
    seed: int = 0

    def __post_init__(self):
        if not 0 < self.midpoint_steps < self.student_steps:
            raise ValueError(f"midpoint {self.midpoint} of {self.student_steps} student steps leaves no steps "
                             "before or after it")
        if len(set(self.seeds)) != len(self.seeds) or not self.seeds:
            raise ValueError(f"seeds must be distinct and at least one, got {self.seeds!r}")

    @property
    def midpoint_steps(self) -> int:
        """Steps of cross-entropy before the students part ways."""
        return int(round(self.student_steps * self.midpoint))

    @property
    def distill_steps(self) -> int:
        """Steps every student (scratch included) trains after the midpoint."""
        return self.student_steps - self.midpoint_steps


LM_SIZES: dict[str, LMSizes] = {
    "smoke": LMSizes(n_train=60_000, n_val=6_000, n_test=6_000, block=32, batch=16, teacher=(2, 2, 48),
                     student=(1, 2, 32), teacher_steps=50, student_steps=24, transfer_windows=384, eval_windows=48,
                     k=4, prompt_len=8, n_samples=8, sample_len=64),
    "cpu": LMSizes(n_train=None, n_val=None, n_test=None, block=64, batch=32, teacher=(4, 4, 128),
                   student=(2, 4, 64), teacher_steps=1200, student_steps=300, transfer_windows=8192,
                   eval_windows=600, k=8, prompt_len=16),
    "gpu": LMSizes(n_train=None, n_val=None, n_test=None, block=256, batch=64, teacher=(6, 6, 384),
                   student=(3, 4, 128), teacher_steps=4000, student_steps=2000, transfer_windows=None,
                   eval_windows=None, k=16, prompt_len=32, n_samples=64, sample_len=400, lr_teacher=1e-3,
                   lr_student=2e-3),
}


def lm_sizes(name: str | None = None) -> LMSizes:
    """The sizes of profile ``name`` (default: the current profile, ``$KDTUTOR_PROFILE``)."""
    from kdtutor.profiles import get_profile

    return LM_SIZES[get_profile(name).name]


def model_config(sizes: LMSizes, vocab_size: int, role: str) -> LMConfig:
    """The :class:`LMConfig` of the ``"teacher"`` or the ``"student"`` of ``sizes``."""
    if role not in ("teacher", "student"):
        raise ValueError(f"role must be 'teacher' or 'student', got {role!r}")
    n_layer, n_head, n_embd = getattr(sizes, role)
    return LMConfig(vocab_size, sizes.block, n_layer, n_head, n_embd)


# --------------------------------------------------------------------------- the loop
@dataclass
class LMTrainConfig:
    """AdamW with linear warm-up and a linear decay to ``final_lr`` × ``lr``; gradients clipped."""

    steps: int
    lr: float = 3e-3
    warmup: float = 0.05
    final_lr: float = 0.1
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float = 1.0
    seed: int = 0
    save_every: int = 100
    schedule_steps: int | None = None  # the schedule's length (None: ``steps``); a run can be a part of it
    offset: int = 0  # the schedule step this run's step 0 is (a continuation of another run)

    def __post_init__(self):
        total = self.schedule_steps or self.steps
        if not (isinstance(self.offset, int) and 0 <= self.offset and self.offset + self.steps <= total):
            raise ValueError(f"offset {self.offset!r} + steps {self.steps} must fit in the schedule's {total} steps")

    def lr_at(self, step: int) -> float:
        """The learning rate of this run's ``step`` (0-based): the schedule at ``offset + step``."""
        total, step = self.schedule_steps or self.steps, self.offset + step
        warm = max(1, int(total * self.warmup))
        if step < warm:
            return self.lr * (step + 1) / warm
        frac = (step - warm) / max(1, total - warm)
        return self.lr * (1 + (self.final_lr - 1) * min(frac, 1.0))


@dataclass
class LMRun:
    """A trained model, its per-step losses (``history``: dicts of step, loss, lr) and what it is (``meta``)."""

    model: CharTransformer
    history: list = field(default_factory=list)
    meta: dict = field(default_factory=dict)


def step_generator(seed: int, step: int) -> torch.Generator:
    """The random numbers of one step, from ``(seed, step)`` alone."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def make_lm_optimizer(model, cfg: LMTrainConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices and embeddings only, not on biases and norm scales (1-D)."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": rest, "weight_decay": 0.0}], lr=cfg.lr, betas=cfg.betas)


def fit_lm(model: CharTransformer, objective, cfg: LMTrainConfig, checkpoint=None, meta: dict | None = None,
           progress: bool = True, desc: str = "training", optimizer_state: dict | None = None) -> LMRun:
    """Train ``model`` for ``cfg.steps`` steps of ``objective``; checkpoint and resume (see the module doc).

    ``optimizer_state``: AdamW's state to start from (a continuation of another run, with
    ``cfg.offset`` its number of steps); the step ``i`` of this run draws the random numbers of
    schedule step ``cfg.offset + i``, so a continuation with the same seed takes the steps the
    uninterrupted run would have taken.

    ``history`` gets one dict per step: ``step``, ``loss``, ``lr``, ``seconds`` (since the start, over
    all sessions) and whatever the objective reports in its ``step_info`` dict (e.g. ``on_policy``)."""
    opt = make_lm_optimizer(model, cfg)
    if optimizer_state is not None:
        opt.load_state_dict(optimizer_state)
    meta = {"model": model.cfg.as_dict(), **(meta or {}), "objective": objective.identity()}
    run_id = {"meta": meta, "config": run_config(cfg),
              "code": digest(code_key(model, objective), code_fingerprint(__name__))}  # an edit retrains
    history, start = [], 0
    if checkpoint is not None and Path(checkpoint).exists():
        ckpt = resume_state(checkpoint, run_id, model, opt, kind="lm_checkpoint",
                            run_is="model, text, teacher, method or settings")
        history, start = ckpt["history"], ckpt["step"]
        if progress:
            print(f"checkpoint {checkpoint}: {start}/{cfg.steps} steps done"
                  + (", loaded, not retrained" if start == cfg.steps else ", resuming"))
    if start < cfg.steps:
        check_writable(checkpoint)  # a finished checkpoint loads from a read-only folder; training there is refused
    model.train()
    bar = tqdm(total=cfg.steps, initial=start, desc=desc, disable=not progress, leave=True)  # stays: how long it took
    t0, seconds = time.perf_counter(), history[-1]["seconds"] if history else 0.0  # seconds: of earlier sessions
    for step in range(start, cfg.steps):
        for group in opt.param_groups:
            group["lr"] = cfg.lr_at(step)
        loss = objective(model, step, step_generator(cfg.seed, cfg.offset + step))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        value = loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(f"the training loss became {value} at step {step + 1}: lower the learning rate")
        history.append({"step": step + 1, "loss": value, "lr": cfg.lr_at(step),
                        "seconds": seconds + time.perf_counter() - t0, **getattr(objective, "step_info", {})})
        bar.set_postfix(loss=f"{value:.3f}")
        bar.update(1)
        done = step + 1
        if checkpoint is not None and (done % cfg.save_every == 0 or done == cfg.steps):
            save_checked({"run": run_id, "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                          "optimizer": opt.state_dict(), "history": history, "step": done,
                          "meta": {**meta, "versions": versions()}}, checkpoint, kind="lm_checkpoint")
    bar.close()
    model.eval()
    return LMRun(model, history, meta)


def run_config(cfg: LMTrainConfig) -> dict:
    """The settings that name a run in its checkpoint: ``asdict(cfg)``, without ``schedule_steps`` and
    ``offset`` for a whole run (None and 0), so checkpoints written before those existed stay valid."""
    config = asdict(cfg)
    if cfg.schedule_steps is None and cfg.offset == 0:
        del config["schedule_steps"], config["offset"]
    return config


def load_lm(path, device=None) -> tuple[CharTransformer, dict]:
    """The finished model saved at ``path`` and its meta (raises ``ValueError`` if it is unfinished)."""
    ckpt = load_checked(path, kind="lm_checkpoint")
    if ckpt["step"] != ckpt["run"]["config"]["steps"]:
        raise ValueError(f"{path} holds an unfinished run ({ckpt['step']}/{ckpt['run']['config']['steps']} steps)")
    model = CharTransformer(LMConfig(**ckpt["meta"]["model"]))
    model.load_state_dict(ckpt["model"])
    return model.to(device or "cpu").eval(), ckpt["meta"]


# --------------------------------------------------------------------------- objectives
def _windows(pool: torch.Tensor, batch: int, g: torch.Generator, random_offsets: bool, block: int) -> torch.Tensor:
    from kdtutor.lm.text import random_windows

    if random_offsets:  # pool is a split of ids: windows at random offsets
        return random_windows(pool, batch, block, g)
    return pool[torch.randint(0, len(pool), (batch,), generator=g)]  # pool is (M, L + 1) fixed windows


class NextChar:
    """Cross-entropy of the next character. ``pool``: a split ``(N,)`` (random windows) or fixed
    windows ``(M, L + 1)``; ``prompt_len`` > 0 leaves out the positions that predict the prompt."""

    def __init__(self, pool: torch.Tensor, batch: int, block: int, prompt_len: int = 0, name: str = "next-char CE"):
        self.pool, self.batch, self.block, self.prompt_len, self.name = pool, batch, block, prompt_len, name

    def identity(self) -> dict:
        return {"name": self.name, "batch": self.batch, "pool": list(self.pool.shape), "prompt_len": self.prompt_len}

    def __call__(self, model, step: int, g: torch.Generator) -> torch.Tensor:
        w = _windows(self.pool, self.batch, g, self.pool.ndim == 1, self.block).to(next(model.parameters()).device)
        logits = model(w[:, :-1])
        ce = F.cross_entropy(logits.flatten(0, 1), w[:, 1:].flatten(), reduction="none").view(w.shape[0], -1)
        mask = prompt_mask(*ce.shape, self.prompt_len, ce.device) if self.prompt_len > 1 else None
        return masked_mean(ce, mask)


class TokenKD:
    """``α·T²·D(teacher, student) + (1 − α)·CE`` at every position of fixed windows, teacher run online."""

    def __init__(self, teacher, windows: torch.Tensor, batch: int, divergence: str = "forward", beta: float = 0.5,
                 T: float = 1.0, alpha: float = 1.0):
        self.teacher, self.windows, self.batch = teacher.eval(), windows, batch
        self.divergence, self.beta, self.T, self.alpha = divergence, beta_of(divergence, beta), T, alpha
        self.teacher_id = weights_fingerprint(teacher)

    def identity(self) -> dict:
        return {"name": "token KD", "divergence": self.divergence, "beta": self.beta, "T": self.T,
                "alpha": self.alpha, "batch": self.batch, "pool": list(self.windows.shape), "teacher": self.teacher_id}

    def loss_on(self, model, seq: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        with torch.no_grad():
            teacher_logits = self.teacher(seq[:, :-1])
        return token_kd_loss(model(seq[:, :-1]), teacher_logits, seq[:, 1:], "jsd", self.beta, self.T,
                             self.alpha, mask)

    def __call__(self, model, step: int, g: torch.Generator) -> torch.Tensor:
        w = _windows(self.windows, self.batch, g, False, 0).to(next(model.parameters()).device)
        return self.loss_on(model, w, None)


class OnPolicyKD(TokenKD):
    """GKD-style: on a fraction ``lmbda`` of steps (drawn per step) the student continues the first
    ``prompt_len`` characters of each window with its own samples and the teacher scores every
    sampled position; on the other steps it learns on the fixed windows, as :class:`TokenKD`.
    (``lmbda`` is TRL's: the fraction of *student-generated* batches; 1 − λ is fixed data.)

    GKD and MiniLLM start from a student that can already write (fine-tuned first); the lesson
    starts it from the scratch student's midpoint weights. ``warm_steps`` > 0 keeps the first
    steps off-policy (for a student started from random weights)."""

    def __init__(self, teacher, windows, batch, divergence="jsd", beta=0.5, T=1.0, lmbda=0.5, prompt_len=16,
                 sample_temperature: float = 1.0, warm_steps: int = 0):
        super().__init__(teacher, windows, batch, divergence, beta, T, alpha=1.0)
        if not 0.0 <= lmbda <= 1.0:
            raise ValueError(f"lmbda must be in [0, 1], got {lmbda!r}")
        self.lmbda, self.prompt_len, self.sample_temperature = lmbda, prompt_len, sample_temperature
        self.warm_steps, self.on_policy_steps = warm_steps, 0

    def identity(self) -> dict:
        return {**super().identity(), "name": "on-policy KD", "lmbda": self.lmbda, "prompt_len": self.prompt_len,
                "sample_temperature": self.sample_temperature, "warm_steps": self.warm_steps}

    def __call__(self, model, step: int, g: torch.Generator) -> torch.Tensor:
        device = next(model.parameters()).device
        w = _windows(self.windows, self.batch, g, False, 0).to(device)
        on_policy = torch.rand((), generator=g).item() < self.lmbda and step >= self.warm_steps
        self.step_info = {"on_policy": on_policy}  # recorded in the run's history
        if not on_policy:
            return self.loss_on(model, w, None)
        self.on_policy_steps += 1
        sampler = torch.Generator(device=device).manual_seed(int(torch.randint(0, 2**62, (), generator=g)))
        seq, mask = on_policy_batch(model, w, self.prompt_len, self.sample_temperature, sampler)
        model.train()
        return self.loss_on(model, seq, mask)


class TopKKD:
    """Forward KL to the teacher's stored top-k (``rest="bucket"`` or ``"renormalize"``) on the fixed
    windows the cache was made from: the teacher is not run while the student trains (which teacher
    made the cache is for the caller to record: ``LMLesson.student`` records its teacher with every run)."""

    def __init__(self, cache: TopK, windows: torch.Tensor, batch: int, rest: str = "bucket"):
        if cache.logprobs.shape[:2] != (windows.shape[0], windows.shape[1] - 1):
            raise ValueError(f"the top-k cache covers {tuple(cache.logprobs.shape[:2])} positions, "
                             f"the windows {windows.shape[0], windows.shape[1] - 1}: they must be the same")
        self.cache, self.windows, self.batch, self.rest = cache, windows, batch, rest

    def identity(self) -> dict:
        return {"name": "top-k KD", "k": self.cache.k, "T": self.cache.T, "rest": self.rest, "batch": self.batch,
                "pool": list(self.windows.shape)}

    def __call__(self, model, step: int, g: torch.Generator) -> torch.Tensor:
        device = next(model.parameters()).device
        rows = torch.randint(0, len(self.windows), (self.batch,), generator=g)
        targets = self.cache[rows]
        targets = TopK(targets.logprobs.to(device), targets.indices.to(device), targets.rest.to(device),
                       targets.T, targets.vocab_size)
        return topk_kd_loss(model(self.windows[rows, :-1].to(device)), targets, rest=self.rest)


# --------------------------------------------------------------------------- one call per run
def train_lm(cfg_model: LMConfig, objective, cfg: LMTrainConfig, data_fingerprint: str, checkpoint=None,
             device=None, progress: bool = True, desc: str = "training", init_from=None, **meta) -> LMRun:
    """Build a model of size ``cfg_model`` (initial weights fixed by ``cfg.seed``) and train it.

    ``init_from``: the path of a finished checkpoint (:func:`load_start`) to continue from instead —
    its weights and optimizer state; their fingerprint goes into the run's identity, so a new
    starting point means a new run, never a reused one.

    A checkpoint that is unusable (corrupt, or another run's) is moved aside and the run
    starts afresh (``kdtutor.images.train.recovering``)."""
    from kdtutor.images.train import recovering

    start = load_start(init_from) if init_from is not None else None
    if start is not None:
        meta = {**meta, "init_sha256": start["sha256"], "init_steps": start["steps"]}

    def run():
        model = build_lm(cfg_model, seed=cfg.seed).to(device or "cpu")
        if start is not None:
            model.load_state_dict(start["model"])
        return fit_lm(model, objective, cfg, checkpoint, {"data_sha256": data_fingerprint, **meta}, progress, desc,
                      start["optimizer"] if start is not None else None)

    return recovering(checkpoint, run)


def load_start(path) -> dict:
    """What a continuation starts from: the finished run at ``path`` — ``{"model", "optimizer"}`` (state
    dicts), ``"sha256"`` (:func:`weights_fingerprint` of the weights) and ``"steps"`` (its step count).
    Raises ``ValueError`` if the run there is unfinished."""
    ckpt = load_checked(path, kind="lm_checkpoint")
    if ckpt["step"] != ckpt["run"]["config"]["steps"]:
        raise ValueError(f"{path} holds an unfinished run ({ckpt['step']}/{ckpt['run']['config']['steps']} steps)")
    model = CharTransformer(LMConfig(**ckpt["meta"]["model"]))
    model.load_state_dict(ckpt["model"])
    return {"model": ckpt["model"], "optimizer": ckpt["optimizer"], "sha256": weights_fingerprint(model),
            "steps": ckpt["step"]}
