"""Lesson 03 — the teacher and the students, built by name.

Every model maps ``images: (N, C_in, H, W) float`` (normalised) to
``logits: (N, num_classes) float``.

=================  ===========  =============================================
name               parameters   what it is
=================  ===========  =============================================
``airbench``       ~1.97 M      teacher after airbench94 (Jordan, 2024)
``airbench_small`` ~0.3 M       the same design, narrower: the CPU teacher
``cnn_small``      ~0.15 M      student: plain 3-stage CNN
``cnn_tiny``       ~0.04 M      student: an even narrower CNN
``mlp_large``      (digits)     teacher for 8×8 digits: 2 hidden layers of 512
``mlp_small``      (digits)     student for 8×8 digits: 1 hidden layer of 32
=================  ===========  =============================================
(parameter counts for 3×32×32 inputs and 10 classes.)

Your own models work everywhere a name does (:func:`make_model`): pass a *constructor*, a function
``seed → nn.Module`` that returns a freshly initialised model (so the runs of one seed start from
the same weights), or an ``nn.Module`` (every run then starts from a copy of its weights).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable

import torch
from torch import nn


# --------------------------------------------------------------------------- teacher
class ConvGroup(nn.Sequential):
    """conv 3×3 → max-pool 2 → BN → GELU → conv 3×3 → BN → GELU. Halves H and W."""

    def __init__(self, c_in: int, c_out: int, bn_momentum: float = 0.4):
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.MaxPool2d(2),
            _bn(c_out, bn_momentum),
            nn.GELU(),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            _bn(c_out, bn_momentum),
            nn.GELU(),
        )


def _bn(channels: int, momentum: float) -> nn.BatchNorm2d:
    """BatchNorm with a fixed scale of 1 and a learned shift, as in airbench."""
    bn = nn.BatchNorm2d(channels, momentum=momentum, eps=1e-12)
    bn.weight.requires_grad_(False)
    return bn


class AirbenchNet(nn.Module):
    """The airbench94 network (Jordan, 2024): whitening conv, 3 conv groups, max-pool, linear.

    The first layer is a 2×2 convolution whose weights are set from the data by
    :meth:`init_whitening` (they decorrelate pixel patches) and then frozen.
    Output logits are scaled by 1/9, which airbench found trains best.

    Shapes: ``(N, 3, 32, 32)`` → ``(N, num_classes)``.
    """

    def __init__(self, widths=(64, 256, 256), num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        whiten_width = 2 * in_channels * 2 * 2  # each 2×2 patch direction, with both signs
        self.whiten = nn.Conv2d(in_channels, whiten_width, kernel_size=2, padding=0, bias=True)
        self.whiten.weight.requires_grad_(False)
        self.body = nn.Sequential(
            nn.GELU(),
            ConvGroup(whiten_width, widths[0]),
            ConvGroup(widths[0], widths[1]),
            ConvGroup(widths[1], widths[2]),
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(widths[2], num_classes, bias=False)
        self.scale = 1 / 9

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.whiten(x))) * self.scale

    @torch.no_grad()
    def init_whitening(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the first layer to whiten 2×2 patches of ``images`` (``(N, C, H, W)``, normalised).

        The patch covariance is ``Σ = V diag(λ) Vᵀ``; filters ``v_i / sqrt(λ_i + eps)``
        (and their negatives) make the layer's outputs uncorrelated with unit variance.
        """
        c = images.shape[1]
        patches = images.float().unfold(2, 2, 1).unfold(3, 2, 1)  # (N, C, H-1, W-1, 2, 2)
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * 4)
        patches = patches - patches.mean(dim=0)
        cov = patches.T @ patches / len(patches)
        eigenvalues, eigenvectors = torch.linalg.eigh(cov)
        filters = (eigenvectors.T / torch.sqrt(eigenvalues + eps)[:, None]).reshape(-1, c, 2, 2)
        w = self.whiten.weight
        w.copy_(torch.cat([filters, -filters]).to(w.dtype))


# --------------------------------------------------------------------------- students
class SimpleCNN(nn.Sequential):
    """Stages of (conv 3×3 → BN → ReLU) × k → max-pool 2; then global average pool → linear.

    Args:
        widths: channels of each stage, e.g. ``(16, 32, 48)``.
        convs: convolutions per stage, e.g. ``(1, 1, 2)``.
    """

    def __init__(self, widths, convs, num_classes: int = 10, in_channels: int = 3):
        layers, c = [], in_channels
        for width, n in zip(widths, convs):
            for _ in range(n):
                layers += [nn.Conv2d(c, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
                c = width
            layers.append(nn.MaxPool2d(2))
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)]
        super().__init__(*layers)


class MLP(nn.Sequential):
    """Flatten → (linear → ReLU → dropout) per hidden layer → linear. For small images (digits)."""

    def __init__(self, in_features: int, hidden, num_classes: int = 10, dropout: float = 0.0):
        layers, n = [nn.Flatten()], in_features
        for h in hidden:
            layers += [nn.Linear(n, h), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout else [])
            n = h
        layers.append(nn.Linear(n, num_classes))
        super().__init__(*layers)


# --------------------------------------------------------------------------- registry
def _mlp(hidden, dropout=0.0):
    return lambda num_classes, in_channels, image_size: MLP(
        in_channels * image_size * image_size, hidden, num_classes, dropout
    )


MODELS = {
    "airbench": lambda num_classes, in_channels, image_size: AirbenchNet((64, 256, 256), num_classes, in_channels),
    "airbench_small": lambda num_classes, in_channels, image_size: AirbenchNet((32, 64, 128), num_classes, in_channels),
    "cnn_small": lambda num_classes, in_channels, image_size: SimpleCNN((32, 64, 96), (1, 1, 2), num_classes, in_channels),
    "cnn_tiny": lambda num_classes, in_channels, image_size: SimpleCNN((16, 32, 48), (1, 1, 2), num_classes, in_channels),
    "mlp_large": _mlp((512, 512), dropout=0.2),
    "mlp_small": _mlp((32,)),
}


def build_model(name: str, num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> nn.Module:
    """A freshly initialised model called ``name`` (see the table above)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[name](num_classes, in_channels, image_size)


ModelSpec = str | Callable[[int], nn.Module] | nn.Module  # what every training function takes


def make_model(spec: ModelSpec, seed: int = 0, num_classes: int = 10, in_channels: int = 3,
          image_size: int = 32) -> nn.Module:
    """A fresh model from ``spec``, the one resolver every training function uses.

    * a name of the table above: :func:`build_model` with the data's ``num_classes``,
      ``in_channels`` and ``image_size``, initialised from ``torch.manual_seed(seed)``;
    * a constructor ``spec(seed) → nn.Module`` (called after ``torch.manual_seed(seed)``, so
      one that ignores the seed is still reproducible): yours, e.g. ``lambda seed: nn.Sequential(…)``;
    * an ``nn.Module``: a deep copy of it (the same starting weights whatever the seed).

    Like :func:`kdtutor.images.train.seed_everything`, it seeds PyTorch's global generator.

    Raises:
        ValueError: an unknown name, a constructor that does not return an ``nn.Module``, or
            anything else.
    """
    torch.manual_seed(seed)
    if isinstance(spec, str):
        return build_model(spec, num_classes, in_channels, image_size)
    if isinstance(spec, nn.Module):
        return copy.deepcopy(spec)
    if callable(spec):
        model = spec(seed)
        if not isinstance(model, nn.Module):
            raise ValueError(f"the model constructor {model_label(spec)} returned {type(model).__name__}, not an "
                             "nn.Module: it must be a function seed → a fresh nn.Module")
        return model
    raise ValueError(f"a model is a name ({', '.join(MODELS)}), a function seed → nn.Module, or an nn.Module; "
                     f"got {type(spec).__name__}")


def model_label(spec: ModelSpec) -> str:
    """What a run calls the model (titles, checkpoint names, ``meta["arch"]``): the name itself, a
    constructor's function name, or a module's class name; letters, digits, ``_ . -`` only."""
    if isinstance(spec, str):
        return spec
    raw = type(spec).__name__ if isinstance(spec, nn.Module) else getattr(spec, "__name__", type(spec).__name__)
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", raw).strip("_") or "model"


@torch.no_grad()
def check_output(model: nn.Module, images: torch.Tensor, num_classes: int, what: str = "the model") -> None:
    """Run ``model`` (in eval mode, then back to its mode) on ``images (B, C, H, W)``, normalised as in
    training, and check it gives ``(B, num_classes)`` logits: a model built for other data fails here,
    with a message saying what differs, before any training.

    Raises:
        ValueError: the forward pass fails (e.g. another input size or channel count) or the output
            is not ``(B, num_classes)``.
    """
    was_training = model.training
    model.eval()
    try:
        out = model(images)
    except RuntimeError as e:
        raise ValueError(f"{what} cannot run on this data's images {tuple(images.shape[1:])} (C, H, W): {e}. "
                         "Build it for that input size and channel count, or load the data at the size it "
                         "expects (load_image_folder(..., size=...))") from e
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or out.shape != (len(images), num_classes):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{what} gives {shape} on a batch of {len(images)} images, but the data have "
                         f"{num_classes} classes: it must return logits of shape (B, {num_classes})")


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters (all of them, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
