"""Lesson 03 — the parts of airbench94's recipe (Jordan, 2024) beyond the network and the optimiser.

Reference: ``airbench94.py`` in github.com/KellerJordan/cifar10-airbench (94.01 % mean
CIFAR-10 test accuracy in 3.83 s on one A100). kdtutor turns these on for the
``airbench`` teacher of the gpu profile only (:func:`kdtutor.images.recipes.airbench_config`);
the cpu and smoke recipes do not use them.

* :class:`Lookahead` — every 5 steps from epoch 4 on, an exponential moving average of
  the weights is updated and copied back into the network (with a decay that grows
  towards the end of training), and the network is reset to the average after each epoch.
* :func:`tta_logits` — test-time augmentation: level 1 averages the image and its
  mirror; level 2 (airbench's) also the images shifted one pixel up-left and down-right.
* :func:`dirac_init_` — 3×3 convolutions start as the identity on their first channels.
* :func:`set_whiten_bias_trainable` — the whitening layer's bias starts at 0, trains for
  3 epochs, then is frozen.
* alternating flips live in :class:`kdtutor.images.loader.DeviceLoader` (``alternate_flip``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LOOKAHEAD_START_EPOCH = 3  # 0-based: from the 4th epoch on
LOOKAHEAD_EVERY = 5  # steps between updates
LOOKAHEAD_DECAY_BASE = 0.95  # per-step decay; per update: 0.95 ** 5
LOOKAHEAD_DECAY_POW = 3.0  # the decay grows as (step / total) ** 3
WHITEN_BIAS_EPOCHS = 3


# --------------------------------------------------------------------------- lookahead / EMA
class Lookahead:
    """airbench's Lookahead/EMA of the weights, driven by the training loop.

    At global step ``s`` (1-based, counted over the whole run of ``total_steps``), if
    ``s`` is a multiple of ``every`` and falls in epoch ≥ ``start_epoch`` (0-based):
    the first time, the average starts as a copy of the weights; afterwards

        ρ = base^every · (s / total_steps)^pow,   ema ← ρ·ema + (1 − ρ)·w,   w ← ema

    for every floating-point entry of the state dict (weights, BatchNorm running
    statistics). After each epoch the network is set to the average (``w ← ema``).

    Args:
        model: the network being trained (updated in place).
        total_steps: optimiser steps of the whole run.
        steps_per_epoch: optimiser steps per epoch.
    """

    def __init__(self, model: nn.Module, total_steps: int, steps_per_epoch: int,
                 start_epoch: int = LOOKAHEAD_START_EPOCH, every: int = LOOKAHEAD_EVERY,
                 decay_base: float = LOOKAHEAD_DECAY_BASE, decay_pow: float = LOOKAHEAD_DECAY_POW):
        if total_steps < 1 or steps_per_epoch < 1 or every < 1 or start_epoch < 0:
            raise ValueError(f"need total_steps, steps_per_epoch, every ≥ 1 and start_epoch ≥ 0; got "
                             f"{total_steps}, {steps_per_epoch}, {every}, {start_epoch}")
        self.model, self.total, self.per_epoch = model, total_steps, steps_per_epoch
        self.start_epoch, self.every, self.base, self.pow = start_epoch, every, decay_base, decay_pow
        self.ema: dict[str, torch.Tensor] | None = None

    def decay(self, step: int) -> float:
        """ρ at global step ``step`` (1-based)."""
        return self.base ** self.every * (step / self.total) ** self.pow

    def _floats(self):
        return [(k, v) for k, v in self.model.state_dict().items() if v.is_floating_point()]

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        """Call after optimiser step ``step`` (1-based, global)."""
        epoch = (step - 1) // self.per_epoch
        if epoch < self.start_epoch or step % self.every:
            return
        if self.ema is None:
            self.ema = {k: v.detach().clone() for k, v in self._floats()}
            return
        rho = self.decay(step)
        for k, w in self._floats():
            self.ema[k].lerp_(w, 1 - rho)
            w.copy_(self.ema[k])

    @torch.no_grad()
    def end_epoch(self) -> None:
        """Set the network to the average (airbench's ``update(decay=1.0)``); nothing before it starts."""
        if self.ema is not None:
            for k, w in self._floats():
                w.copy_(self.ema[k])

    def resume(self, epochs_done: int) -> None:
        """Rebuild the state after ``epochs_done`` epochs of a run loaded from a checkpoint.

        At the end of an epoch the weights *are* the average, so the average is a
        copy of them once it has started (at the first qualifying step).
        """
        first = self.start_epoch * self.per_epoch + 1
        first += -first % self.every  # the first multiple of ``every`` in the start epoch or later
        self.ema = None
        if first <= epochs_done * self.per_epoch:
            self.ema = {k: v.detach().clone() for k, v in self._floats()}


# --------------------------------------------------------------------------- test-time augmentation
TTA_LEVELS = (0, 1, 2)


def tta_views(images: torch.Tensor, level: int = 2) -> list[tuple[float, torch.Tensor]]:
    """The views of ``images (B, C, H, W)`` that TTA averages, with their weights (summing to 1).

    * level 0: the images (weight 1).
    * level 1: the images and their mirrors (½ each).
    * level 2 (airbench94): ½ × level 1 of the images, plus ½ × the mean of level 1 of two
      translated copies — the 32×32 window moved one pixel up-left and one pixel
      down-right in the reflect-padded image (as airbench's ``infer_mirror_translate``):
      six views, weighted ¼, ¼, ⅛, ⅛, ⅛, ⅛.
    """
    level = int(level)
    if level not in TTA_LEVELS:
        raise ValueError(f"TTA level must be 0 (none), 1 (mirror) or 2 (mirror + translate), got {level!r}")
    if level == 0:
        return [(1.0, images)]
    mirror = lambda x, w: [(w / 2, x), (w / 2, x.flip(-1))]  # noqa: E731
    if level == 1:
        return mirror(images, 1.0)
    H, W = images.shape[-2:]
    padded = F.pad(images, (1, 1, 1, 1), mode="reflect")
    shifted = [padded[..., 0:H, 0:W], padded[..., 2:H + 2, 2:W + 2]]
    if images.is_contiguous(memory_format=torch.channels_last):
        shifted = [s.contiguous(memory_format=torch.channels_last) for s in shifted]
    return mirror(images, 0.5) + mirror(shifted[0], 0.25) + mirror(shifted[1], 0.25)


def tta_logits(model: nn.Module, images: torch.Tensor, level: int = 2) -> torch.Tensor:
    """``(B, num_classes) float32``: the weighted mean of ``model``'s logits over :func:`tta_views`."""
    out = None
    for weight, view in tta_views(images, level):
        z = weight * model(view).float()
        out = z if out is None else out + z
    return out


# --------------------------------------------------------------------------- initialisation
@torch.no_grad()
def dirac_init_(model: nn.Module) -> nn.Module:
    """Make every 3×3 convolution start as the identity on its first ``C_in`` output channels.

    As airbench's ``Conv.reset_parameters``: after the default initialisation,
    ``torch.nn.init.dirac_(w[:C_in])`` — output channel ``i < C_in`` copies input channel
    ``i`` (an implicit residual connection); the others keep their random weights.
    Other convolutions (the 2×2 whitening layer) are left alone. Returns ``model``.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) and m.groups == 1:
            w = m.weight
            nn.init.dirac_(w[: w.size(1)])
    return model


def whiten_bias(model: nn.Module) -> nn.Parameter:
    """The bias of ``model``'s whitening layer (``model.whiten``); ValueError if it has none."""
    layer = getattr(model, "whiten", None)
    if not isinstance(layer, nn.Conv2d) or layer.bias is None:
        raise ValueError(f"{type(model).__name__} has no whitening layer with a bias (an airbench network has)")
    return layer.bias


@torch.no_grad()
def zero_whiten_bias_(model: nn.Module) -> nn.Module:
    """Set the whitening layer's bias to 0 (airbench's start); returns ``model``."""
    whiten_bias(model).zero_()
    return model


def set_whiten_bias_trainable(model: nn.Module, trainable: bool) -> None:
    """Train (or freeze) the whitening layer's bias. A frozen parameter gets no gradient,
    so SGD leaves it alone: no step, no momentum, no weight decay."""
    whiten_bias(model).requires_grad_(trainable)


# --------------------------------------------------------------------------- what fit calls
class AirbenchExtras:
    """airbench94's training-time extras, driven by :func:`kdtutor.images.train.fit`: :class:`Lookahead`
    (``cfg.lookahead``) and the whitening bias trained for ``cfg.whiten_bias_epochs`` epochs, then frozen.
    Each is off unless ``cfg`` (an :class:`~kdtutor.images.recipes.AirbenchConfig`) turns it on; for any
    other config every method does nothing.

    Build it before the optimiser: the whitening bias must be trainable then to be in its groups.
    """

    def __init__(self, model: nn.Module, cfg, total_steps: int, steps_per_epoch: int):
        self.model = model
        self.freeze_after = getattr(cfg, "whiten_bias_epochs", None)
        self.lookahead = Lookahead(model, total_steps, steps_per_epoch) if getattr(cfg, "lookahead", False) else None
        if self.freeze_after is not None:
            set_whiten_bias_trainable(model, True)  # in the optimiser from the start; frozen later by epoch

    def resume(self, epochs_done: int) -> None:
        """A run loaded from a checkpoint after ``epochs_done`` epochs (see :meth:`Lookahead.resume`)."""
        if self.lookahead is not None:
            self.lookahead.resume(epochs_done)

    def start_epoch(self, epoch: int) -> None:
        """Before epoch ``epoch`` (0-based): the whitening bias trains only in the first epochs."""
        if self.freeze_after is not None:
            set_whiten_bias_trainable(self.model, epoch < self.freeze_after)

    def after_step(self, step: int) -> None:
        """After optimiser step ``step`` (1-based, counted over the whole run)."""
        if self.lookahead is not None:
            self.lookahead.after_step(step)

    def end_epoch(self) -> None:
        """After each epoch: the weights become Lookahead's average."""
        if self.lookahead is not None:
            self.lookahead.end_epoch()


def init_for(model: nn.Module, cfg) -> nn.Module:
    """airbench's initialisation where ``cfg`` asks: 3×3 convolutions as the identity (``cfg.dirac_init``)
    and the whitening bias at 0 (``cfg.whiten_bias_epochs`` set); ``model`` as it is otherwise."""
    if getattr(cfg, "dirac_init", False):
        dirac_init_(model)
    if getattr(cfg, "whiten_bias_epochs", None) is not None:
        zero_whiten_bias_(model)
    return model
