"""Lesson 03 — one training loop for teachers and students, with safe checkpoints.

The loop is plain PyTorch: for each batch, ``logits = model(images)``,
``loss = loss_fn(logits, batch)``, backward, SGD step. The loss is pluggable:
:func:`hard_label_loss` for training from labels, or a distillation loss from
``kdtutor.images.distill`` — both take ``(logits (B, C), batch)`` and return a scalar.

Precision follows the device (:mod:`kdtutor.precision`): bf16 autocast on GPUs of
compute capability ≥ 8.0, fp16 with loss scaling on older ones, float32 on the CPU;
channels-last memory on CUDA. Evaluation (:func:`predict`) always runs in float32.
Recipes live in :mod:`kdtutor.images.recipes`, checkpoints in :mod:`kdtutor.checkpoints`,
airbench94's extras in :mod:`kdtutor.images.airbench`, predictions in :mod:`kdtutor.images.predict`, the
per-epoch record in :mod:`kdtutor.images.history`; their public names are importable from here.
"""

from __future__ import annotations

import math
import platform
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from kdtutor import __version__
from kdtutor.checkpoints import CheckpointMismatch, check_writable, model_code, resume_state, save_checkpoint
from kdtutor.fingerprint import code_fingerprint, code_key, digest, weights_fingerprint
from kdtutor.images.airbench import AirbenchExtras, init_for
from kdtutor.images.history import History
from kdtutor.images.loader import Batch, DeviceLoader
from kdtutor.images.models import ModelSpec, check_output, make_model, model_label
from kdtutor.images.predict import split_metrics
from kdtutor.images.recipes import (TrainConfig, config_for, config_identity, lr_factor, make_optimizer)
from kdtutor.images.splits import Dataset, Split
from kdtutor.kd.losses import cross_entropy
from kdtutor.precision import (Stopwatch, autocast, determinism, grad_scaler, place,
                               resolve_amp)
from kdtutor.scale import distributed
from kdtutor.storage import CHECKPOINT_DIR, CorruptFileError, load_checked, move_aside


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


def hard_label_loss(label_smoothing: float = 0.0):
    """The loss for training from labels: ``loss_fn(logits (B, C), batch) → CE`` (batch mean)."""

    def loss_fn(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return cross_entropy(logits, batch.labels, label_smoothing=label_smoothing, check=False)

    return loss_fn


# --------------------------------------------------------------------------- the loop
class LossNotFiniteError(FloatingPointError):
    """The training loss became NaN or infinite."""


def fit(model: nn.Module, train_loader: DeviceLoader, val_loader: DeviceLoader | None, cfg: TrainConfig,
        loss_fn=None, checkpoint=None, meta: dict | None = None, progress: bool = True,
        desc: str = "training", probes: dict | None = None) -> History:
    """Lesson 03's loop for ``cfg.epochs`` epochs: for each batch, set the scheduled learning rate
    (:func:`~kdtutor.images.recipes.lr_factor`), one :func:`train_step`; then validate, checkpoint,
    show progress. Returns the :class:`History`; the model keeps the last epoch's weights.

    Args:
        val_loader: validated every ``cfg.val_every`` epochs and after the last; None: no validation.
        loss_fn: ``(logits (B, C), batch) → scalar``; default: cross-entropy with ``cfg.label_smoothing``.
        checkpoint: a path, rewritten atomically every ``cfg.checkpoint_every`` epochs and after the last.
            A checkpoint of the *same run* there (same ``meta`` and
            :func:`~kdtutor.images.recipes.config_identity` of ``cfg``) is resumed (finished: not retrained).
        meta: what the run is (``arch``, data set, …), stored in the checkpoint.
        probes: ``{name: loader}`` measured after every epoch as ``<name>_acc`` (lesson 06 shows what
            choosing an epoch on the test split does; never choose anything with it).
    Under ``torchrun`` it runs data-parallel (:class:`kdtutor.scale.distributed.DataParallel`; ``cfg.batch_size``
    is the global batch); airbench94's extras run where ``cfg`` asks (:class:`~kdtutor.images.airbench.AirbenchExtras`).
    Raises ValueError (no full batch; a loader sharded for other processes) or :class:`LossNotFiniteError`.
    """
    device, steps = train_loader.device, len(train_loader)
    parallel, total = distributed.DataParallel(place(model, device), train_loader), cfg.epochs * steps
    if steps == 0:
        raise ValueError(f"the training loader has {train_loader.num_examples} images, fewer than one batch of "
                         f"{train_loader.batch_size}: use a smaller batch size")
    loss_fn, amp = loss_fn or hard_label_loss(cfg.label_smoothing), resolve_amp(device, cfg.amp)
    extras = AirbenchExtras(model, cfg, total, steps)  # Lookahead and the whitening freeze: where cfg asks
    optimizer, scaler = make_optimizer(model, cfg), grad_scaler(device, amp)
    run_id, history = {"meta": meta or {}, "config": config_identity(cfg),
                       "code": digest(code_key(model, loss_fn), code_fingerprint(__name__))}, History()  # an edit retrains
    start = _resume(checkpoint, run_id, model, optimizer, scaler, history, cfg.epochs, extras, parallel.main)
    if start < cfg.epochs and parallel.main:
        check_writable(checkpoint)  # a finished checkpoint loads from a read-only folder; training there is refused
    bar = tqdm(total=total, initial=start * steps, desc=desc, disable=not (progress and parallel.main),
               leave=True)  # the finished bar stays: how long the run took
    with determinism(device, cfg.deterministic):
        for epoch in range(start, cfg.epochs):
            extras.start_epoch(epoch)
            step_model = parallel.step_model().train()
            train_loader.set_epoch(epoch)
            sums = EpochSums(device)
            for i, batch in enumerate(train_loader):
                for group in optimizer.param_groups:
                    group["lr"] = group["base_lr"] * lr_factor(epoch * steps + i, total, cfg)
                share = len(batch.labels) * train_loader.world_size / train_loader.global_batch_len(i)  # 1 unless
                logits, loss = train_step(step_model, batch, loss_fn, optimizer, amp, scaler, share)  # split unevenly
                extras.after_step(epoch * steps + i + 1)
                sums.add(logits, loss, batch)
                if i % 20 == 19 or i == steps - 1:  # look at the loss: one synchronisation
                    sums.check(loss_fn, batch, epoch, i, bar)
                bar.update(1)
            extras.end_epoch()
            record, last = sums.record(epoch, optimizer), epoch + 1 == cfg.epochs
            validate = val_loader is not None and (last or (cfg.val_every and (epoch + 1) % cfg.val_every == 0))
            history.epochs.append(_measure(record, model, val_loader if validate else None, probes, bar))
            if parallel.main and checkpoint is not None and (last or (epoch + 1) % cfg.checkpoint_every == 0):
                _save(checkpoint, model, run_id, history, cfg, optimizer, scaler)
    bar.close()
    parallel.finish()
    return history


def _measure(record: dict, model, val_loader, probes: dict | None, bar) -> dict:
    """``record`` with ``val_loss``/``val_acc`` on ``val_loader`` (if not None) and ``<name>_acc`` per probe."""
    if val_loader is not None:
        record["val_loss"], record["val_acc"] = split_metrics(model, val_loader)
        bar.set_postfix(epoch=record["epoch"], loss=f"{record['train_loss']:.3f}", val_acc=f"{record['val_acc']:.3f}")
    record.update({f"{name}_acc": split_metrics(model, loader)[1] for name, loader in (probes or {}).items()})
    return record


def _save(path, model, run_id: dict, history: History, cfg: TrainConfig, optimizer, scaler) -> None:
    """The run's checkpoint: weights, what the run is and did, and the state to resume from."""
    save_checkpoint(path, model, {**run_id["meta"], **history_meta(history), **world_meta(cfg)}, run=run_id,
                    history=history.epochs, optimizer=optimizer.state_dict(), scaler=scaler.state_dict(),
                    rng=torch.get_rng_state(), epochs_done=len(history.epochs))


class EpochSums:
    """An epoch's running loss and accuracy for :func:`fit`, kept on the device (the host looks every
    few steps); in a data-parallel run summed over the processes at the end."""

    def __init__(self, device):
        self.device, self.loss, self.correct, self.seen = device, torch.zeros((), device=device), \
            torch.zeros((), device=device, dtype=torch.long), 0
        self.clock = Stopwatch(device).start()

    def add(self, logits: torch.Tensor, loss: torch.Tensor, batch: Batch) -> None:
        n = len(batch.labels)
        self.loss += loss.detach() * n
        self.correct += (logits.argmax(dim=1) == batch.labels).sum()
        self.seen += n

    def check(self, loss_fn, batch: Batch, epoch: int, i: int, bar) -> None:
        """Stop with :class:`LossNotFiniteError` if the mean loss is NaN/inf (asking ``loss_fn`` why, if it
        can: :meth:`kdtutor.images.distill.DistillLoss.explain_not_finite`); else show it on ``bar``."""
        mean_loss = self.loss.item() / self.seen
        if not math.isfinite(mean_loss):
            why = getattr(loss_fn, "explain_not_finite", lambda b: None)(batch)
            raise LossNotFiniteError(f"the training loss became {mean_loss} in epoch {epoch + 1}, step {i + 1}: "
                                     + (why or "lower the learning rate, or check the inputs and the loss function"))
        bar.set_postfix(epoch=epoch + 1, loss=f"{mean_loss:.3f}", acc=f"{self.correct.item() / self.seen:.3f}")

    def record(self, epoch: int, optimizer) -> dict:
        """The epoch's entry of the :class:`History` (sums over all processes)."""
        seconds = self.clock.stop()
        loss, correct, seen = distributed.all_reduce_sum(self.loss, self.correct,
                                                          torch.tensor(self.seen, device=self.device))
        seen = seen.item()
        return {"epoch": epoch + 1, "train_loss": loss.item() / seen, "train_acc": correct.item() / seen,
                "lr": optimizer.param_groups[0]["lr"], "seconds": seconds, "images_per_s": seen / seconds}


def world_meta(cfg: TrainConfig) -> dict:
    """How a run was parallelised: ``world_size`` (1 for a plain run; that of the last process group
    to write the checkpoint after a resume on another size) and ``global_batch`` (images per step)."""
    return {"world_size": distributed.world_size(), "global_batch": cfg.batch_size}


def history_meta(history: History) -> dict:
    """What a finished run records about itself: accuracies, best epoch, epochs done, versions
    (the validation entries are None for a run without validation)."""
    return {"val_acc": history.last_val_acc, "best_val_acc": history.best_val_acc,
            "best_epoch": history.best_epoch, "epochs_done": len(history.epochs), "versions": versions()}


def _resume(path, run_id: dict, model, optimizer, scaler, history: History, epochs: int, extras,
            say: bool = True) -> int:
    """Epochs already done by the run whose checkpoint is at ``path`` (0 if there is none), its state loaded."""
    if path is None or not Path(path).exists():
        return 0
    ckpt = resume_state(path, run_id, model, optimizer)
    if scaler.is_enabled() and ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])
    torch.set_rng_state(ckpt["rng"])
    history.epochs.extend(ckpt["history"])
    start = ckpt["epochs_done"]
    extras.resume(start)
    if say:
        done = "already complete: loaded, not retrained" if start == epochs else "resuming"
        print(f"checkpoint {path}: {start}/{epochs} epochs done, {done}")
    return start


def train_step(model: nn.Module, batch: Batch, loss_fn, optimizer, amp: torch.dtype | None = None,
               scaler=None, weight: float = 1.0):
    """One optimisation step, the heart of :func:`fit`: forward, loss, backward, step.

    The same four lines as lesson 04's ``kd_step``; the two extra lines are precision:
    ``autocast`` runs the forward pass in ``amp`` (bf16/fp16 on GPUs, None: float32 on CPUs),
    and ``scaler`` scales the loss for fp16 (a disabled scaler, the default, passes it
    through and just calls ``optimizer.step()``). ``weight`` multiplies the loss (a
    data-parallel run's uneven last batch, see :func:`fit`).

    Args:
        batch: ``batch.images (B, 3, H, W)``, ``batch.labels (B,) int64``.
        loss_fn: ``(logits (B, C) float32, batch) → scalar``.
    Returns:
        ``(logits (B, C), loss scalar)``, for the epoch's running sums.
    """
    with autocast(batch.images.device, amp):
        logits = model(batch.images)
        loss = loss_fn(logits.float(), batch)
    optimizer.zero_grad(set_to_none=True)
    scaler = scaler if scaler is not None else grad_scaler(batch.images.device, None)
    scaler.scale(loss if weight == 1 else loss * weight).backward()
    scaler.step(optimizer)
    scaler.update()
    return logits, loss


def max_weight_difference(a: nn.Module, b: nn.Module) -> float:
    """The largest ``|a − b|`` over the parameters and buffers of two models of one architecture.

    0.0 means the same weights (e.g. a hand-written loop that makes exactly :func:`fit`'s updates,
    lesson 04). Buffers count too: BatchNorm's running statistics are part of what was learnt.

    Raises:
        ValueError: the two models do not have the same tensors (names and shapes).
    """
    sa, sb = a.state_dict(), b.state_dict()
    if sa.keys() != sb.keys() or any(sa[k].shape != sb[k].shape for k in sa):
        raise ValueError("the two models do not have the same parameters and buffers (names and shapes): "
                         "compare two models of the same architecture")
    return max((float((sa[k].double() - sb[k].to(sa[k].device).double()).abs().max()) for k in sa if sa[k].numel()),
               default=0.0)


# --------------------------------------------------------------------------- one call
@dataclass
class TrainResult:
    model: nn.Module
    history: History
    meta: dict


def make_train_loader(data: Dataset, cfg: TrainConfig, device=None, augment: bool = True) -> DeviceLoader:
    """The shuffled training loader of a run with ``cfg``: its batch size, seed, ``drop_last``
    and flip scheme; flip + translate by ``cfg.translate`` pixels when ``augment``. In a data-parallel run
    it yields this process's piece of each global batch of ``cfg.batch_size``."""
    return DeviceLoader(data.train, cfg.batch_size, data.mean, data.std, device=device or default_device(),
                        train=True, flip=augment, translate=cfg.translate if augment else 0, seed=cfg.seed,
                        drop_last=cfg.drop_last, alternate_flip=getattr(cfg, "alternate_flip", False),
                        world_size=distributed.world_size(), rank=distributed.rank())


def make_loaders(data: Dataset, batch_size: int, device=None, seed: int = 0, augment: bool = True,
                 drop_last: bool = True, alternate_flip: bool = False):
    """Train (shuffled, augmented when ``augment``, without the last partial batch when
    ``drop_last``), validation and test loaders for ``data``."""
    device = device or default_device()
    return (DeviceLoader(data.train, batch_size, data.mean, data.std, device=device, train=True, flip=augment,
                         translate=2 if augment else 0, seed=seed, drop_last=drop_last, alternate_flip=alternate_flip),
            eval_loader(data, "val", device),
            eval_loader(data, "test", device))


def eval_loader(data: Dataset, split: str = "val", device=None, batch_size: int = 1024) -> DeviceLoader:
    """A loader over ``data.<split>`` (``"train"``, ``"val"`` or ``"test"``) in split order, not augmented."""
    return DeviceLoader(getattr(data, split), batch_size, data.mean, data.std, device=device or default_device())


def default_augment(data: Dataset) -> bool:
    """Flip + translate suit CIFAR-like 3×32×32 photos; not digits (a mirrored 3 is no 3)."""
    return data.image_shape == (3, 32, 32)


def with_val_in_train(data: Dataset) -> Dataset:
    """``data`` with the validation images appended to the training split (and none left for validation)."""
    train = Split(torch.cat([data.train.images, data.val.images]), torch.cat([data.train.labels, data.val.labels]))
    empty = Split(data.val.images[:0], data.val.labels[:0])
    return Dataset(data.name, data.classes, train, empty, data.test, data.is_standin, data.source)


def prepare_run(arch: ModelSpec, data: Dataset, cfg: TrainConfig, profile_name: str = "", device=None,
                augment: bool | None = None):
    """Seed, build ``arch`` and the loaders for ``data``: everything a run needs before :func:`fit`.

    ``arch``: a model name, your constructor ``seed → nn.Module`` or an ``nn.Module``
    (:func:`kdtutor.images.models.make_model`); your own model is first run on a few training images
    (:func:`~kdtutor.images.models.check_output`), and its starting weights' fingerprint joins the run's
    identity (``meta["init_sha256"]``), so a checkpoint of another model of the same label is not resumed.
    The seed (``cfg.seed``) fixes the initial weights, the order and the
    augmentation, so two runs with the same seed differ only in what they then do.
    Augmentation (flip + translate) defaults to on for 3-channel 32×32 images.
    With ``cfg.train_on_val`` the run trains on training + validation images and the
    validation loader is None.

    Under ``torchrun`` it first joins the process group (:func:`kdtutor.scale.distributed.init_from_env`;
    ``cuda`` becomes this process's GPU) and the training loader is sharded.

    Returns:
        ``(model, train_loader, val_loader, meta)``.
    """
    device = distributed.local_device(device or default_device())
    distributed.init_from_env(device)
    augment = default_augment(data) if augment is None else augment
    seed_everything(cfg.seed)
    c, h, _ = data.image_shape
    model = init_for(make_model(arch, cfg.seed, data.num_classes, c, h), cfg)  # airbench's, where cfg asks
    train_data = with_val_in_train(data) if cfg.train_on_val else data
    train_loader = make_train_loader(train_data, cfg, device, augment)
    val_loader = None if cfg.train_on_val else eval_loader(data, "val", device)
    if hasattr(model, "init_whitening"):
        n = min(5000, train_loader.num_examples)
        model.init_whitening(train_loader.clean_images(torch.arange(n, device=device)).cpu())
    meta = {"arch": model_label(arch), "num_classes": data.num_classes, "in_channels": c, "image_size": h,
            "dataset": data.name, "is_standin": data.is_standin, "n_train": len(train_data.train),
            "data_sha256": data.fingerprint(),
            "profile": profile_name, "seed": cfg.seed, "augment": augment}
    if not isinstance(arch, str):
        check_output(place(model, device), train_loader.clean_images(torch.arange(min(8, train_loader.num_examples),
                     device=device)), data.num_classes, f"the model {meta['arch']}")
        meta["init_sha256"] = weights_fingerprint(model)
    return model, train_loader, val_loader, meta


def train_model(arch: ModelSpec, data: Dataset, cfg: TrainConfig, checkpoint=None, profile_name: str = "",
                device=None, augment: bool | None = None, progress: bool = True) -> TrainResult:
    """Build ``arch`` (a name, a constructor or a module) and train it from labels on ``data`` with
    ``cfg`` (see :func:`prepare_run`)."""
    model, train_loader, val_loader, meta = prepare_run(arch, data, cfg, profile_name, device, augment)
    meta["kind"] = "trained from labels"
    history = fit(model, train_loader, val_loader, cfg, checkpoint=checkpoint, meta=meta,
                  progress=progress, desc=f"{meta['arch']} on {data.name.split(' ')[0]}")
    return TrainResult(model.eval(), history, {**meta, **history_meta(history), **world_meta(cfg)})


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
    return recovering(path, lambda: train_model(profile.teacher, data, cfg, checkpoint=path, profile_name=profile.name,
                                                device=device, progress=progress))


def load_checkpoint(path, arch: ModelSpec | None = None, device=None) -> tuple[nn.Module, dict]:
    """Rebuild the model saved at ``path``; return ``(model in eval mode, meta)``.

    ``arch``: None (rebuild the name the checkpoint records), a name (which must be that one), or
    your own constructor ``seed → nn.Module`` / ``nn.Module`` (for a run of your own model: its
    label must match and the weights are loaded into a fresh one).

    The model is on ``device`` (default: the CPU), channels-last on CUDA, as the
    training loop keeps it there.

    Raises:
        FileNotFoundError: no file there.
        CorruptFileError: truncated or altered file.
        CheckpointMismatch: the model was made by other code than this kdtutor's (:func:`model_code`).
        ValueError: the checkpoint holds another architecture than ``arch``, or
            weights that do not fit the architecture it names.
    """
    ckpt = load_checked(path, kind="checkpoint")
    meta = ckpt["meta"]
    if arch is not None and meta["arch"] != model_label(arch):
        raise ValueError(f"{path} holds a {meta['arch']!r} model, not {model_label(arch)!r}")
    with torch.random.fork_rng(devices=[]):  # make_model seeds the generator: leave the caller's alone
        model = make_model(meta["arch"] if arch is None else arch, 0, meta["num_classes"], meta["in_channels"],
                      meta["image_size"])
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise ValueError(f"weights in {path} do not fit a {meta['arch']!r} model: {e}") from e
    if meta.get("model_code") != model_code(model):
        raise CheckpointMismatch(f"{path} holds a {meta['arch']!r} model made by other code than this kdtutor's "
                                 "(its model code differs, or it records none: an older kdtutor), so it would not "
                                 "compute what it computed when trained: train it again (into a new file)")
    return place(model, device or "cpu").eval(), meta
