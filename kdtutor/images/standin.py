"""Lesson 03 — the offline stand-in: generated images of coloured shapes, NOT CIFAR-10.

Deterministic, with CIFAR-10's shapes and dtype, for CI and for machines without
internet. Its numbers are never CIFAR-10 numbers, and everything it touches is
labelled so (its :attr:`Dataset.name` says it).
"""

from __future__ import annotations

import math

import torch

from kdtutor.images.splits import Dataset, Split

STANDIN_NAME = "stand-in (synthetic shapes, NOT CIFAR-10)"
STANDIN_CLASSES = ["disc", "ring", "square", "frame", "triangle", "plus", "cross", "h-bars", "v-bars", "checker"]


def _signed_distance(kind: int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """> 0 inside shape ``kind``, < 0 outside; ``u, v`` are coordinates in units of the shape's size."""
    rad, box = torch.sqrt(u**2 + v**2), torch.maximum(u.abs(), v.abs())
    inside = 1 - box  # > 0 inside the unit square
    if kind == 0:  # disc
        return 1 - rad
    if kind == 1:  # ring
        return 0.22 - (rad - 0.72).abs()
    if kind == 2:  # square
        return 0.85 - box
    if kind == 3:  # frame
        return 0.18 - (box - 0.72).abs()
    if kind == 4:  # triangle
        u, v = 0.7 * u, 0.7 * v - 0.1
        return 0.6 * torch.minimum(v + 0.6, torch.minimum(0.55 - v - 1.7 * u, 0.55 - v + 1.7 * u))
    if kind == 5:  # plus
        return torch.minimum(inside, 0.25 - torch.minimum(u.abs(), v.abs()))
    if kind == 6:  # cross
        du, dv = (u + v) / math.sqrt(2), (u - v) / math.sqrt(2)
        return torch.minimum(inside, 0.25 - torch.minimum(du.abs(), dv.abs()))
    if kind == 7:  # h-bars
        return torch.minimum(inside, 0.3 * torch.sin(v * 2.6 * math.pi))
    if kind == 8:  # v-bars
        return torch.minimum(inside, 0.3 * torch.sin(u * 2.6 * math.pi))
    return torch.minimum(inside, 0.3 * torch.sin(u * 2.2 * math.pi) * torch.sin(v * 2.2 * math.pi))  # checker


def _shape_masks(kind: torch.Tensor, x: torch.Tensor, y: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Soft masks ``(N, H, W)`` in [0, 1] of shape ``kind[i]`` for each image i.

    ``x, y``: ``(N, H, W)`` pixel coordinates relative to each shape's centre,
    already rotated; ``r``: ``(N, 1, 1)`` sizes in pixels.
    """
    masks = torch.empty_like(x)
    for k in range(10):
        sel = kind == k
        sd = _signed_distance(k, x[sel] / r[sel], y[sel] / r[sel])
        masks[sel] = torch.sigmoid(sd * r[sel] * 2.5)  # about one pixel of anti-aliasing
    return masks


def _render_shapes(labels: torch.Tensor, g: torch.Generator, r_min: float, r_max: float, size: int = 32):
    """Masks ``(N, H, W)`` of one shape per label, randomly placed, tilted and sized (``r_min``–``r_max`` px)."""
    n = len(labels)
    coords = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    cy, cx = (torch.rand(2, n, 1, 1, generator=g) - 0.5) * 12  # centre within ±6 px
    r = r_min + (r_max - r_min) * torch.rand(n, 1, 1, generator=g)
    angle = (torch.rand(n, 1, 1, generator=g) - 0.5) * math.radians(40)
    yy, xx = coords[None, :, None] - cy, coords[None, None, :] - cx
    x = xx * torch.cos(angle) + yy * torch.sin(angle)
    y = -xx * torch.sin(angle) + yy * torch.cos(angle)
    return _shape_masks(labels, x, y, r)


def make_standin(n_train: int = 45000, n_val: int = 5000, n_test: int = 10000, seed: int = 0) -> Dataset:
    """Generate the stand-in data set: 10 classes of coloured shapes on cluttered backgrounds.

    Deterministic for a given ``seed``; the shape decides the class, while colour,
    position, size, tilt, background gradient, a distracting smaller shape and
    pixel noise vary. ``(N, 3, 32, 32) uint8`` like CIFAR-10, balanced classes.
    """
    g = torch.Generator().manual_seed(seed)

    def split(n: int) -> Split:
        labels = torch.arange(n) % 10
        labels = labels[torch.randperm(n, generator=g)]
        return Split(_render_images(labels, g), labels)

    return Dataset(STANDIN_NAME, list(STANDIN_CLASSES), split(n_train), split(n_val), split(n_test), is_standin=True)


def _render_images(labels: torch.Tensor, g: torch.Generator, chunk: int = 4096) -> torch.Tensor:
    """uint8 images ``(N, 3, 32, 32)`` for ``labels``, rendered in chunks to bound memory."""
    return torch.cat([_render_chunk(labels[i:i + chunk], g) for i in range(0, len(labels), chunk)])


# How hard the stand-in is: tuned so that (cpu profile) the teacher clearly beats
# the students, which clearly beat chance. See tests/test_data.py.
STANDIN_HARDNESS = dict(size=(5, 11), contrast=(0.15, 0.45), distractors=2, distractor_p=0.7,
                        distractor_size=(3, 8), distractor_alpha=0.5, clutter=0.25, noise=0.12)


def _render_chunk(labels: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Images ``(n, 3, 32, 32) uint8``: cluttered background, faint distractor shapes, one salient shape."""
    h, n = STANDIN_HARDNESS, len(labels)
    rand = lambda *shape: torch.rand(n, *shape, generator=g)  # noqa: E731
    # background: a colour ramp plus low-frequency colour clutter
    bg0, bg1 = rand(3, 1, 1), rand(3, 1, 1)
    ramp = torch.linspace(0, 1, 32)
    t = torch.where(rand(1, 1) < 0.5, ramp[None, :, None], ramp[None, None, :])[:, None]  # (n, 1, 32, 32)
    clutter = torch.nn.functional.interpolate(rand(3, 4, 4) - 0.5, size=32, mode="bilinear", align_corners=False)
    img = bg0 * (1 - t) + bg1 * t + h["clutter"] * clutter
    # distractors: shapes of random classes, smaller and semi-transparent
    for _ in range(h["distractors"]):
        mask = _render_shapes(torch.randint(0, 10, (n,), generator=g), g, *h["distractor_size"])
        mask = (mask * (rand(1, 1) < h["distractor_p"]) * h["distractor_alpha"])[:, None]
        img = img * (1 - mask) + rand(3, 1, 1) * mask
    # the shape that names the class, in a colour that differs from the local background
    mask = _render_shapes(labels, g, *h["size"])[:, None]
    lo, hi = h["contrast"]
    local = (img * mask).sum(dim=(2, 3), keepdim=True) / mask.sum(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    delta = lo + (hi - lo) * rand(3, 1, 1)
    fg = torch.where(local > 0.5, local - delta, local + delta)
    img = img * (1 - mask) + fg * mask
    img = img + h["noise"] * torch.randn(img.shape, generator=g)
    return (img.clamp(0, 1) * 255).round().to(torch.uint8)


