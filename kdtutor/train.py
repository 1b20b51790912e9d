"""Lesson 03 — one training loop for teachers and students, with safe checkpoints.

The loop is plain PyTorch: for each batch, ``logits = model(images)``,
``loss = loss_fn(logits, batch)``, backward, SGD step. The loss is pluggable:
:func:`hard_label_loss` for training from labels, or a distillation loss from
``kdtutor.distill`` — both take ``(logits (B, C), batch)`` and return a scalar.

On CUDA the loop uses bf16 autocast and channels-last memory (fast tensor-core
convolutions); on the CPU it stays in float32 (bf16 is ~10× slower on CPUs).
"""

from __future__ import annotations

import hashlib
import math
import platform
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from . import __version__
from .data import Batch, Dataset, DeviceLoader
from .losses import cross_entropy
from .models import build_model
from .storage import CHECKPOINT_DIR, CorruptFileError, load_checked, move_aside, save_checked


# --------------------------------------------------------------------------- basics
def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) random number generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def versions() -> dict:
    """Versions that matter for reproducing a run."""
    return {"kdtutor": __version__, "torch": str(torch.__version__), "python": platform.python_version()}


@dataclass
class TrainConfig:
    """How to train. Learning rates are for the batch-mean loss.

    The schedule rises linearly from ``start_lr`` × ``lr`` to ``lr`` over the first
    ``warmup`` fraction of steps, then falls linearly to ``final_lr`` × ``lr``.
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


def airbench_config(epochs: int = 10, batch_size: int = 1024, seed: int = 0) -> TrainConfig:
    """airbench94's optimiser settings (Jordan, 2024), rewritten for a batch-mean loss.

    airbench sums the loss over the batch and uses lr = 11.5 / (1024·(1 + 1/(1 − m)))
    per summed example, decoupled weight decay 0.0153 × batch / that same scale,
    Nesterov momentum m = 0.85, BatchNorm shifts at 64× the rate, label smoothing 0.2.
    """
    momentum = 0.85
    kilostep = 1024 * (1 + 1 / (1 - momentum))
    lr = 11.5 * batch_size / kilostep  # ≈ 1.5 for a batch of 1024
    return TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum,
                       weight_decay=0.0153 / 11.5, bn_bias_lr_scale=64.0, label_smoothing=0.2,
                       warmup=0.23, start_lr=0.2, final_lr=0.07, seed=seed)


def student_config(epochs: int = 10, batch_size: int = 256, seed: int = 0) -> TrainConfig:
    """A plain recipe for the small students: Nesterov SGD, lr 0.2 per 256 images, no smoothing."""
    return TrainConfig(epochs=epochs, batch_size=batch_size, lr=0.2 * batch_size / 256, momentum=0.9,
                       weight_decay=5e-4, warmup=0.15, start_lr=0.1, final_lr=0.02, seed=seed)


def digits_config(epochs: int = 40, batch_size: int = 64, seed: int = 0) -> TrainConfig:
    """For the MLPs on 8×8 digits: Nesterov SGD at lr 0.05, short warm-up, decay to 1 %."""
    return TrainConfig(epochs=epochs, batch_size=batch_size, lr=0.05, momentum=0.9, weight_decay=5e-4,
                       warmup=0.1, start_lr=0.1, final_lr=0.01, seed=seed)


def config_for(arch: str, epochs: int, batch_size: int, seed: int = 0) -> TrainConfig:
    """The recipe kdtutor uses for ``arch``: airbench's for airbench nets, the digits one for MLPs,
    the student one otherwise."""
    if arch.startswith("airbench"):
        make = airbench_config
    elif arch.startswith("mlp"):
        make = digits_config
    else:
        make = student_config
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


def hard_label_loss(label_smoothing: float = 0.0):
    """The loss for training from labels: ``loss_fn(logits (B, C), batch) → CE`` (batch mean)."""

    def loss_fn(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return cross_entropy(logits, batch.labels, label_smoothing=label_smoothing, check=False)

    return loss_fn


# --------------------------------------------------------------------------- prediction
@torch.no_grad()
def predict(model: nn.Module, loader: DeviceLoader, tta: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """All logits and labels of a (non-shuffled) loader, in split order.

    Returns:
        ``logits (N, C) float32`` and ``labels (N,) int64``, on the loader's device.
        With ``tta`` the logits are averaged with those of the mirrored images.
    """
    was_training = model.training
    model.eval()
    outs, labels, index = [], [], []
    with autocast(loader.device):
        for batch in loader:
            z = model(batch.images).float()
            if tta:
                z = (z + model(batch.images.flip(-1)).float()) / 2
            outs.append(z)
            labels.append(batch.labels)
            index.append(batch.index)
    model.train(was_training)
    order = torch.argsort(torch.cat(index))
    return torch.cat(outs)[order], torch.cat(labels)[order]


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows whose largest logit is at the label."""
    return (logits.argmax(dim=1) == labels).float().mean().item()


def autocast(device: torch.device):
    """bf16 autocast on CUDA (tensor cores); a no-op on the CPU, where bf16 is slow."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


# --------------------------------------------------------------------------- history
@dataclass
class History:
    """Per-epoch records: ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, ``lr``,
    ``seconds`` (training time of the epoch) and ``images_per_s``."""

    epochs: list[dict] = field(default_factory=list)

    def column(self, key: str) -> list:
        return [e[key] for e in self.epochs]

    @property
    def best_epoch(self) -> int:
        """1-based epoch with the highest validation accuracy (the first, on ties)."""
        acc = self.column("val_acc")
        return 1 + acc.index(max(acc))

    @property
    def best_val_acc(self) -> float:
        return max(self.column("val_acc"))

    @property
    def last_val_acc(self) -> float:
        return self.epochs[-1]["val_acc"]

    def summary(self) -> str:
        return (f"last epoch ({len(self.epochs)}): val acc {self.last_val_acc:.2%}; "
                f"best epoch ({self.best_epoch}): val acc {self.best_val_acc:.2%}")


# --------------------------------------------------------------------------- checkpoints
def save_checkpoint(path, model: nn.Module, meta: dict, **state) -> Path:
    """Write model weights + metadata (+ optional training state) atomically, with a checksum.

    ``meta`` must hold ``arch``, ``num_classes``, ``in_channels`` and ``image_size``
    so the model can be rebuilt; add anything else (data set, accuracy, seed, …).
    """
    for key in ("arch", "num_classes", "in_channels", "image_size"):
        if key not in meta:
            raise ValueError(f"checkpoint metadata needs {key!r}")
    model_state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return save_checked({"meta": meta, "model": model_state, **state}, path, kind="checkpoint")


def load_checkpoint(path, arch: str | None = None, device=None) -> tuple[nn.Module, dict]:
    """Rebuild the model saved at ``path``; return ``(model in eval mode, meta)``.

    Raises:
        FileNotFoundError: no file there.
        CorruptFileError: truncated or altered file.
        ValueError: the checkpoint holds another architecture than ``arch``, or
            weights that do not fit the architecture it names.
    """
    ckpt = load_checked(path, kind="checkpoint")
    meta = ckpt["meta"]
    if arch is not None and meta["arch"] != arch:
        raise ValueError(f"{path} holds a {meta['arch']!r} model, not {arch!r}")
    model = build_model(meta["arch"], meta["num_classes"], meta["in_channels"], meta["image_size"])
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise ValueError(f"weights in {path} do not fit a {meta['arch']!r} model: {e}") from e
    return model.to(device or "cpu").eval(), meta


def weights_fingerprint(model: nn.Module) -> str:
    """SHA-256 (first 16 hex digits) of the model's state dict: names, shapes, dtypes and values.

    Two models with the same fingerprint compute the same function; a distilled run
    records its teacher's, so a student is never reused with a teacher it did not learn from.
    """
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- the loop
class LossNotFiniteError(FloatingPointError):
    """The training loss became NaN or infinite."""


class CheckpointMismatch(ValueError):
    """A checkpoint on disk belongs to another run (model, data, profile, seed or settings)."""


def fit(model: nn.Module, train_loader: DeviceLoader, val_loader: DeviceLoader, cfg: TrainConfig,
        loss_fn=None, checkpoint=None, meta: dict | None = None, progress: bool = True,
        desc: str = "training") -> History:
    """Train ``model`` for ``cfg.epochs`` epochs; validate after each; checkpoint each epoch.

    Args:
        loss_fn: ``(logits (B, C), batch) → scalar``; default: cross-entropy with
            ``cfg.label_smoothing``.
        checkpoint: a path. If a checkpoint of the *same run* (same ``meta`` and
            ``cfg``) is there, training resumes after its last finished epoch (and
            does nothing if it had finished). It is rewritten atomically after each
            epoch, so an interrupted run loses at most the epoch in progress.
        meta: what the run is (``arch``, data set, …), stored in the checkpoint.
    Returns:
        the :class:`History`; the model holds the weights of the last epoch.
    """
    device = train_loader.device
    loss_fn = loss_fn or hard_label_loss(cfg.label_smoothing)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick the fastest kernels
    model.to(device)
    optimizer = make_optimizer(model, cfg)
    steps_per_epoch, history, start = len(train_loader), History(), 0
    total = cfg.epochs * steps_per_epoch
    run_id = {"meta": meta or {}, "config": asdict(cfg)}
    if checkpoint is not None and Path(checkpoint).exists():
        start = _resume(checkpoint, run_id, model, optimizer, history)
        done = "already complete: loaded, not retrained" if start == cfg.epochs else "resuming"
        print(f"checkpoint {checkpoint}: {start}/{cfg.epochs} epochs done, {done}")
    bar = tqdm(total=total, initial=start * steps_per_epoch, desc=desc, disable=not progress, leave=False)
    for epoch in range(start, cfg.epochs):
        record = _train_epoch(model, train_loader, optimizer, loss_fn, cfg, epoch, total, bar)
        val_logits, val_labels = predict(model, val_loader)
        record["val_loss"] = cross_entropy(val_logits, val_labels, check=False).item()
        record["val_acc"] = accuracy(val_logits, val_labels)
        history.epochs.append(record)
        bar.set_postfix(epoch=epoch + 1, loss=f"{record['train_loss']:.3f}", val_acc=f"{record['val_acc']:.3f}")
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, {**run_id["meta"], **history_meta(history)}, run=run_id,
                            history=history.epochs, optimizer=optimizer.state_dict(),
                            rng=torch.get_rng_state(), epochs_done=epoch + 1)
    bar.close()
    return history


def history_meta(history: History) -> dict:
    """What a finished run records about itself: accuracies, best epoch, epochs done, versions."""
    return {"val_acc": history.last_val_acc, "best_val_acc": history.best_val_acc,
            "best_epoch": history.best_epoch, "epochs_done": len(history.epochs), "versions": versions()}


def _resume(path, run_id: dict, model, optimizer, history: History) -> int:
    ckpt = load_checked(path, kind="checkpoint")
    if ckpt.get("run") != run_id:
        raise CheckpointMismatch(
            f"{path} is a checkpoint of a different run (other model, data, profile, seed or settings); "
            "delete it or choose another path to start afresh"
        )
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:  # same run description, other weights: written by another code version
        raise CheckpointMismatch(f"weights in {path} do not fit this model ({e}); delete the file to start afresh") from e
    optimizer.load_state_dict(ckpt["optimizer"])
    torch.set_rng_state(ckpt["rng"])
    history.epochs.extend(ckpt["history"])
    return ckpt["epochs_done"]


def _train_epoch(model, loader: DeviceLoader, optimizer, loss_fn, cfg: TrainConfig, epoch: int,
                 total: int, bar) -> dict:
    """One pass over ``loader``. Sums stay on the device; the host looks every few steps."""
    model.train()
    loader.set_epoch(epoch)
    device = loader.device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen, step0 = 0, epoch * len(loader)
    sync(device)
    t0 = time.perf_counter()
    for i, batch in enumerate(loader):
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * lr_factor(step0 + i, total, cfg)
        with autocast(device):
            logits = model(batch.images)
            loss = loss_fn(logits.float(), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        n = len(batch.labels)
        loss_sum += loss.detach() * n
        correct += (logits.argmax(dim=1) == batch.labels).sum()
        seen += n
        if i % 20 == 19 or i == len(loader) - 1:  # look at the loss: one synchronisation
            mean_loss = loss_sum.item() / seen
            if not math.isfinite(mean_loss):
                why = getattr(loss_fn, "explain_not_finite", lambda b: None)(batch)
                raise LossNotFiniteError(
                    f"the training loss became {mean_loss} in epoch {epoch + 1}, step {i + 1}: "
                    + (why or "lower the learning rate, or check the inputs and the loss function")
                )
            bar.set_postfix(epoch=epoch + 1, loss=f"{mean_loss:.3f}", acc=f"{correct.item() / seen:.3f}")
        bar.update(1)
    sync(device)
    seconds = time.perf_counter() - t0
    return {"epoch": epoch + 1, "train_loss": loss_sum.item() / seen, "train_acc": correct.item() / seen,
            "lr": optimizer.param_groups[0]["lr"], "seconds": seconds, "images_per_s": seen / seconds}


def sync(device: torch.device) -> None:
    """Wait for queued GPU work (needed before reading a clock); nothing to do on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------- one call
@dataclass
class TrainResult:
    model: nn.Module
    history: History
    meta: dict


def make_loaders(data: Dataset, batch_size: int, device=None, seed: int = 0, augment: bool = True):
    """Train (shuffled, augmented when ``augment``), validation and test loaders for ``data``."""
    device = device or default_device()
    return (DeviceLoader(data.train, batch_size, data.mean, data.std, device=device, train=True, flip=augment,
                         translate=2 if augment else 0, seed=seed),
            eval_loader(data, "val", device),
            eval_loader(data, "test", device))


def eval_loader(data: Dataset, split: str = "val", device=None, batch_size: int = 1024) -> DeviceLoader:
    """A loader over ``data.<split>`` (``"train"``, ``"val"`` or ``"test"``) in split order, not augmented."""
    return DeviceLoader(getattr(data, split), batch_size, data.mean, data.std, device=device or default_device())


def default_augment(data: Dataset) -> bool:
    """Flip + translate suit CIFAR-like 3×32×32 photos; not digits (a mirrored 3 is no 3)."""
    return data.image_shape == (3, 32, 32)


def prepare_run(arch: str, data: Dataset, cfg: TrainConfig, profile: str = "", device=None,
                augment: bool | None = None):
    """Seed, build ``arch`` and the loaders for ``data``: everything a run needs before :func:`fit`.

    The seed (``cfg.seed``) fixes the initial weights, the order and the
    augmentation, so two runs with the same seed differ only in what they then do.
    Augmentation (flip + translate) defaults to on for 3-channel 32×32 images.

    Returns:
        ``(model, train_loader, val_loader, meta)``.
    """
    device = torch.device(device) if device else default_device()
    augment = default_augment(data) if augment is None else augment
    seed_everything(cfg.seed)
    c, h, _ = data.image_shape
    model = build_model(arch, data.num_classes, c, h)
    train_loader, val_loader, _ = make_loaders(data, cfg.batch_size, device, cfg.seed, augment)
    if hasattr(model, "init_whitening"):
        model.init_whitening(train_loader.clean_images(torch.arange(min(5000, len(data.train)), device=device)).cpu())
    meta = {"arch": arch, "num_classes": data.num_classes, "in_channels": c, "image_size": h,
            "dataset": data.name, "is_standin": data.is_standin, "n_train": len(data.train),
            "data_sha256": data.fingerprint(),
            "profile": profile, "seed": cfg.seed, "augment": augment}
    return model, train_loader, val_loader, meta


def train_model(arch: str, data: Dataset, cfg: TrainConfig, checkpoint=None, profile: str = "",
                device=None, augment: bool | None = None, progress: bool = True) -> TrainResult:
    """Build ``arch`` and train it from labels on ``data`` with ``cfg`` (see :func:`prepare_run`)."""
    model, train_loader, val_loader, meta = prepare_run(arch, data, cfg, profile, device, augment)
    meta["kind"] = "trained from labels"
    history = fit(model, train_loader, val_loader, cfg, checkpoint=checkpoint, meta=meta,
                  progress=progress, desc=f"{arch} on {data.name.split(' ')[0]}")
    return TrainResult(model.eval(), history, {**meta, **history_meta(history)})


def teacher_path(profile, arch: str | None = None, seed: int = 0) -> Path:
    """Where the course keeps a teacher: ``data/checkpoints/teacher_<profile>_<arch>.pt``
    (``…_seed<k>.pt`` for a seed other than 0). Lessons 03–05 and ``python -m kdtutor
    train-teacher`` / ``distill`` all use this path by default."""
    arch = arch or profile.teacher
    return CHECKPOINT_DIR / (f"teacher_{profile.name}_{arch}" + (f"_seed{seed}" if seed else "") + ".pt")


def recovering(path, run):
    """``run()``, but if the checkpoint at ``path`` is unusable (corrupt, or from another run:
    other data, settings, teacher or code version), move it aside with a message and run again.

    Only problems with the file on disk are handled: an error raised while training
    reaches the caller, and the epochs already saved stay where they are.
    """
    try:
        return run()
    except (CorruptFileError, CheckpointMismatch) as e:
        if path is None or not Path(path).exists():
            raise
        old = move_aside(path)
        print(f"cannot use {path}: {e}\nmoved it to {old} (kept, not deleted) and training afresh")
        return run()


def get_teacher(profile, data: Dataset, retrain: bool = False, device=None, progress: bool = True) -> TrainResult:
    """The teacher of lessons 03–05: loaded from :func:`teacher_path` if a finished checkpoint
    of the same run is there, trained (or resumed) otherwise.

    A checkpoint that is corrupt or belongs to another run (other data, settings or
    code version) is moved aside to ``*.pt.old`` with a message, and the teacher is
    retrained; ``retrain=True`` does that on purpose.
    """
    path = teacher_path(profile)
    cfg = config_for(profile.teacher, profile.teacher_epochs, profile.batch_size)
    if retrain and path.exists():
        print(f"retraining: moved the old teacher to {move_aside(path)}")
    return recovering(path, lambda: train_model(profile.teacher, data, cfg, checkpoint=path, profile=profile.name,
                                                device=device, progress=progress))
