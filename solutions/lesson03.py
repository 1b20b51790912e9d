"""Reference answers for lesson 03 (teacher training)."""

import torch


def flip_batch(images: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Mirror left–right the images where ``flip`` is True. ``images (B, C, H, W)``, ``flip (B,) bool``."""
    mirrored = images.flip(-1)  # a new tensor: the input stays as it was
    return torch.where(flip[:, None, None, None], mirrored, images)


def translate_batch(padded: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, pad: int) -> torch.Tensor:
    """Crop the H×W window of each padded image that starts at ``(dy + pad, dx + pad)``."""
    B, C, Hp, Wp = padded.shape
    H, W = Hp - 2 * pad, Wp - 2 * pad
    out = torch.empty((B, C, H, W), dtype=padded.dtype)
    for i in range(B):  # a loop is clear; kdtutor.images.loader.translate_batch does all images at once
        top, left = int(dy[i]) + pad, int(dx[i]) + pad
        out[i] = padded[i, :, top:top + H, left:left + W]
    return out


def conv_bn_params(c_in: int, c_out: int, k: int) -> int:
    """Parameters of Conv2d(c_in, c_out, k, bias=False) followed by BatchNorm2d(c_out)."""
    conv = c_out * c_in * k * k  # one k×k filter per (output, input) channel pair
    bn = 2 * c_out  # a learned scale and shift per channel
    return conv + bn
