"""Lesson 04 — distil a student from a frozen teacher, correctly and fairly.

* The teacher is frozen: eval mode (BatchNorm uses its running statistics,
  dropout is off) and no gradients.
* Teacher and student see the same augmented image ("consistent teaching",
  Beyer et al. 2022). Where teacher logits come from is a choice
  (:class:`TeacherLogits`): computed online, cached per exact view, or fixed
  (computed once on clean images) — the last one on purpose only.
* Cached logits are looked up by *example index and view*, never by batch
  position, and spot-checked against the teacher (:func:`check_cached_logits`).
* Comparisons are fair: from-scratch and distilled students share architecture,
  initial weights, data order, augmentation and schedule (all fixed by the seed).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from .data import Batch, Dataset, DeviceLoader
from .losses import check_alpha, distillation_loss
from .softmax import check_temperature
from .train import TrainConfig, TrainResult, _autocast, _results, fit, prepare_run

MODES = ("online", "cached", "fixed")


def freeze(teacher: nn.Module) -> nn.Module:
    """Put ``teacher`` in eval mode and switch off its gradients; returns it."""
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


@torch.no_grad()
def teacher_forward(teacher: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Logits ``(B, C) float32`` of the frozen teacher (bf16 autocast on CUDA)."""
    with _autocast(images.device):
        return teacher(images).float()


class CachedLogitsMismatch(ValueError):
    """Cached teacher logits do not belong to the images they were used with."""


def check_cached_logits(teacher: nn.Module, images: torch.Tensor, logits: torch.Tensor, k: int = 8,
                        rtol: float = 0.05) -> None:
    """Recompute the teacher on the first ``k`` images and compare with ``logits``.

    Args:
        images: ``(B, C, H, W)`` the images the student is trained on.
        logits: ``(B, num_classes)`` the teacher logits about to be used for them.
    Raises:
        CachedLogitsMismatch: they differ by more than ``rtol`` of the logits' scale,
            e.g. because the cache was indexed by batch position while the data were
            shuffled, or computed on other views (augmentations) of the images.
    """
    fresh = teacher_forward(teacher, images[:k])
    used = logits[:k].float().to(fresh.device)
    scale = fresh.abs().max().clamp_min(1e-6)
    err = (fresh - used).abs().max()
    if err > rtol * scale:
        raise CachedLogitsMismatch(
            f"cached teacher logits do not match the teacher on these images (max difference {err:.3g}, "
            f"logit scale {scale:.3g}): they belong to other examples or other views. Look them up by "
            "example index (batch.index), not by batch position, and only for the view the student sees."
        )


class TeacherLogits:
    """The teacher's logits for each training batch, in one of three modes.

    * ``"online"``: run the frozen teacher on the student's (augmented) batch.
    * ``"cached"``: the same numbers, computed once per epoch-view for all
      examples and stored by ``(view, index)``; runs with the same data seed
      (a sweep) reuse them instead of running the teacher again.
    * ``"fixed"``: logits of the *clean* images, computed once, while the student
      sees augmented views — the "fixed teacher" that Beyer et al. (2022) show
      to be worse. For the consistency lab only.

    Cached and fixed logits are spot-checked on the first batch of each epoch.
    """

    def __init__(self, teacher: nn.Module, loader: DeviceLoader, mode: str = "online"):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.teacher, self.loader, self.mode = freeze(teacher).to(loader.device), loader, mode
        self.cache: dict = {}  # view key → (N, C) logits
        self._checked: set = set()

    def attach(self, loader: DeviceLoader) -> None:
        """Serve batches of another loader over the same split (a new run with the same seed)."""
        if loader.num_examples != self.loader.num_examples or loader.seed != self.loader.seed:
            raise ValueError("cached teacher logits can only be shared by runs over the same data with the same seed")
        self.loader = loader

    def _all_logits(self, key) -> torch.Tensor:
        """Teacher logits for every example of the loader, for the view named ``key``."""
        if key not in self.cache:
            n, bs = self.loader.num_examples, 1024
            views = self.loader.clean_images if key == "clean" else self.loader.view_images
            idx = torch.arange(n, device=self.loader.device)
            self.cache[key] = torch.cat([teacher_forward(self.teacher, views(idx[i:i + bs])) for i in range(0, n, bs)])
        return self.cache[key]

    def __call__(self, batch: Batch) -> torch.Tensor:
        """``(B, C)`` teacher logits for ``batch`` (no gradients)."""
        if self.mode == "online":
            return teacher_forward(self.teacher, batch.images)
        if self.mode == "cached":
            if batch.view != self.loader.view_key():
                raise CachedLogitsMismatch(f"batch of view {batch.view} served while the loader is at {self.loader.view_key()}")
            key = batch.view if batch.view is not None else "clean"
            logits = self._all_logits(key)[batch.index]
            if key not in self._checked:
                check_cached_logits(self.teacher, batch.images, logits)
                self._checked.add(key)
            return logits
        logits = self._all_logits("clean")[batch.index]  # fixed
        if self.loader.epoch not in self._checked:
            check_cached_logits(self.teacher, self.loader.clean_images(batch.index), logits)
            self._checked.add(self.loader.epoch)
        return logits


class DistillLoss:
    """``loss_fn(logits, batch)`` for :func:`kdtutor.train.fit`: the combined KD loss.

    ``(1 − α)·CE(labels, student) + α·T²·KL(teacher ‖ student)`` at temperature T.
    """

    def __init__(self, teacher_logits: TeacherLogits, T: float = 4.0, alpha: float = 0.9):
        self.teacher_logits, self.T, self.alpha = teacher_logits, check_temperature(T), check_alpha(alpha)

    def __call__(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return distillation_loss(logits, self.teacher_logits(batch), batch.labels, self.T, self.alpha, check=False)


# --------------------------------------------------------------------------- runs
def distill_student(teacher: nn.Module, arch: str, data: Dataset, cfg: TrainConfig, T: float = 4.0,
                    alpha: float = 0.9, mode: str = "online", augment: bool | None = None,
                    teacher_logits: TeacherLogits | None = None, device=None, checkpoint=None,
                    profile: str = "", progress: bool = True) -> TrainResult:
    """Train student ``arch`` on ``data`` with the KD loss from a frozen ``teacher``.

    Everything but the loss is as in :func:`kdtutor.train.train_model` with the same
    ``cfg`` (same seed → same initial weights, order and augmentation). Pass
    ``teacher_logits`` (mode ``"cached"``) to share teacher outputs between runs
    with the same seed, as in a sweep.
    """
    model, train_loader, val_loader, meta = prepare_run(arch, data, cfg, profile, device, augment)
    if teacher_logits is None:
        teacher_logits = TeacherLogits(teacher, train_loader, mode)
    else:
        teacher_logits.attach(train_loader)
    meta.update({"kind": "distilled", "T": T, "alpha": alpha, "teacher_mode": teacher_logits.mode})
    history = fit(model, train_loader, val_loader, cfg, loss_fn=DistillLoss(teacher_logits, T, alpha),
                  checkpoint=checkpoint, meta=meta, progress=progress, desc=f"{arch} ← KD T={T:g} α={alpha:g}")
    return TrainResult(model.eval(), history, {**meta, **_results(history)})
