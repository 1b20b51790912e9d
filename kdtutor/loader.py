"""Lesson 03 — augmentation and a loader that keeps a whole split on the device.

Batches come out as normalised ``float32`` images ``(B, C, H, W)`` on the device,
with their labels and their positions in the split (``index``), so each image's
augmented view is a pure function of ``(seed, epoch, index)``.
"""

from __future__ import annotations

import math
from typing import Iterator, NamedTuple

import torch

from .splits import Split


def flip_batch(images: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Mirror left–right the images where ``flip`` is True.

    Args:
        images: ``(B, C, H, W)``, any dtype.
        flip: ``(B,)`` bool.
    """
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def translate_batch(padded: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, pad: int) -> torch.Tensor:
    """Crop ``H×W`` windows out of images padded by ``pad`` pixels, shifted by ``(dx, dy)``.

    Args:
        padded: ``(B, C, H + 2·pad, W + 2·pad)``.
        dx, dy: ``(B,)`` int64 shifts in ``[-pad, pad]`` (pixels; +dx moves the window right).
    Returns:
        ``(B, C, H, W)``; ``dx = dy = 0`` gives back the unpadded images.
    """
    B, C, Hp, Wp = padded.shape
    H, W = Hp - 2 * pad, Wp - 2 * pad
    dev = padded.device
    rows = (dy + pad)[:, None] + torch.arange(H, device=dev)  # (B, H)
    cols = (dx + pad)[:, None] + torch.arange(W, device=dev)  # (B, W)
    b = torch.arange(B, device=dev)[:, None, None, None]
    c = torch.arange(C, device=dev)[None, :, None, None]
    return padded[b, c, rows[:, None, :, None], cols[:, None, None, :]]


def pad_images(images: torch.Tensor, pad: int) -> torch.Tensor:
    """Reflect-pad ``(N, C, H, W)`` images by ``pad`` pixels on each side (done once, on the CPU)."""
    if pad == 0:
        return images
    return torch.nn.functional.pad(images.float(), (pad,) * 4, mode="reflect").to(images.dtype)


class Batch(NamedTuple):
    """What the loader yields.

    ``images (B, C, H, W) float`` normalised, ``labels (B,) int64``, ``index (B,) int64``
    (each example's position in its split) and ``view``: the loader's
    :meth:`~DeviceLoader.view_key` for this epoch (None without augmentation).
    ``(index, view)`` names exactly which image the model saw.
    """

    images: torch.Tensor
    labels: torch.Tensor
    index: torch.Tensor
    view: tuple | None = None


class DeviceLoader:
    """Batches from a split kept whole on ``device``; shuffling and augmentation happen there too.

    With ``train=True`` the order is shuffled and each image is randomly flipped
    and translated by up to ``translate`` pixels. The random choices of epoch
    ``e`` depend only on ``(seed, e)`` and are drawn per *example*, not per batch,
    so the view of example ``i`` in epoch ``e`` is reproducible: see
    :meth:`view_key` and :meth:`view_images`.

    Args:
        split: the data (uint8, on the CPU).
        mean, std: per-channel normalisation (fractions of 255), from :class:`Dataset`.
        device: where data and batches live ("cpu" or "cuda").
    """

    def __init__(self, split: Split, batch_size: int, mean, std, device="cpu", train: bool = False,
                 flip: bool = True, translate: int = 2, seed: int = 0, drop_last: bool = False):
        self.device = torch.device(device)
        self.batch_size, self.train, self.seed, self.drop_last = batch_size, train, seed, drop_last
        self.flip, self.pad = (flip, translate) if train else (False, 0)
        self.images = pad_images(split.images, self.pad).to(self.device)  # uint8, stays there
        self.labels = split.labels.to(self.device)
        self.mean = torch.tensor(mean, device=self.device).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(std, device=self.device).view(1, -1, 1, 1) * 255
        self.channels_last = self.device.type == "cuda"
        self.set_epoch(0)

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    @property
    def num_examples(self) -> int:
        return len(self.labels)

    def set_epoch(self, epoch: int) -> None:
        """Pick epoch ``epoch``'s order and views (call before iterating)."""
        self.epoch = epoch
        self._views = None  # drawn when first needed

    def view_params(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """This epoch's ``(order, flip, dx, dy)``, each ``(N,)``, for all N examples."""
        if self._views is None:
            n, dev = self.num_examples, self.device
            g = torch.Generator(dev).manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(n, device=dev, generator=g) if self.train else torch.arange(n, device=dev)
            flip = torch.rand(n, device=dev, generator=g) < 0.5
            dx, dy = torch.randint(-self.pad, self.pad + 1, (2, n), device=dev, generator=g)
            self._views = (order, flip & self.flip, dx, dy)
        return self._views

    def view_key(self) -> tuple | None:
        """Names this epoch's views: equal keys mean identical augmented images. None: no augmentation."""
        if not self.train or (not self.flip and self.pad == 0):
            return None
        return ("views", self.seed, self.epoch, self.flip, self.pad)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``(B, C, H, W)`` → normalised float32 (channels-last on CUDA)."""
        x = (images.float() - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def view_images(self, index: torch.Tensor) -> torch.Tensor:
        """This epoch's (augmented, normalised) views of the examples at ``index`` ``(B,)``."""
        _, flip, dx, dy = self.view_params()
        x = self.images[index]
        if self.pad:
            x = translate_batch(x, dx[index], dy[index], self.pad)
        if self.flip:
            x = flip_batch(x, flip[index])
        return self.normalize(x)

    def clean_images(self, index: torch.Tensor) -> torch.Tensor:
        """The un-augmented, normalised images at positions ``index`` ``(B,)``."""
        x = self.images[index]
        if self.pad:
            x = x[:, :, self.pad:-self.pad, self.pad:-self.pad]
        return self.normalize(x)

    def __iter__(self) -> Iterator[Batch]:
        order, key = self.view_params()[0], self.view_key()
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            idx = order[start:start + self.batch_size]
            yield Batch(self.view_images(idx), self.labels[idx], idx, key)
