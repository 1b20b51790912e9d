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
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from kdtutor.fingerprint import weights_fingerprint
from kdtutor.images.hints import FeatureHook
from kdtutor.storage import load_checked, written_by_kdtutor
from kdtutor.images.loader import Batch, DeviceLoader
from kdtutor.images.metrics import top1_accuracy
from kdtutor.images.models import MODELS, ModelSpec, check_output, make_model, model_label
from kdtutor.images.predict import cached_predict, predict
from kdtutor.images.recipes import TrainConfig
from kdtutor.images.splits import Dataset, Split
from kdtutor.images.stats import PairedDifference, paired_seed_difference, verdict_sentence
from kdtutor.images.train import (TrainResult, default_augment, default_device, eval_loader, fit, history_meta,
                                  make_train_loader, prepare_run, recovering, train_model, world_meta)
from kdtutor.kd.losses import check_alpha, distillation_loss
from kdtutor.kd.softmax import check_temperature
from kdtutor.precision import autocast, full_precision, place
from kdtutor.scale import distributed

MODES = ("online", "cached", "fixed")
FLIPS = "flips"  # TeacherLogits' key of the two mirror views of every example


def freeze(teacher: nn.Module) -> nn.Module:
    """Put ``teacher`` in eval mode and switch off its gradients; returns it."""
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def load_teacher(arch: ModelSpec, weights, data: Dataset, device=None) -> nn.Module:
    """Your teacher, from its architecture and a weights file, checked against ``data`` and frozen.

    Args:
        arch: your constructor ``seed → nn.Module`` (or an ``nn.Module`` to copy), a kdtutor model
            name, or the name of a torchvision classification architecture (``"resnet18"``,
            ``"mobilenet_v3_small"``, …: built with ``num_classes = data.num_classes``, no download).
        weights: a file holding the ``state_dict`` (``torch.save(model.state_dict(), f)``; a dict with
            the weights under ``"state_dict"`` or ``"model"`` works too), or a checkpoint kdtutor wrote.
        data: the data the students will learn on: the teacher is run on a few of its validation
            images (:func:`~kdtutor.images.models.check_output`) before anything trains.
    Returns:
        the teacher on ``device`` (default: the one runs use), in eval mode, without gradients.
    Raises:
        FileNotFoundError: no file at ``weights``.
        ValueError: an unknown architecture; weights that do not fit it (e.g. another number of
            classes: the message names the layer and both shapes); a teacher that cannot run on the
            data's images or does not give ``(B, number of classes)`` logits.
    """
    weights = Path(weights).expanduser()
    if not weights.is_file():
        raise FileNotFoundError(f"no teacher weights at {weights}")
    c, h, w = data.image_shape
    label = arch if isinstance(arch, str) else model_label(arch)
    if isinstance(arch, str) and arch not in MODELS:
        arch = _torchvision_constructor(arch, data.num_classes)
    teacher = make_model(arch, 0, data.num_classes, c, h)
    if written_by_kdtutor(weights, "checkpoint"):
        state = load_checked(weights, kind="checkpoint")["model"]
    else:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and not any(torch.is_tensor(v) for v in state.values()):
            state = state.get("state_dict", state.get("model", state))
    if not isinstance(state, dict):
        raise ValueError(f"{weights} holds a {type(state).__name__}, not a state_dict: save the teacher with "
                         "torch.save(model.state_dict(), path)")
    try:
        teacher.load_state_dict(state)
    except RuntimeError as e:
        why = str(e).strip().rstrip(".")
        raise ValueError(f"the weights in {weights} do not fit {label} built for {data.num_classes} classes of "
                         f"{c}×{h}×{w} images ({data.name}): {why}. A teacher must have been trained on this "
                         "data's classes, with this architecture") from e
    device = torch.device(device) if device else default_device()
    teacher = place(freeze(teacher), device)
    images = eval_loader(data, "val" if len(data.val) else "train", device)
    check_output(teacher, images.clean_images(torch.arange(min(8, images.num_examples), device=images.device)),
                 data.num_classes, f"the teacher {label}")
    return teacher


def _torchvision_constructor(name: str, num_classes: int):
    """``seed → torchvision.models.get_model(name, num_classes=…)`` with random weights (no download)."""
    import torchvision

    known = torchvision.models.list_models(module=torchvision.models)
    if name not in known:
        raise ValueError(f"unknown architecture {name!r}: not a kdtutor model ({', '.join(MODELS)}) nor a "
                         f"torchvision classification model (e.g. {', '.join(known[:6])}, …); or pass your "
                         "own constructor")
    return lambda seed: torchvision.models.get_model(name, weights=None, num_classes=num_classes)


@torch.no_grad()
def teacher_forward(teacher: nn.Module, images: torch.Tensor, amp: bool = True) -> torch.Tensor:
    """Logits ``(B, C) float32`` of the frozen teacher on ``images (B, C_in, H, W)``.

    ``amp=True`` (training targets): under the device's training autocast
    (:func:`kdtutor.precision.amp_dtype`: bf16 or fp16 on CUDA, none on the CPU), as fast
    as the student's own forward pass. ``amp=False`` (evaluation): in float32, no TF32.
    """
    if amp:
        with autocast(images.device):
            return teacher(images).float()
    with full_precision(images.device):
        return teacher(images).float()


@torch.no_grad()
def all_teacher_logits(teacher: nn.Module, loader: DeviceLoader, view: str = "clean", batch_size: int = 1024,
                       amp: bool = False) -> torch.Tensor:
    """The teacher's logits ``(N, C) float32`` for every example of ``loader``, in split order.

    ``view="clean"``: the un-augmented images; ``"epoch"``: this epoch's augmented
    views. Computed ``batch_size`` images at a time, so memory stays bounded whatever N is.
    In float32 by default (for evaluation); ``amp=True`` computes them as training
    targets, in the same precision as the online teacher (:func:`teacher_forward`).

    In a data-parallel run the processes share the work: process r computes chunks
    r, r + W, … and a sum over processes (of zeros elsewhere: exact) gives every
    process all N rows.
    """
    if view not in ("clean", "epoch"):
        raise ValueError(f"view must be 'clean' or 'epoch', got {view!r}")
    images = loader.clean_images if view == "clean" else loader.view_images
    idx = torch.arange(loader.num_examples, device=loader.device)
    starts = range(0, loader.num_examples, batch_size)
    if not distributed.active():
        return torch.cat([teacher_forward(teacher, images(idx[i:i + batch_size]), amp=amp) for i in starts])
    out = None
    for k, i in enumerate(starts):
        if k % distributed.world_size() == distributed.rank():
            z = teacher_forward(teacher, images(idx[i:i + batch_size]), amp=amp)
            out = out if out is not None else torch.zeros(loader.num_examples, z.shape[1], device=z.device)
            out[i:i + batch_size] = z
    if out is None:  # fewer chunks than processes: learn the width from one row
        out = torch.zeros(loader.num_examples, teacher_forward(teacher, images(idx[:1]), amp=amp).shape[1],
                          device=loader.device)
    return distributed.all_reduce_sum(out)[0]


@torch.no_grad()
def flip_logits(teacher: nn.Module, images: torch.Tensor, chunk: int = 1000) -> torch.Tensor:
    """``(2, N, C) float32``: the frozen teacher's logits (as training targets) for each of ``images
    (N, C_in, H, W)`` (normalised) as it is ``[0]`` and mirrored left–right ``[1]`` — every view a student whose
    only augmentation is a random mirror can see, so a run of any length needs the teacher 2N times."""
    teacher = freeze(teacher)
    views = [[], []]
    for i in range(0, len(images), chunk):
        x = images[i:i + chunk]
        views[0].append(teacher_forward(teacher, x))
        views[1].append(teacher_forward(teacher, x.flip(-1)))
    return torch.stack([torch.cat(v) for v in views])


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
    """The frozen teacher's outputs for each training batch — the one teacher-output cache of the image
    lessons (lesson 04's runs and sweep, lesson 06's methods) — in one of three modes.

    * ``"online"``: run the frozen teacher on the student's (augmented) batch.
    * ``"cached"``: the same numbers, computed once per epoch-view (the loader's
      :meth:`~kdtutor.images.loader.DeviceLoader.view_key`: seed, epoch, augmentation, mixup) for all
      examples and looked up by ``batch.index``; runs with the same data seed (a sweep, the methods of
      one seed) reuse them instead of running the teacher again. When the only augmentation is a random
      mirror (``translate=0``), an image has two views whatever the epoch: both are computed once
      (:func:`flip_logits`) and every epoch of every seed is served from them.
    * ``"fixed"``: logits of the *clean* images, computed once, while the student
      sees augmented views — the "fixed teacher" that Beyer et al. (2022) show
      to be worse. For the consistency lab only.

    With ``layer`` (cached or fixed modes) the teacher's features at that sub-module, ``(N, D, H, W)``,
    are kept beside the logits (:meth:`features`, for FitNets). One instance serves one split: a run
    binds its loader with :meth:`attach` (or at construction). Cached and fixed outputs are
    spot-checked against the teacher on the first batch of each view (fixed: of each epoch).
    """

    def __init__(self, teacher: nn.Module, loader: DeviceLoader | None = None, mode: str = "online",
                 layer: str | None = None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if layer is not None and mode == "online":
            raise ValueError("teacher features (layer) are kept per view: use mode 'cached' or 'fixed'")
        self.teacher, self.loader, self.mode, self.layer = freeze(teacher), None, mode, layer
        self.cache: dict = {}  # view key → (N, C) logits
        self.feature_cache: dict = {}  # view key → (N, D, H, W) features at ``layer``
        self._checked: set = set()
        if loader is not None:
            self.attach(loader)

    def attach(self, loader: DeviceLoader) -> None:
        """Serve batches of ``loader``: the first one, or another loader over the same split (a new run of a
        sweep, or the next seed of a comparison). Its views may differ (mixup): they are cached under their own
        keys. With another seed the cached views of the old one can never be asked for again and are dropped;
        only the two mirror views (:func:`flip_logits`), which do not depend on the seed, are kept.

        Raises:
            ValueError: another split (make another :class:`TeacherLogits` for other data).
        """
        old = self.loader
        if old is not None and (loader.num_examples != old.num_examples or not (
                loader.images is old.images or torch.equal(loader.images, old.images))):
            raise ValueError("cached teacher outputs serve one split: make another TeacherLogits for other data")
        if old is not None and loader.seed != old.seed:
            self.cache = {k: v for k, v in self.cache.items() if k == FLIPS}
            self.feature_cache = {k: v for k, v in self.feature_cache.items() if k == FLIPS}
            self._checked.clear()
        self.teacher = place(self.teacher, loader.device)
        self.loader = loader

    def clear(self) -> None:
        """Forget every cached view (e.g. after the last run that needs them)."""
        self.cache.clear()
        self.feature_cache.clear()
        self._checked.clear()

    def _all_logits(self, key) -> torch.Tensor:
        """Teacher logits for every example of the loader, for the view named ``key`` (and, with a
        ``layer``, its features): ``(N, C)``, or ``(2, N, C)`` for the two mirror views (``key == FLIPS``)."""
        if key not in self.cache:
            view = "clean" if key == "clean" else "mirror" if key == FLIPS else "epoch"
            if self.layer is None and key == FLIPS:
                idx = torch.arange(self.loader.num_examples, device=self.loader.device)
                self.cache[key] = flip_logits(self.teacher, self.loader.clean_images(idx))
            elif self.layer is None:  # training targets: as the online teacher computes them
                self.cache[key] = all_teacher_logits(self.teacher, self.loader, view, amp=True)
            else:
                self.cache[key], self.feature_cache[key] = _logits_and_features(self.teacher, self.loader, view,
                                                                               self.layer)
        return self.cache[key]

    def _flip_only(self) -> bool:
        """Whether the loader's views are the images and their mirrors only (no shift, no mixup)."""
        key = self.loader.view_key()
        return self.mode == "cached" and key is not None and key[0] == "views" and key[-1] == 0

    def _lookup(self, table: torch.Tensor, key, index: torch.Tensor) -> torch.Tensor:
        """Rows ``index`` of a cached table: by mirror flag for the two-view table."""
        if key != FLIPS:
            return table[index]
        flip = self.loader.view_params()[1][index]
        return table[flip.long(), index]

    def _key(self, batch: Batch):
        if self.loader is None:
            raise ValueError("no loader attached: call attach(loader) with the run's training loader first")
        if self.mode == "fixed":
            return "clean"
        if batch.view != self.loader.view_key():
            raise CachedLogitsMismatch(f"batch of view {batch.view} served while the loader is at {self.loader.view_key()}")
        if self._flip_only():
            return FLIPS
        return batch.view if batch.view is not None else "clean"

    def __call__(self, batch: Batch) -> torch.Tensor:
        """``(B, C)`` teacher logits for ``batch`` (no gradients)."""
        if self.mode == "online":
            return teacher_forward(self.teacher, batch.images)
        key = self._key(batch)
        logits = self._lookup(self._all_logits(key), key, batch.index)
        check = batch.view if self.mode == "cached" else self.loader.epoch
        if check not in self._checked:
            images = batch.images if self.mode == "cached" else self.loader.clean_images(batch.index)
            check_cached_logits(self.teacher, images, logits)
            self._checked.add(check)
        return logits

    def features(self, batch: Batch) -> torch.Tensor:
        """``(B, D, H, W)`` teacher features at ``layer`` for ``batch``'s view (the same view as its logits)."""
        if self.layer is None:
            raise ValueError("no teacher features: build the TeacherLogits with a layer")
        key = self._key(batch)
        self._all_logits(key)
        return self._lookup(self.feature_cache[key], key, batch.index)


@torch.no_grad()
def _logits_and_features(teacher: nn.Module, loader: DeviceLoader, view: str, layer: str, chunk: int = 1000):
    """``(logits (N, C) float32, features at layer (N, D, H, W) float32)`` of the teacher on every example's
    ``view`` (``"clean"`` or ``"epoch"``), ``chunk`` images at a time, as training targets (autocast);
    ``"mirror"``: both mirror views, ``(2, N, C)`` and ``(2, N, D, H, W)``."""
    if view == "mirror":
        pairs = [_logits_and_features(teacher, loader, v, layer, chunk) for v in ("clean", "flipped")]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
    images = {"clean": loader.clean_images, "epoch": loader.view_images,
              "flipped": lambda i: loader.clean_images(i).flip(-1)}[view]
    idx = torch.arange(loader.num_examples, device=loader.device)
    logits, feats = [], []
    with FeatureHook(teacher, layer) as hook:
        for i in range(0, len(idx), chunk):
            logits.append(teacher_forward(teacher, images(idx[i:i + chunk])))
            feats.append(hook.take().float())
    return torch.cat(logits), torch.cat(feats)


class DistillLoss:
    """``loss_fn(logits, batch)`` for :func:`kdtutor.images.train.fit`: the combined KD loss.

    ``(1 − α)·CE(labels, student) + α·T²·KL(teacher ‖ student)`` at temperature T.
    """

    def __init__(self, teacher_logits: TeacherLogits, T: float = 4.0, alpha: float = 0.9, label_smoothing: float = 0.0):
        self.teacher_logits, self.T, self.alpha = teacher_logits, check_temperature(T), check_alpha(alpha)
        self.label_smoothing = label_smoothing

    def __call__(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return distillation_loss(logits, self.teacher_logits(batch), batch.labels, self.T, self.alpha,
                                 label_smoothing=self.label_smoothing, check=False)

    def explain_not_finite(self, batch: Batch) -> str | None:
        """Called by the training loop when the loss is NaN/inf: is the teacher to blame?"""
        z = self.teacher_logits(batch)
        if not torch.isfinite(z).all():
            return (f"the teacher's logits are not finite ({int((~torch.isfinite(z)).sum())} NaN/inf values in this "
                    "batch): the teacher checkpoint is broken, so lowering the student's learning rate will not help")
        return None


# --------------------------------------------------------------------------- runs
def distill_student(teacher: nn.Module, arch: ModelSpec, data: Dataset, cfg: TrainConfig, T: float = 4.0,
                    alpha: float = 0.9, mode: str = "online", augment: bool | None = None,
                    teacher_logits: TeacherLogits | None = None, device=None, checkpoint=None,
                    profile_name: str = "", progress: bool = True) -> TrainResult:
    """Train student ``arch`` on ``data`` with the KD loss from a frozen ``teacher``.

    ``teacher``: any ``nn.Module`` giving ``(B, num_classes)`` logits (frozen here: eval mode, no
    gradients); the run records its weights' fingerprint. ``arch``: a model name, your
    constructor ``seed → nn.Module``, or an ``nn.Module`` (:func:`kdtutor.images.models.make_model`).

    Everything but the loss is as in :func:`kdtutor.images.train.train_model` with the same
    ``cfg`` (same seed → same initial weights, order and augmentation). Pass
    ``teacher_logits`` (mode ``"cached"``) to share teacher outputs between runs
    with the same seed, as in a sweep.
    """
    model, train_loader, val_loader, meta = prepare_run(arch, data, cfg, profile_name, device, augment)
    if teacher_logits is None:
        teacher_logits = TeacherLogits(teacher, train_loader, mode)
    else:
        teacher_logits.attach(train_loader)
    meta.update({"kind": "distilled", "T": T, "alpha": alpha, "teacher_mode": teacher_logits.mode,
                 "teacher_sha256": weights_fingerprint(teacher)})
    history = fit(model, train_loader, val_loader, cfg, loss_fn=DistillLoss(teacher_logits, T, alpha, cfg.label_smoothing),
                  checkpoint=checkpoint, meta=meta, progress=progress,
                  desc=f"{meta['arch']} ← KD T={T:g} α={alpha:g}")
    return TrainResult(model.eval(), history, {**meta, **history_meta(history), **world_meta(cfg)})


def split_accuracy(model: nn.Module, data: Dataset, split: str = "val", device=None,
                   cache: bool | str | Path = False) -> float:
    """Top-1 accuracy of ``model`` on ``data.<split>`` (``"val"`` for choices, ``"test"`` once at the end).
    With ``cache`` (True, or the folder to keep them in) the logits are
    :func:`~kdtutor.images.predict.cached_predict`'s: computed once per content of the weights and the
    split, then loaded on a re-run."""
    loader = eval_loader(data, split, device or next(model.parameters()).device)
    if not cache:
        return top1_accuracy(*predict(model, loader))
    return top1_accuracy(*cached_predict(model, loader, folder=None if cache is True else cache))


@dataclass
class Comparison:
    """Student from scratch vs distilled, same seeds: per-seed accuracies and the runs."""

    split: str
    scratch: list[float]
    distilled: list[float]
    runs: dict = field(default_factory=dict, repr=False)  # (kind, seed) → TrainResult

    @property
    def gain(self) -> float:
        """mean(distilled) − mean(scratch), as a fraction (0.05 = 5 points)."""
        return statistics.mean(self.distilled) - statistics.mean(self.scratch)

    @property
    def differences(self) -> list[float]:
        """distilled − scratch for each seed: paired, since both runs of a seed share everything but the loss."""
        return [d - s for d, s in zip(self.distilled, self.scratch)]

    @property
    def paired(self) -> PairedDifference:
        """distilled − scratch over the seeds, judged by the course's one rule (needs ≥ 2 seeds)."""
        return paired_seed_difference(self.distilled, self.scratch)

    def verdict(self, better: str = "distillation", worse: str = "training from scratch") -> str:
        """One sentence on what the paired differences show, by the course's one rule
        (:func:`kdtutor.images.stats.verdict_sentence`: a paired t-interval and the design's minimum
        detectable difference). ``better`` names the ``distilled`` arm, ``worse`` the ``scratch`` arm."""
        if len(self.differences) < 2:
            return (f"one seed ({100 * self.differences[0]:+.2f} points) cannot separate {better} from {worse}: "
                    "run more seeds")
        return verdict_sentence(self.paired, better, worse, scale=100, unit="points")

    def describe(self) -> str:
        def ms(v):
            sd = statistics.stdev(v) if len(v) > 1 else 0.0
            return f"{100 * statistics.mean(v):.2f} ± {100 * sd:.2f} %"
        diffs = self.differences
        sd = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
        wins = sum(d > 0 for d in diffs)
        return (f"{self.split} accuracy over {len(self.scratch)} seeds (mean ± std): scratch {ms(self.scratch)}, "
                f"distilled {ms(self.distilled)}; gain {100 * self.gain:+.2f} points, paired differences "
                f"{', '.join(f'{100 * d:+.2f}' for d in diffs)} (std {100 * sd:.2f}); distillation won on "
                f"{wins} of {len(diffs)} seeds")


def compare_scratch_vs_kd(teacher: nn.Module, arch: ModelSpec, data: Dataset, make_cfg, seeds, T: float = 4.0,
                          alpha: float = 0.9, split: str = "val", device=None, progress: bool = True,
                          checkpoint_dir=None, augment: bool | None = None, profile_name: str = "") -> Comparison:
    """Train ``arch`` from scratch and by distillation for each seed; compare accuracies on ``split``.

    ``arch``: a model name, your constructor ``seed → nn.Module`` (both runs of a seed get
    ``arch(seed)``'s weights) or an ``nn.Module`` (every run starts from a copy of it).

    ``make_cfg(seed)`` gives the :class:`TrainConfig` of one seed; both runs of a
    seed use it, so they share initial weights, data order, augmentation and
    schedule — the loss is the only difference. With ``checkpoint_dir`` every run
    is saved there (and loaded instead of retrained when it is already there):
    see :func:`student_paths`. A saved run that cannot be used (truncated, other
    data, or distilled from another teacher) is moved aside and trained again. The accuracies of saved
    runs are computed once (:func:`split_accuracy` with ``cache``).
    """
    result = Comparison(split, [], [])
    for seed in tqdm(list(seeds), desc="seeds", disable=not progress):
        cfg = make_cfg(seed)
        paths = student_paths(checkpoint_dir, arch, seed, T, alpha) if checkpoint_dir else (None, None)
        scratch = recovering(paths[0], lambda: train_model(arch, data, cfg, checkpoint=paths[0], device=device,
                                                           augment=augment, profile_name=profile_name, progress=False))
        kd = recovering(paths[1], lambda: distill_student(teacher, arch, data, cfg, T=T, alpha=alpha, device=device,
                                                          augment=augment, checkpoint=paths[1], profile_name=profile_name,
                                                          progress=False))
        cache = Path(checkpoint_dir) / "evaluations" if checkpoint_dir else False  # saved runs' accuracies too
        result.scratch.append(split_accuracy(scratch.model, data, split, cache=cache))
        result.distilled.append(split_accuracy(kd.model, data, split, cache=cache))
        result.runs[("scratch", seed)], result.runs[("distilled", seed)] = scratch, kd
    return result


@dataclass
class Sweep:
    """Validation accuracy of distilled students over a grid: ``val_acc[i][j]`` for
    ``temperatures[i]`` and ``alphas[j]``."""

    temperatures: list[float]
    alphas: list[float]
    val_acc: list[list[float]]
    runs: dict = field(default_factory=dict, repr=False)  # (T, alpha) → TrainResult

    @property
    def best(self) -> tuple[float, float]:
        """The ``(T, alpha)`` with the highest validation accuracy (the first, on ties)."""
        flat = [(acc, i, j) for i, row in enumerate(self.val_acc) for j, acc in enumerate(row)]
        _, i, j = max(flat, key=lambda t: (t[0], -t[1], -t[2]))
        return self.temperatures[i], self.alphas[j]


def sweep(teacher: nn.Module, arch: ModelSpec, data: Dataset, cfg: TrainConfig, temperatures, alphas, device=None,
          augment: bool | None = None, progress: bool = True, checkpoint_dir=None, profile_name: str = "") -> Sweep:
    """Distil one student per ``(T, α)`` with the same seed; choose on the validation split.

    All runs see the same views (same seed), so the teacher runs once per epoch
    view and its logits are shared through a ``"cached"`` :class:`TeacherLogits`.
    Only the chosen setting should then be evaluated on the test split. With
    ``checkpoint_dir`` every run is kept there (:func:`student_paths`) and a finished
    run of the same data, teacher, settings and code is loaded instead of retrained.
    """
    device = torch.device(device) if device else default_device()
    augment = default_augment(data) if augment is None else augment
    shared = TeacherLogits(teacher, make_train_loader(data, cfg, device, augment), "cached")
    result = Sweep(list(temperatures), list(alphas), [])
    grid = [(T, a) for T in temperatures for a in alphas]
    accs = {}
    for T, a in tqdm(grid, desc=f"sweep T×α ({len(grid)} runs)", disable=not progress):
        path = student_paths(checkpoint_dir, arch, cfg.seed, T, a, mode="cached")[1] if checkpoint_dir else None
        run = recovering(path, lambda: distill_student(teacher, arch, data, cfg, T=T, alpha=a, teacher_logits=shared,
                                                       device=device, augment=augment, progress=False,
                                                       checkpoint=path, profile_name=profile_name))
        accs[T, a] = run.history.last_val_acc
        result.runs[T, a] = run
    result.val_acc = [[accs[T, a] for a in alphas] for T in temperatures]
    return result


def fixed_teacher_students(teacher: nn.Module, arch: ModelSpec, data: Dataset, make_cfg, seeds, T: float, alpha: float,
                           device=None, checkpoint_dir=None, profile_name: str = "") -> dict:
    """``{seed: TrainResult}``: one student per seed distilled from a *fixed* teacher (its outputs on
    the clean images, whatever view the student sees); kept in ``checkpoint_dir`` like the others."""
    out = {}
    for seed in seeds:
        path = student_paths(checkpoint_dir, arch, seed, T, alpha, mode="fixed")[1] if checkpoint_dir else None
        out[seed] = recovering(path, lambda: distill_student(teacher, arch, data, make_cfg(seed), T=T, alpha=alpha,
                                                             mode="fixed", device=device, progress=False,
                                                             checkpoint=path, profile_name=profile_name))
    return out


def student_paths(checkpoint_dir, arch: ModelSpec, seed: int, T: float, alpha: float, mode: str = "online"):
    """Checkpoint paths ``(scratch, distilled)`` of one seed's pair of students; the distilled one's
    name also says how the teacher ran (``mode`` of :class:`TeacherLogits`) unless it ran online."""
    d, kd, arch = Path(checkpoint_dir), "kd" if mode == "online" else f"kd_{mode}", model_label(arch)
    return d / f"{arch}_scratch_seed{seed}.pt", d / f"{arch}_{kd}_T{T:g}_a{alpha:g}_seed{seed}.pt"


# --------------------------------------------------------------------------- a learner's loop vs the library
ROUNDING = 1e-4  # largest weight difference read as "the same up to rounding"


def loop_verdict(weight_difference: float, loop_acc: float, library_acc: float, n_val: int, steps: int) -> tuple[bool, str]:
    """Do a hand-written KD loop and :func:`distill_student` (same recipe and seed) agree? (lesson 04)

    Identical weights (the reference ``kd_step``) or a difference below :data:`ROUNDING` agree
    outright. Larger differences come from a loss computed with other rounding: SGD amplifies
    them over the steps, so the runs then agree only as two runs of one recipe, when their
    validation accuracies differ by less than twice the binomial standard error of a difference
    of two accuracies on ``n_val`` images.

    Args:
        weight_difference: :func:`kdtutor.images.train.max_weight_difference` of the two students.
        loop_acc, library_acc: validation accuracies in [0, 1].
        n_val: validation images; steps: optimisation steps each run made.
    Returns:
        ``(agree, sentence)``.
    """
    if n_val < 1 or steps < 1:
        raise ValueError(f"need n_val ≥ 1 and steps ≥ 1, got {n_val} and {steps}")
    if weight_difference == 0:
        return True, f"identical weights after {steps} steps: your loop is the library's run, step for step"
    if weight_difference <= ROUNDING:
        return True, (f"the same weights up to rounding (largest difference {weight_difference:.1e} after "
                      f"{steps} steps)")
    p = (loop_acc + library_acc) / 2
    bound = 2 * (2 * max(p * (1 - p), 1e-4) / n_val) ** 0.5
    gap = abs(loop_acc - library_acc)
    why = (f"the weights differ by up to {weight_difference:.2g}: your kd_step rounds its loss differently from "
           f"kdtutor's, and {steps} SGD steps amplify such differences")
    if gap <= bound:
        return True, (f"{why}; the accuracies differ by {100 * gap:.1f} points, within the noise of {n_val:,d} "
                      f"validation images (±{100 * bound:.1f}): they agree as two runs of one recipe")
    return False, (f"{why}, but the accuracies differ by {100 * gap:.1f} points, more than the noise of {n_val:,d} "
                   f"validation images (±{100 * bound:.1f}): check your kd_step against the exercise")


# --------------------------------------------------------------------------- dark knowledge (Hinton et al. 2015)
def without_class(data: Dataset, cls: int) -> Dataset:
    """``data`` with every example of class ``cls`` removed from the *training* split only."""
    keep = data.train.labels != cls
    return Dataset(data.name, data.classes, Split(data.train.images[keep], data.train.labels[keep]),
                   data.val, data.test, data.is_standin, data.source)


def shift_class_logit(logits: torch.Tensor, cls: int, shift: float) -> torch.Tensor:
    """``logits (N, C)`` with ``shift`` added to column ``cls`` (raises that class's bias)."""
    out = logits.clone()
    out[:, cls] += shift
    return out


def best_class_shift(val_logits: torch.Tensor, val_labels: torch.Tensor, cls: int, shifts) -> float:
    """The shift of class ``cls``'s logit that maximises *validation* accuracy (the smallest, on ties)."""
    accs = [((shift_class_logit(val_logits, cls, s).argmax(1) == val_labels).float().mean().item(), -s, s)
            for s in shifts]
    return max(accs)[2]
