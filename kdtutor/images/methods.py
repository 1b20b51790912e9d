"""Lesson 06 — one student run per method, on the course's harness (``train.fit``).

Every method trains the same student, from the same initial weights, over the same data
order and augmentations (all fixed by the run's seed, :func:`kdtutor.images.train.prepare_run`);
only the loss (and the learning rate chosen for it) differs — plus, for the side experiments,
a small projector (FitNets) or mixup views (function matching).

Each method runs at its **reference settings** (:data:`REFERENCE`), those of the code the papers'
CIFAR results come from; nothing about the loss is tuned here, only the learning rate
(:func:`lr_candidates`).

=============  =========================================================================  ===========================
method         loss (student logits s, teacher logits z, labels y)                        from
=============  =========================================================================  ===========================
``scratch``    CE(y, s)                                                                   lesson 04's student recipe
``KD``         0.1·CE + 0.9·T²·KL(z/T ‖ s/T), T = 4                                       mdistiller's KD
``DKD``        CE + w(t)·T²·(1·TCKD + 8·NCKD), T = 4, w warms up over the first 1/12       mdistiller's DKD (CIFAR-100
                                                                                          default: 20 of 240 epochs)
``LS-KD``      0.1·CE + 9·T²·KL(Z(z)/T ‖ Z(s)/T), T = 2                                   the LS-KD authors' code
``FitNets``    CE + β·MSE(r(f_s), f_t), joint (no separate hint stage), β = 1; lesson 06   side experiment
               also runs β = 100, RepDistiller's ``-b 100`` and mdistiller's FEAT_WEIGHT
``FM``         T²·KL(z/T ‖ s/T) on mixup views, no labels, T = 1                           side experiment
=============  =========================================================================  ===========================

Teacher outputs come from a :class:`~kdtutor.images.distill.TeacherLogits` (mode ``"cached"``, or
``"fixed"`` for the fixed teacher): computed once per *view* (seed, epoch, augmentation — and mixup — of
every example) and shared by all runs of that seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from kdtutor.fingerprint import weights_fingerprint
from kdtutor.images.distill import TeacherLogits, teacher_forward
from kdtutor.images.hints import HintedStudent, feature_shape
from kdtutor.images.history import History
from kdtutor.images.loader import Batch, DeviceLoader
from kdtutor.images.predict import cached_predict
from kdtutor.images.recipes import TrainConfig
from kdtutor.images.splits import Dataset
from kdtutor.images.train import eval_loader, fit, prepare_run, recovering
from kdtutor.kd.beyond import dkd_loss, hint_loss, ls_kd_loss
from kdtutor.kd.losses import cross_entropy, distillation_loss, kd_loss

METHODS = ("scratch", "KD", "DKD", "LS-KD")  # the comparison: every seed
SIDE_METHODS = ("FitNets", "FM")  # side experiments: one seed, no verdict
REFERENCE = {  # method → its fixed settings (see the module's table)
    "scratch": {},
    "KD": {"T": 4.0, "alpha": 0.9},
    "DKD": {"T": 4.0, "alpha": 1.0, "beta": 8.0, "warmup": 20 / 240},
    "LS-KD": {"T": 2.0, "ce_weight": 0.1, "kd_weight": 9.0},
    "FitNets": {"beta": 1.0},
    "FM": {"T": 1.0},
}
HINT_LAYERS = {"cnn_tiny": "7", "cnn_small": "7", "airbench_small": "body.2", "airbench": "body.2"}


# --------------------------------------------------------------------------- mixup views
class MixupLoader(DeviceLoader):
    """A training loader whose views are mixup images: example i of epoch e is
    ``λ_i·view(i) + (1 − λ_i)·view(π_i)``, with λ_i ~ U(0, 1) (= Beta(1, 1)) and the partner
    π_i drawn from a generator of ``(seed, epoch)`` alone, so a view is still a pure function
    of ``(seed, epoch, index)`` and can be cached. Order, flips and shifts are those of a
    plain loader with the same seed. Labels stay the original ones (function matching uses none).
    """

    def _mix(self) -> tuple[torch.Tensor, torch.Tensor]:
        if getattr(self, "_mix_epoch", None) != self.epoch:
            g = torch.Generator(self.device).manual_seed(self.seed * 100_003 + self.epoch + 7_919_000)
            n = self.num_examples
            self._mix_params = (torch.randperm(n, device=self.device, generator=g),
                                torch.rand(n, device=self.device, generator=g))
            self._mix_epoch = self.epoch
        return self._mix_params

    def view_key(self) -> tuple:
        return ("mixup", super().view_key())

    def view_images(self, index: torch.Tensor) -> torch.Tensor:
        partner, lam = self._mix()
        lam_i = lam[index].view(-1, 1, 1, 1)
        return lam_i * super().view_images(index) + (1 - lam_i) * super().view_images(partner[index])

    @classmethod
    def like(cls, loader: DeviceLoader) -> MixupLoader:
        """A mixup loader over the same split, seed and augmentation as ``loader``."""
        if not loader.train:
            raise ValueError("mixup views are for training loaders")
        out = cls.__new__(cls)
        out.__dict__.update(loader.__dict__)
        out._mix_epoch = None
        return out


# --------------------------------------------------------------------------- losses for fit
def check_method(method: str) -> None:
    """Raise ``ValueError`` for a method this lesson does not know."""
    if method not in REFERENCE:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(REFERENCE)}")


def dkd_warmup(step: int, total_steps: int, warmup: float) -> float:
    """DKD's warm-up factor at training step ``step`` (1-based) of ``total_steps``: the DKD term's
    weight rises linearly to 1 over the first ``warmup`` fraction of the steps.

    mdistiller multiplies the DKD term by ``min(epoch / 20, 1)`` over 240 epochs (epoch from 1):
    the same ramp, per step instead of per epoch, scaled to this run's length.
    """
    if total_steps < 1 or not 0 < warmup <= 1:
        raise ValueError(f"need total_steps ≥ 1 and 0 < warmup ≤ 1, got {total_steps} and {warmup}")
    return min(step / (warmup * total_steps), 1.0)


class MethodLoss:
    """``loss_fn(logits, batch)`` for :func:`kdtutor.images.train.fit`, for one method of the table above.

    It counts its calls (one per training step) for DKD's warm-up, so one instance serves one run
    of ``total_steps`` steps.
    """

    def __init__(self, method: str, teacher: TeacherLogits | None, model: nn.Module | None = None,
                 total_steps: int | None = None, settings: dict | None = None):
        check_method(method)
        unknown = set(settings or {}) - set(REFERENCE[method])
        if unknown:
            raise ValueError(f"{method} has no setting {', '.join(sorted(unknown))}; its settings: "
                             f"{', '.join(REFERENCE[method]) or 'none'}")
        if method != "scratch" and teacher is None:
            raise ValueError(f"method {method!r} needs the teacher's outputs (a TeacherLogits)")
        if method == "FitNets" and not isinstance(model, HintedStudent):
            raise ValueError("FitNets needs the student wrapped in a HintedStudent (its projected features)")
        if method == "FitNets" and (teacher is None or teacher.layer is None):
            raise ValueError("FitNets needs teacher features: build the TeacherLogits with a layer")
        if method == "DKD" and not total_steps:
            raise ValueError("DKD warms its term up over the run: pass total_steps")
        self.method, self.teacher, self.model = method, teacher, model
        self.p = {**REFERENCE[method], **(settings or {})}
        self.total_steps, self.steps = total_steps, 0

    def __call__(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        self.steps += 1
        z = None if self.method == "scratch" else self.teacher(batch)
        feats = self.teacher.features(batch) if self.method == "FitNets" else None
        return self.loss(logits, z, batch.labels, feats)

    def loss(self, logits: torch.Tensor, z: torch.Tensor, y: torch.Tensor, feats=None) -> torch.Tensor:
        """The method's loss for student ``logits (B, C)``, teacher logits ``z (B, C)``, labels ``y (B,)``."""
        m, p = self.method, self.p
        if m == "scratch":
            return cross_entropy(logits, y, check=False)
        if m == "KD":
            return distillation_loss(logits, z, y, T=p["T"], alpha=p["alpha"], check=False)
        if m == "DKD":
            w = dkd_warmup(max(self.steps, 1), self.total_steps, p["warmup"])
            return cross_entropy(logits, y, check=False) + w * dkd_loss(logits, z, y, p["alpha"], p["beta"], p["T"])
        if m == "LS-KD":
            return p["ce_weight"] * cross_entropy(logits, y, check=False) + p["kd_weight"] * ls_kd_loss(logits, z, T=p["T"])
        if m == "FitNets":
            return cross_entropy(logits, y, check=False) + p["beta"] * hint_loss(self.model.projected, feats)
        return kd_loss(logits, z, T=p["T"], check=False)  # FM: no labels


# --------------------------------------------------------------------------- gradient scale
def logit_gradient_norm(loss_fn, logits: torch.Tensor, *args) -> float:
    """Mean over examples of ``‖∂ℓ_i/∂s_i‖₂``: how hard one example's own loss pulls on its
    logits ``s_i`` (``logits (B, C)``). ``loss_fn(logits, *args)`` is a batch mean, so the
    per-example gradient is ``B ×`` the gradient of the mean (each ``s_i`` only enters ``ℓ_i``)."""
    s = logits.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss_fn(s, *args), s)
    return float((grad * s.shape[0]).norm(dim=1).mean())


def initial_gradient_norms(teacher: nn.Module, arch: str, data: Dataset, cfg: TrainConfig, device=None,
                           n: int = 500) -> dict[str, float]:
    """:func:`logit_gradient_norm` of every method of :data:`METHODS` for the untrained student of
    ``cfg.seed`` on its first ``n`` training views (DKD at its full weight, after the warm-up)."""
    model, loader, _, _ = prepare_run(arch, data, cfg, device=device, augment=True)
    loader.set_epoch(0)
    idx = torch.arange(min(n, loader.num_examples), device=loader.device)
    images, labels = loader.view_images(idx), loader.labels[idx]
    outputs = TeacherLogits(teacher, loader)  # only to build the losses: the teacher's logits are computed here
    with torch.no_grad():
        s = model.train()(images)  # as in training: BatchNorm on the batch's statistics
        z = teacher_forward(outputs.teacher, images)
    out = {}
    for m in METHODS:
        lf = MethodLoss(m, outputs, total_steps=1)
        lf.steps = 1  # DKD past its warm-up
        out[m] = logit_gradient_norm(lambda x: lf.loss(x, z, labels), s)
    return out


def lr_candidates(norms: dict[str, float]) -> dict[str, tuple[float, ...]]:
    """The learning-rate multipliers tried for each method on validation, two each: 1 (the course's student
    learning rate, tuned for CE: what mdistiller does, one learning rate for all) and, for a distillation
    method, the one that makes its initial gradient on the logits as strong as CE's, ``norms["scratch"] /
    norms[method]``; for scratch, whose pull is CE's by definition, twice the course's rate (a shorter run
    than the one it was tuned for may want more). Every method gets the same tuning budget."""
    out = {"scratch": (1.0, 2.0)}
    for m in METHODS[1:]:
        out[m] = (1.0, norms["scratch"] / norms[m])
    return out


# --------------------------------------------------------------------------- one run
@dataclass
class MethodRun:
    """One trained student: its method, learning-rate multiplier, seed, history (with ``test_acc``
    per epoch when probed) and its final test logits ``(N_test, C)``."""

    method: str
    lr_scale: float
    seed: int
    history: History
    test_logits: torch.Tensor
    seconds: float

    @property
    def val_acc(self) -> float:
        return self.history.last_val_acc


def run_path(checkpoint_dir, arch: str, method: str, lr_scale: float, seed: int, fixed: bool = False,
             settings: dict | None = None) -> Path:
    """Where one lesson-06 run is kept: ``<dir>/<arch>_<method>[_<setting><value>…]_lr<scale>_seed<k>.pt``
    (the settings that differ from :data:`REFERENCE` are part of the name)."""
    name = method.replace(" ", "-") + ("_fixed" if fixed else "")
    name += "".join(f"_{k}{v:g}" for k, v in sorted((settings or {}).items()) if v != REFERENCE[method].get(k))
    return Path(checkpoint_dir) / f"{arch}_{name}_lr{lr_scale:.4g}_seed{seed}.pt"


def train_method(method: str, arch: str, data: Dataset, cfg: TrainConfig, teacher: TeacherLogits | None,
                 lr_scale: float = 1.0, device=None, probe_test: bool = True,
                 progress: bool = False, checkpoint_dir=None, settings: dict | None = None) -> MethodRun:
    """Train ``arch`` with ``method`` at its reference settings (``settings`` overrides some of them, e.g.
    ``{"beta": 100.0}`` for FitNets) on ``data`` (seed and schedule from
    ``cfg``, learning rate ``lr_scale × cfg.lr``), validating as ``cfg.val_every`` says and, with
    ``probe_test``, measuring the test split after every epoch (the probe only feeds lesson 06's
    "how comparisons go wrong"; every choice uses validation). ``teacher``: its outputs, shared by the
    runs of one seed (``None`` for ``scratch``); a fixed teacher is one of mode ``"fixed"``.

    With ``checkpoint_dir`` the run is kept there (:func:`run_path`) with what it was made from
    (data, teacher, method, settings, schedule, code version); a finished run made from the same
    is loaded instead of retrained, one made from anything else is moved aside and retrained.
    """
    check_method(method)
    if not lr_scale > 0:
        raise ValueError(f"lr_scale must be > 0, got {lr_scale}")
    fixed = teacher is not None and teacher.mode == "fixed"
    path = run_path(checkpoint_dir, arch, method, lr_scale, cfg.seed, fixed, settings) if checkpoint_dir else None
    return recovering(path, lambda: _train_method(method, arch, data, replace(cfg, lr=cfg.lr * lr_scale), teacher,
                                                  lr_scale, fixed, device, probe_test, progress, path, settings))


def _train_method(method, arch, data, cfg, teacher, lr_scale, fixed, device, probe_test, progress, path,
                  settings) -> MethodRun:
    model, train_loader, val_loader, meta = prepare_run(arch, data, cfg, device=device, augment=True)
    if method == "FitNets":
        t_shape = feature_shape(teacher.teacher, teacher.layer, data.image_shape)
        model = HintedStudent(model, HINT_LAYERS[arch], t_shape, data.image_shape)  # projector drawn after the student
    if method == "FM":
        train_loader = MixupLoader.like(train_loader)
    if teacher is not None:
        teacher.attach(train_loader)
    loss_fn = MethodLoss(method, teacher, model, total_steps=cfg.epochs * len(train_loader), settings=settings)
    meta.update({"kind": "lesson 06", "method": method, "settings": loss_fn.p, "lr_scale": lr_scale,
                 "fixed_teacher": fixed, "teacher_sha256": weights_fingerprint(teacher.teacher) if teacher else None,
                 "probe_test": probe_test})
    test_loader = eval_loader(data, "test", train_loader.device)
    history = fit(model, train_loader, val_loader, cfg, loss_fn=loss_fn, progress=progress, checkpoint=path, meta=meta,
                  desc=f"{method} seed {cfg.seed}", probes={"test": test_loader} if probe_test else None)
    student = model.student if isinstance(model, HintedStudent) else model
    if isinstance(model, HintedStudent):
        model.hook.remove()
    logits, _ = cached_predict(student, test_loader)  # a run loaded from its file is not evaluated again
    if not math.isfinite(float(logits.sum())):
        raise ValueError(f"{method} (lr × {lr_scale:g}): the student's test logits are not finite")
    seconds = sum(e["seconds"] for e in history.epochs)  # training time, also of a run loaded from its checkpoint
    return MethodRun(method, lr_scale, cfg.seed, history, logits.cpu(), seconds)
