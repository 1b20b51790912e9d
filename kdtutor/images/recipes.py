"""Lesson 03 — training recipes: what a run's :class:`TrainConfig` holds, and kdtutor's choices.

All names here are also importable from ``kdtutor.images.train``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from kdtutor.precision import AMP_CHOICES


@dataclass
class TrainConfig:
    """How to train. Learning rates are for the batch-mean loss.

    The schedule rises linearly from ``start_lr`` × ``lr`` to ``lr`` over the first
    ``warmup`` fraction of steps, then falls linearly to ``final_lr`` × ``lr``.

    Speed and bookkeeping (they never change what is learnt):

    * ``amp``: training precision — ``"auto"`` (:func:`kdtutor.precision.amp_dtype`:
      bf16 on recent GPUs, fp16 + loss scaling on older ones, fp32 on the CPU), or
      ``"fp32"``, ``"bf16"``, ``"fp16"`` to force one.
    * ``deterministic``: same seed → same weights on the GPU too, at some cost in speed
      (:func:`kdtutor.precision.determinism`). The CPU is reproducible either way.
    * ``val_every`` / ``checkpoint_every``: validate / write the checkpoint every k epochs
      (and always after the last). ``val_every=0``: validate only after the last epoch.
    * ``drop_last``: every training step sees ``batch_size`` images (the few left over
      are skipped, different ones each epoch).
    * ``train_on_val``: train on the training *and* validation images (the final teacher,
      e.g. all 50,000 CIFAR-10 training images); there is then nothing left to validate on.
    * ``translate``: the random shift of augmented images, in pixels (0: a random mirror only; a
      cached teacher then computes its logits once for both views of every image).

    airbench94's own extras are in :class:`AirbenchConfig`.
    """

    epochs: int = 10
    batch_size: int = 256
    lr: float = 0.2
    momentum: float = 0.9
    weight_decay: float = 5e-4
    bn_bias_lr_scale: float = 1.0  # BatchNorm shifts learn this many times faster (airbench: 64)
    label_smoothing: float = 0.0
    warmup: float = 0.2
    start_lr: float = 0.2
    final_lr: float = 0.05
    seed: int = 0
    # speed and bookkeeping
    amp: str = "auto"
    deterministic: bool = False
    val_every: int = 1
    checkpoint_every: int = 1
    drop_last: bool = True
    train_on_val: bool = False
    translate: int = 2

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be at least 1, got {self.epochs} and {self.batch_size}")
        if self.amp not in AMP_CHOICES:
            raise ValueError(f"amp must be one of {', '.join(AMP_CHOICES)}, got {self.amp!r}")
        if self.val_every < 0 or self.checkpoint_every < 1:
            raise ValueError(f"need val_every ≥ 0 and checkpoint_every ≥ 1, got {self.val_every} and "
                             f"{self.checkpoint_every}")
        if self.translate < 0:
            raise ValueError(f"translate must be ≥ 0 pixels, got {self.translate}")


@dataclass
class AirbenchConfig(TrainConfig):
    """A :class:`TrainConfig` with airbench94's extras (:mod:`kdtutor.images.airbench`), off unless set —
    :func:`airbench_config` sets them for the ``airbench`` teacher only:

    * ``lookahead``: Lookahead/EMA of the weights from epoch 4 on.
    * ``dirac_init``: 3×3 convolutions start as the identity on their first channels.
    * ``whiten_bias_epochs``: the whitening bias starts at 0 and freezes after this many
      epochs (None: random start, trained throughout).
    * ``alternate_flip``: each image is mirrored on alternate epochs instead of at random.
    """

    lookahead: bool = False
    dirac_init: bool = False
    whiten_bias_epochs: int | None = None
    alternate_flip: bool = False

    def __post_init__(self):
        super().__post_init__()
        if self.whiten_bias_epochs is not None and self.whiten_bias_epochs < 0:
            raise ValueError(f"whiten_bias_epochs must be None or ≥ 0, got {self.whiten_bias_epochs}")


# fields that never change the weights a run ends with: not part of a run's identity
_BOOKKEEPING = ("deterministic", "val_every", "checkpoint_every")
# fields added after checkpoints were first written: part of the identity only when not at their default,
# so a checkpoint written before they existed still names the same run
_ADDED_LATER = ("amp", "drop_last", "lookahead", "dirac_init", "whiten_bias_epochs", "alternate_flip",
                "train_on_val", "translate")


def config_identity(cfg: TrainConfig) -> dict:
    """What of ``cfg`` decides the trained weights: the checkpoint of a run records it, and
    a checkpoint is resumed only by a run with the same identity."""
    defaults = {f.name: f.default for f in fields(cfg)}
    out = asdict(cfg)
    for name in _BOOKKEEPING:
        del out[name]
    for name in _ADDED_LATER:
        if name in out and out[name] == defaults[name]:
            del out[name]
    return out


def airbench_config(epochs: int = 10, batch_size: int = 1024, seed: int = 0, arch: str = "airbench",
                    train_on_val: bool = False, label_smoothing: float = 0.0) -> AirbenchConfig:
    """airbench94's optimiser settings (Jordan, 2024), rewritten for a batch-mean loss.

    airbench sums the loss over the batch and uses lr = 11.5 / (1024·(1 + 1/(1 − m)))
    per summed example, decoupled weight decay 0.0153 × batch / that same scale,
    Nesterov momentum m = 0.85, BatchNorm shifts at 64× the rate.

    ``label_smoothing``: airbench94 uses 0.2 for its speed record; the course's teachers use 0 (the
    default here), as airbench's own README does "to get a better confidence signal": a teacher
    trained with smoothing has flatter, less informative soft targets (Müller et al. 2019; lesson 05
    measures both teachers).

    For ``arch="airbench"`` (the gpu profile's teacher) it adds the rest of airbench94's
    recipe: Lookahead/EMA, identity-initialised 3×3 convolutions, the whitening bias
    zeroed and frozen after 3 epochs, alternating flips. For other architectures
    (``airbench_small``, the cpu and smoke teacher) those stay off. ``train_on_val``
    trains on the training and validation images together.
    """
    momentum = 0.85
    kilostep = 1024 * (1 + 1 / (1 - momentum))
    lr = 11.5 * batch_size / kilostep  # ≈ 1.5 for a batch of 1024
    full = arch == "airbench"
    return AirbenchConfig(epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum,
                          weight_decay=0.0153 / 11.5, bn_bias_lr_scale=64.0, label_smoothing=label_smoothing,
                          warmup=0.23, start_lr=0.2, final_lr=0.07, seed=seed,
                          lookahead=full, dirac_init=full, whiten_bias_epochs=3 if full else None,
                          alternate_flip=full, train_on_val=train_on_val)


def student_config(epochs: int = 10, batch_size: int = 256, seed: int = 0) -> TrainConfig:
    """A plain recipe for the small students: Nesterov SGD, lr 0.2 per 256 images, no smoothing."""
    return TrainConfig(epochs=epochs, batch_size=batch_size, lr=0.2 * batch_size / 256, momentum=0.9,
                       weight_decay=5e-4, warmup=0.15, start_lr=0.1, final_lr=0.02, seed=seed)


def digits_config(epochs: int = 40, batch_size: int = 64, seed: int = 0) -> TrainConfig:
    """For the MLPs on 8×8 digits: Nesterov SGD at lr 0.05, short warm-up, decay to 1 %.

    Keeps the last, smaller batch (``drop_last=False``): with ~1,000 training digits
    every image counts, and on the CPU a batch of another size costs nothing.
    """
    return TrainConfig(epochs=epochs, batch_size=batch_size, lr=0.05, momentum=0.9, weight_decay=5e-4,
                       warmup=0.1, start_lr=0.1, final_lr=0.01, seed=seed, drop_last=False)


def config_for(arch, epochs: int, batch_size: int, seed: int = 0) -> TrainConfig:
    """The recipe kdtutor uses for ``arch``: airbench's for airbench nets (its full form for
    ``airbench``), the digits one for MLPs, the student one otherwise (also for your own model:
    a constructor or an ``nn.Module``)."""
    if not isinstance(arch, str):
        return student_config(epochs=epochs, batch_size=batch_size, seed=seed)
    if arch.startswith("airbench"):
        return airbench_config(epochs=epochs, batch_size=batch_size, seed=seed, arch=arch)
    make = digits_config if arch.startswith("mlp") else student_config
    return make(epochs=epochs, batch_size=batch_size, seed=seed)


def lr_factor(step: int, total: int, cfg: TrainConfig) -> float:
    """The multiplier of ``cfg.lr`` at ``step`` of ``total``: linear warm-up, then linear decay."""
    warm = max(1, int(total * cfg.warmup))
    if step < warm:
        return cfg.start_lr + (1 - cfg.start_lr) * step / warm
    frac = (step - warm) / max(1, total - warm)
    return 1 + (cfg.final_lr - 1) * min(frac, 1.0)


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.SGD:
    """Nesterov SGD; BatchNorm shifts in their own group at ``bn_bias_lr_scale`` × lr.

    Weight decay is scaled down by the same factor in that group, so every
    parameter decays by the same amount per step.
    """
    bn_biases = [m.bias for m in model.modules() if isinstance(m, nn.BatchNorm2d) and m.bias is not None]
    bn_ids = {id(p) for p in bn_biases}
    others = [p for p in model.parameters() if id(p) not in bn_ids]
    s = cfg.bn_bias_lr_scale
    groups = [
        {"params": [p for p in others if p.requires_grad], "lr": cfg.lr, "weight_decay": cfg.weight_decay, "base_lr": cfg.lr},
        {"params": [p for p in bn_biases if p.requires_grad], "lr": cfg.lr * s, "weight_decay": cfg.weight_decay / s, "base_lr": cfg.lr * s},
    ]
    return torch.optim.SGD([g for g in groups if g["params"]], lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
