"""Checks for lesson 03 (``03_teacher_training``): augmentation by hand, counting parameters."""

from __future__ import annotations

from collections.abc import Callable

import torch

from kdtutor.checks.core import CheckResult, Failed, fmt, python_number, register, run_check
from kdtutor.images import loader

register("flip_batch",
         nudge="mirror left–right means reversing the *width* axis (the last one), and only for the images whose "
               "flag is True; return a new tensor and leave the input as it was.",
         answer="mirror the last dimension (width): images.flip(-1), and choose per image with "
                "torch.where(flip[:, None, None, None], flipped, images)")
register("translate_batch",
         nudge="each output keeps the original H×W size; its window in the padded image moves with (dx, dy), and "
               "dx = dy = 0 is the centred window.",
         answer="the window of image i starts at row dy[i] + pad and column dx[i] + pad of the padded "
                "image: padded[i, :, dy+pad : dy+pad+H, dx+pad : dx+pad+W]")
register("conv_bn_params",
         nudge="count the convolution's weights (no bias here) and only the *learned* parameters of BatchNorm.",
         answer="each of the c_out filters has c_in·k·k weights (no bias here); BatchNorm learns a "
                "scale and a shift per channel (its running mean/variance are buffers, not parameters): "
                "c_in * c_out * k * k + 2 * c_out")


def flip_batch(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise: ``fn(images (B, C, H, W), flip (B,) bool)`` mirrors left–right the flagged images."""

    def test(f):
        g = torch.Generator().manual_seed(0)
        for shape in [(4, 3, 5, 6), (7, 1, 8, 8)]:
            x = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
            for flip in [torch.rand(shape[0], generator=g) < 0.5, torch.ones(shape[0], dtype=torch.bool),
                         torch.zeros(shape[0], dtype=torch.bool)]:
                original = x.clone()
                got = f(x, flip)
                if not torch.equal(x, original):
                    raise Failed("your function changed its input images in place")
                if not isinstance(got, torch.Tensor) or got.shape != x.shape:
                    raise Failed(f"expected a tensor of shape {tuple(x.shape)}, got {fmt(got)}")
                want = loader.flip_batch(x, flip)
                if not torch.equal(got, want):
                    bad = (got != want).flatten(1).any(1).nonzero().flatten().tolist()
                    raise Failed(f"images {bad} are wrong for flip = {flip.tolist()} (shape {shape})")

    return run_check("flip_batch", fn, loader.flip_batch, test, verbose=verbose)


def translate_batch(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise: ``fn(padded, dx, dy, pad)`` crops H×W windows shifted by (dx, dy) from padded images."""

    def test(f):
        g = torch.Generator().manual_seed(1)
        for pad, (h, w) in [(2, (6, 6)), (1, (4, 7)), (3, (8, 5))]:
            n = 9
            padded = torch.randint(0, 256, (n, 2, h + 2 * pad, w + 2 * pad), generator=g, dtype=torch.uint8)
            dx = torch.randint(-pad, pad + 1, (n,), generator=g)
            dy = torch.randint(-pad, pad + 1, (n,), generator=g)
            dx[0] = dy[0] = 0
            got = f(padded, dx, dy, pad)
            want = loader.translate_batch(padded, dx, dy, pad)
            if not isinstance(got, torch.Tensor) or got.shape != want.shape:
                raise Failed(f"padded {tuple(padded.shape)} with pad={pad}: expected shape {tuple(want.shape)}, "
                             f"got {fmt(got)}")
            for i in range(n):
                if not torch.equal(got[i], want[i]):
                    raise Failed(f"pad={pad}, image {i} with dx={int(dx[i])}, dy={int(dy[i])} is wrong "
                                 "(dx moves the window right, dy moves it down)")

    return run_check("translate_batch", fn, loader.translate_batch, test, verbose=verbose)


def _conv_bn_params_reference(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k + 2 * c_out


def conv_bn_params(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise: ``fn(c_in, c_out, k)`` = parameters of ``Conv2d(c_in, c_out, k, bias=False)`` + ``BatchNorm2d(c_out)``,
    a Python ``int`` (or a NumPy integer; see :func:`~kdtutor.checks.core.python_number`)."""
    from torch import nn

    def test(f):
        for c_in, c_out, k in [(3, 16, 3), (16, 32, 3), (32, 48, 1), (12, 5, 5), (1, 1, 2)]:
            block = nn.Sequential(nn.Conv2d(c_in, c_out, k, bias=False), nn.BatchNorm2d(c_out))
            want = sum(p.numel() for p in block.parameters())
            what = f"conv {c_in}→{c_out}, {k}×{k} kernel, + BatchNorm"
            got = python_number(f(c_in, c_out, k), what, integer=True)
            if got != want:
                raise Failed(f"{what}: got {got}, expected {want}")

    return run_check("conv_bn_params", fn, _conv_bn_params_reference, test, verbose=verbose)
