"""Lesson 03 — augmentation and a loader that keeps a whole split on the device.

Batches come out as normalised ``float32`` images ``(B, C, H, W)`` on the device,
with their labels and their positions in the split (``index``), so each image's
augmented view is a pure function of ``(seed, epoch, index)``.
"""

from __future__ import annotations

import math
import weakref
from typing import NamedTuple
from collections.abc import Iterator

import torch

from kdtutor.fingerprint import digest, fingerprint
from kdtutor.images.splits import Split
from kdtutor.precision import prefers_channels_last
from kdtutor.scale.distributed import check_batch_split, shard_batch


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


def reflect_index(n: int, pad: int, device=None) -> torch.Tensor:
    """Source positions ``(n + 2·pad,) int64`` of a reflect-padded axis of length ``n``:
    ``pad, …, 1, 0, 1, …, n−1, n−2, …, n−1−pad`` (the edge pixel is not repeated)."""
    i = torch.arange(-pad, n + pad, device=device).abs()
    return torch.where(i > n - 1, 2 * (n - 1) - i, i)


def pad_images(images: torch.Tensor, pad: int) -> torch.Tensor:
    """Reflect-pad ``(N, C, H, W)`` images by ``pad`` pixels on each side, in their own dtype and
    on their own device (by indexing: no float copy, any dtype). Same values as
    ``F.pad(images.float(), (pad,) * 4, mode="reflect")``.

    Raises:
        ValueError: ``pad`` negative, or not smaller than H and W (reflection needs that).
    """
    if pad == 0:
        return images
    H, W = images.shape[-2:]
    if pad < 0 or pad >= min(H, W):
        raise ValueError(f"reflect padding needs 0 ≤ pad < min(H, W) = {min(H, W)}, got {pad}")
    rows, cols = reflect_index(H, pad, images.device), reflect_index(W, pad, images.device)
    return images.index_select(-2, rows).index_select(-1, cols)


_DEVICE_COPIES: dict = {}  # (id(images), device, pad) → (weak reference to images, padded copy on device)


def device_images(images: torch.Tensor, device, pad: int = 0) -> torch.Tensor:
    """``images`` (uint8, CPU) uploaded to ``device`` and reflect-padded there by ``pad``.

    The copy is shared: every loader over the same images tensor (e.g. the ~25 runs
    of a sweep over one split) reuses it instead of uploading and padding again.
    It is dropped when ``images`` is garbage-collected. Treat the result as read-only.
    """
    device = torch.device(device)
    key = (id(images), str(device), pad)
    hit = _DEVICE_COPIES.get(key)
    if hit is not None and hit[0]() is images:
        return hit[1]
    copy = pad_images(images.to(device), pad)
    if copy is images:  # already there, unpadded: nothing to keep
        return copy
    try:
        ref = weakref.ref(images, lambda _, key=key: _DEVICE_COPIES.pop(key, None))
    except TypeError:  # cannot be weakly referenced: do not cache
        return copy
    _DEVICE_COPIES[key] = (ref, copy)
    return copy


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
        split: the data (uint8, on the CPU). It is uploaded and padded once per device
            and shared by every loader over the same split (:func:`device_images`).
        mean, std: per-channel normalisation (fractions of 255), from :class:`Dataset`.
        device: where data and batches live ("cpu" or "cuda").
        drop_last: leave out the last, smaller batch of each epoch (every step then has
            the same batch size: one cuDNN plan, no tiny BatchNorm batch). The examples
            left out change from epoch to epoch with the shuffle.
        alternate_flip: airbench's flips: in epoch 0 each image is mirrored at random
            (as with independent flips), and in every later epoch it is mirrored exactly
            when it was not in the epoch before — each image alternates between its two
            orientations instead of drawing a new coin each epoch.
        world_size, rank: data-parallel training (:mod:`kdtutor.scale.distributed`). ``batch_size``
            stays the *global* batch: step k's batch is the one a single process would take,
            and this process yields its piece ``rank`` of ``world_size`` of it. Orders and
            views depend on ``(seed, epoch, index)`` only, never on the world size.
    """

    def __init__(self, split: Split, batch_size: int, mean, std, device="cpu", train: bool = False,
                 flip: bool = True, translate: int = 2, seed: int = 0, drop_last: bool = False,
                 alternate_flip: bool = False, world_size: int = 1, rank: int = 0):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"need 0 ≤ rank < world_size, got rank {rank} of {world_size}")
        check_batch_split(len(split.labels), batch_size, drop_last, world_size)
        self.device = torch.device(device)
        self.batch_size, self.train, self.seed, self.drop_last = batch_size, train, seed, drop_last
        self.world_size, self.rank = world_size, rank
        self.flip, self.pad = (flip, translate) if train else (False, 0)
        self.alternate_flip = bool(alternate_flip and self.flip)
        self.images = device_images(split.images, self.device, self.pad)  # uint8, stays there
        self.labels = split.labels.to(self.device)
        self.mean = torch.tensor(mean, device=self.device).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(std, device=self.device).view(1, -1, 1, 1) * 255
        self.channels_last = prefers_channels_last(self.device) and self.images.ndim == 4
        self._first_flips = None
        self.set_epoch(0)

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    @property
    def num_examples(self) -> int:
        return len(self.labels)

    def fingerprint(self) -> str:
        """What this loader shows (:mod:`kdtutor.fingerprint`): its images (as stored, padded), labels,
        normalisation, device and batching; the key of results computed from it."""
        batching = [self.batch_size, self.drop_last, self.train, self.flip, self.pad, self.seed,
                    self.alternate_flip, self.world_size, self.rank, self.device.type, type(self).__qualname__]
        return digest(fingerprint(self.images, self.labels, self.mean, self.std), repr(batching))

    def set_epoch(self, epoch: int) -> None:
        """Pick epoch ``epoch``'s order and views (call before iterating)."""
        self.epoch = epoch
        self._views = None  # drawn when first needed

    def _draw(self, epoch: int):
        """``(order, flip, dx, dy)`` drawn from epoch ``epoch``'s generator (flips independent)."""
        n, dev = self.num_examples, self.device
        g = torch.Generator(dev).manual_seed(self.seed * 100_003 + epoch)
        order = torch.randperm(n, device=dev, generator=g) if self.train else torch.arange(n, device=dev)
        flip = torch.rand(n, device=dev, generator=g) < 0.5
        dx, dy = torch.randint(-self.pad, self.pad + 1, (2, n), device=dev, generator=g)
        return order, flip, dx, dy

    def view_params(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """This epoch's ``(order, flip, dx, dy)``, each ``(N,)``, for all N examples."""
        if self._views is None:
            order, flip, dx, dy = self._draw(self.epoch)
            if self.alternate_flip:
                if self._first_flips is None:
                    self._first_flips = flip if self.epoch == 0 else self._draw(0)[1]
                flip = self._first_flips ^ bool(self.epoch % 2)
            self._views = (order, flip & self.flip, dx, dy)
        return self._views

    def view_key(self) -> tuple | None:
        """Names this epoch's views: equal keys mean identical augmented images. None: no augmentation."""
        if not self.train or (not self.flip and self.pad == 0):
            return None
        return ("views", self.seed, self.epoch, "alternate" if self.alternate_flip else self.flip, self.pad)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``(B, C, H, W)`` → normalised float32 (channels-last where the device prefers it: CUDA and the CPU)."""
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

    def global_batch_len(self, step: int) -> int:
        """Images in step ``step``'s batch over all processes (``batch_size``, or fewer for the last)."""
        return min(self.batch_size, self.num_examples - step * self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        order, key = self.view_params()[0], self.view_key()
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            idx = order[start:start + self.batch_size]
            if self.world_size > 1:
                idx = shard_batch(idx, self.rank, self.world_size)
            yield Batch(self.view_images(idx), self.labels[idx], idx, key)
