"""Lesson 06 — one student run per method, on the course's harness (``train.fit``).

Every method trains the same student, from the same initial weights, over the same data
order and augmentations (all fixed by the run's seed, :func:`kdtutor.images.train.prepare_run`);
only the loss (and, for FitNets, a small projector; for function matching, mixup views)
differs.

=============  ====================================================================  ==========
method         loss (student logits s, teacher logits z, labels y)                   grid
=============  ====================================================================  ==========
``scratch``    CE(y, s) with label smoothing ε                                       ε
``KD``         (1 − 0.9)·CE + 0.9·T²·KL(z/T ‖ s/T)                                   T
``FitNets``    CE + β·MSE(r(f_s), f_t)   (RepDistiller's FitNet: CE weight 1, no KD)  β
``DKD``        CE + T²·(1·TCKD + β·NCKD), T = 4   (mdistiller's, no warm-up)         β
``LS-KD``      0.1·CE + w·T²·KL(Z(z)/T ‖ Z(s)/T), T = 2   (the reference code's)     w
``FM``         T²·KL(z/T ‖ s/T) on mixup views, no labels (function matching)        T
=============  ====================================================================  ==========

Teacher outputs come from a :class:`TeacherCache`: computed once per *view* (seed, epoch,
augmentation — and mixup — of every example) and shared by all runs of that seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from kdtutor.checkpoints import weights_fingerprint
from kdtutor.images.distill import check_cached_logits, freeze, teacher_forward
from kdtutor.images.hints import FeatureHook, HintedStudent, feature_shape
from kdtutor.images.history import History
from kdtutor.images.loader import Batch, DeviceLoader
from kdtutor.images.predict import predict
from kdtutor.images.recipes import TrainConfig
from kdtutor.images.splits import Dataset
from kdtutor.images.train import eval_loader, fit, prepare_run
from kdtutor.kd.beyond import dkd_training_loss, hint_loss, ls_kd_loss
from kdtutor.kd.losses import cross_entropy, distillation_loss, kd_loss

METHODS = ("scratch", "KD", "FitNets", "DKD", "LS-KD", "FM")
GRID = {  # method → (parameter, the two values tried on validation at the sweep seed)
    "scratch": ("label_smoothing", (0.0, 0.1)),
    "KD": ("T", (2.0, 4.0)),
    "FitNets": ("beta", (1.0, 10.0)),
    "DKD": ("beta", (2.0, 8.0)),
    "LS-KD": ("kd_weight", (0.9, 9.0)),
    "FM": ("T", (1.0, 2.0)),
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
    def like(cls, loader: DeviceLoader) -> "MixupLoader":
        """A mixup loader over the same split, seed and augmentation as ``loader``."""
        if not loader.train:
            raise ValueError("mixup views are for training loaders")
        out = cls.__new__(cls)
        out.__dict__.update(loader.__dict__)
        out._mix_epoch = None
        return out


# --------------------------------------------------------------------------- teacher outputs
class TeacherCache:
    """The frozen teacher's logits ``(N, C)`` and features at ``layer`` ``(N, D, H, W)`` for every
    example of a loader's split, per view; looked up by ``batch.index``.

    A cached view is keyed by the loader's :meth:`~kdtutor.images.loader.DeviceLoader.view_key` (seed,
    epoch, augmentation, mixup) — or ``"clean"`` for a *fixed* teacher, which sees the
    un-augmented image whatever the student sees. One cache serves one split (its first
    loader's); the first batch of each view is spot-checked against the teacher.
    """

    def __init__(self, teacher: nn.Module, layer: str | None = None, chunk: int = 1000):
        self.teacher, self.layer, self.chunk = freeze(teacher), layer, chunk
        self.teacher_sha256 = weights_fingerprint(teacher)
        self.views: dict = {}
        self._images = None
        self._checked: set = set()

    def clear(self) -> None:
        """Forget every view (e.g. after the last run of a seed)."""
        self.views.clear()
        self._checked.clear()

    def _compute(self, loader: DeviceLoader, clean: bool):
        idx = torch.arange(loader.num_examples, device=loader.device)
        view = loader.clean_images if clean else loader.view_images
        logits, feats = [], []
        hook = FeatureHook(self.teacher, self.layer) if self.layer else None
        try:
            for i in range(0, len(idx), self.chunk):
                logits.append(teacher_forward(self.teacher, view(idx[i:i + self.chunk])))
                if hook:
                    feats.append(hook.take().float())
        finally:
            if hook:
                hook.remove()
        return torch.cat(logits), (torch.cat(feats) if hook else None)

    def __call__(self, loader: DeviceLoader, batch: Batch, clean: bool = False):
        """``(logits (B, C), features (B, D, H, W) or None)`` of the teacher for ``batch``."""
        if self._images is None:
            self._images = loader.images
        elif loader.images is not self._images:
            raise ValueError("a TeacherCache serves one split: make another one for other data")
        key = "clean" if clean else batch.view
        if key is None:
            raise ValueError("this loader does not augment (view None): pass clean=True for its clean images")
        if not clean and key != loader.view_key():
            raise ValueError(f"batch of view {batch.view} served while the loader is at {loader.view_key()}")
        if key not in self.views:
            self.views[key] = self._compute(loader, clean)
        logits, feats = self.views[key]
        z = logits[batch.index]
        if key not in self._checked:
            images = loader.clean_images(batch.index) if clean else batch.images
            check_cached_logits(self.teacher, images, z)
            self._checked.add(key)
        return z, (feats[batch.index] if feats is not None else None)


# --------------------------------------------------------------------------- losses for fit
def check_method(method: str, params: dict) -> None:
    """Raise ``ValueError`` for an unknown method or a missing/unknown grid parameter."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    name = GRID[method][0]
    if set(params) != {name}:
        raise ValueError(f"method {method!r} takes exactly one parameter, {name!r}; got {sorted(params)}")


class MethodLoss:
    """``loss_fn(logits, batch)`` for :func:`kdtutor.images.train.fit`, for one method of the table above."""

    def __init__(self, method: str, params: dict, cache: TeacherCache | None, loader: DeviceLoader,
                 model: nn.Module | None = None, fixed: bool = False):
        check_method(method, params)
        if method != "scratch" and cache is None:
            raise ValueError(f"method {method!r} needs a TeacherCache")
        if method == "FitNets" and not isinstance(model, HintedStudent):
            raise ValueError("FitNets needs the student wrapped in a HintedStudent (its projected features)")
        if method == "FitNets" and (cache is None or cache.layer is None):
            raise ValueError("FitNets needs teacher features: build the TeacherCache with a layer")
        self.method, self.p, self.cache, self.loader, self.model, self.fixed = method, params, cache, loader, model, fixed

    def __call__(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        m, p, y = self.method, self.p, batch.labels
        if m == "scratch":
            return cross_entropy(logits, y, label_smoothing=p["label_smoothing"], check=False)
        z, feats = self.cache(self.loader, batch, clean=self.fixed)
        if m == "KD":
            return distillation_loss(logits, z, y, T=p["T"], alpha=0.9, check=False)
        if m == "FitNets":
            return cross_entropy(logits, y, check=False) + p["beta"] * hint_loss(self.model.projected, feats)
        if m == "DKD":
            return dkd_training_loss(logits, z, y, alpha=1.0, beta=p["beta"], T=4.0)
        if m == "LS-KD":
            return 0.1 * cross_entropy(logits, y, check=False) + p["kd_weight"] * ls_kd_loss(logits, z, T=2.0)
        return kd_loss(logits, z, T=p["T"], check=False)  # FM: no labels


# --------------------------------------------------------------------------- one run
@dataclass
class MethodRun:
    """One trained student: its method, parameters, seed, history (with ``test_acc`` per epoch)
    and its final test logits ``(N_test, C)``."""

    method: str
    params: dict
    seed: int
    history: History
    test_logits: torch.Tensor
    seconds: float

    @property
    def val_acc(self) -> float:
        return self.history.last_val_acc


def train_method(method: str, params: dict, arch: str, data: Dataset, cfg: TrainConfig,
                 cache: TeacherCache | None, fixed: bool = False, device=None, probe_test: bool = True) -> MethodRun:
    """Train ``arch`` with ``method`` on ``data`` (seed and schedule from ``cfg``), validating after
    every epoch and, with ``probe_test``, also measuring the test split after every epoch (the
    probe only feeds lesson 06's "how comparisons go wrong"; choices use validation)."""
    import time

    check_method(method, params)
    model, train_loader, val_loader, _ = prepare_run(arch, data, cfg, device=device, augment=True)
    if method == "FitNets":
        t_shape = feature_shape(cache.teacher, cache.layer, data.image_shape)
        model = HintedStudent(model, HINT_LAYERS[arch], t_shape, data.image_shape)  # projector drawn after the student
    if method == "FM":
        train_loader = MixupLoader.like(train_loader)
    test_loader = eval_loader(data, "test", train_loader.device)
    t0 = time.perf_counter()
    history = fit(model, train_loader, val_loader, cfg, loss_fn=MethodLoss(method, params, cache, train_loader, model,
                                                                             fixed), progress=False,
                  probes={"test": test_loader} if probe_test else None)
    seconds = time.perf_counter() - t0
    student = model.student if isinstance(model, HintedStudent) else model
    if isinstance(model, HintedStudent):
        model.hook.remove()
    logits, _ = predict(student, test_loader)
    if not math.isfinite(float(logits.sum())):
        raise ValueError(f"{method} {params}: the student's test logits are not finite")
    return MethodRun(method, dict(params), cfg.seed, history, logits.cpu(), seconds)
