"""Lesson 06 — feature maps for FitNets hints: forward hooks at named layers and a 1×1 projector.

* :class:`FeatureHook` records the output of one named sub-module of a model on every
  forward pass (``model.named_modules()`` names, e.g. ``"body.2"`` or ``"8"``).
* :class:`HintProjector` is FitNets' regressor ``r`` (Romero et al. 2015, Eq. 3): a 1×1
  convolution from the student's channels to the teacher's, then (if the spatial sizes
  differ) adaptive average pooling to the teacher's H×W. It trains with the student.
* :class:`HintedStudent` bundles the student and the projector, so that ``fit`` trains
  both with one optimiser; it returns the student's logits, exactly as the student would.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def layer_names(model: nn.Module) -> list[str]:
    """The names :class:`FeatureHook` accepts (every named sub-module)."""
    return [name for name, _ in model.named_modules() if name]


class FeatureHook:
    """Keeps the latest output of ``model``'s sub-module ``layer`` in ``.output``.

    Raises:
        ValueError: ``layer`` is not a sub-module name of ``model`` (the message lists them).
    Use as a context manager (``with FeatureHook(m, "body.2") as hook: ...``) or call
    :meth:`remove` when done.
    """

    def __init__(self, model: nn.Module, layer: str):
        modules = dict(model.named_modules())
        if not layer or layer not in modules:
            raise ValueError(f"no layer named {layer!r} in {type(model).__name__}; "
                             f"named layers are: {', '.join(layer_names(model))}")
        self.layer, self.output = layer, None
        self._handle = modules[layer].register_forward_hook(self._keep)

    def _keep(self, module, inputs, output) -> None:
        self.output = output

    def take(self) -> torch.Tensor:
        """The recorded output (and forget it, so a stale one is never used twice)."""
        if self.output is None:
            raise ValueError(f"layer {self.layer!r} produced no output yet: run a forward pass of the model first")
        out, self.output = self.output, None
        return out

    def remove(self) -> None:
        self._handle.remove()

    def __enter__(self) -> FeatureHook:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


@torch.no_grad()
def feature_shape(model: nn.Module, layer: str, image_shape=(3, 32, 32)) -> tuple[int, ...]:
    """``(D, H, W)`` of ``layer``'s output for one image of ``image_shape`` (model put back in its mode)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with FeatureHook(model, layer) as hook:
        model(torch.zeros(1, *image_shape, device=device))
        out = hook.take()
    model.train(was_training)
    return tuple(out.shape[1:])


class HintProjector(nn.Module):
    """FitNets' regressor: ``(N, D_s, H_s, W_s)`` → ``(N, D_t, H_t, W_t)``.

    A 1×1 convolution (with bias) maps channels; adaptive average pooling maps H_s×W_s
    to H_t×W_t when they differ (it needs H_s ≥ H_t and W_s ≥ W_t: take the student's
    feature map at a layer at least as large as the teacher's).
    """

    def __init__(self, student_shape, teacher_shape):
        super().__init__()
        (ds, hs, ws), (dt, ht, wt) = tuple(student_shape), tuple(teacher_shape)
        if hs < ht or ws < wt:
            raise ValueError(f"the student's feature map ({hs}×{ws}) is smaller than the teacher's ({ht}×{wt}): "
                             "hint an earlier student layer or a later teacher layer")
        self.conv = nn.Conv2d(ds, dt, kernel_size=1)
        self.in_shape, self.out_shape = (ds, hs, ws), (dt, ht, wt)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim != 4 or tuple(features.shape[1:]) != self.in_shape:
            raise ValueError(f"expected student features (N, {', '.join(map(str, self.in_shape))}), "
                             f"got {tuple(features.shape)}")
        x = self.conv(features)
        return x if x.shape[-2:] == self.out_shape[1:] else F.adaptive_avg_pool2d(x, self.out_shape[1:])


class HintedStudent(nn.Module):
    """A student plus its hint projector: ``forward`` returns the student's logits ``(N, C)``
    and leaves the projected features of its ``layer`` in ``.projected`` ``(N, D_t, H_t, W_t)``."""

    def __init__(self, student: nn.Module, layer: str, teacher_shape, image_shape=(3, 32, 32)):
        super().__init__()
        self.student = student
        self.projector = HintProjector(feature_shape(student, layer, image_shape), teacher_shape)
        self.hook = FeatureHook(student, layer)
        self.projected = None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.student(images)
        self.projected = self.projector(self.hook.take())
        return logits
