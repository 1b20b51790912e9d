"""Lesson 03 — the data: CIFAR-10, an offline stand-in, scikit-learn's digits, and a fast loader.

Images are stored as ``uint8`` tensors of shape ``(N, C, H, W)`` (pixel values
0–255) and labels as ``int64`` of shape ``(N,)``. The loader turns a batch into
normalised ``float32`` on the device.

* **CIFAR-10** (Krizhevsky, 2009): downloaded once from the official site,
  verified by MD5, parsed into tensors and cached in one checksummed file.
  Splits: 45,000 train / 5,000 validation (a fixed random split of the official
  training set) / the official 10,000 test images.
* **Stand-in** ("synthetic shapes"): generated here, deterministic, with
  CIFAR-10's shapes and dtype, for CI and for machines without internet. Its
  numbers are never CIFAR-10 numbers, and everything it touches is labelled so.
* **digits** (scikit-learn): 1,797 real 8×8 handwritten digits, no download.
"""

from __future__ import annotations

import math
import os
import pickle
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, NamedTuple

import torch

from .storage import DATA_DIR, CorruptFileError, load_checked, save_checked

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_CACHE = "cifar10_uint8.pt"
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
SPLIT_SEED = 0  # fixes which 5,000 training images form the validation split

STANDIN_NAME = "stand-in (synthetic shapes, NOT CIFAR-10)"
STANDIN_CLASSES = ["disc", "ring", "square", "frame", "triangle", "plus", "cross", "h-bars", "v-bars", "checker"]


# --------------------------------------------------------------------------- containers
@dataclass
class Split:
    """One split: ``images (N, C, H, W) uint8`` and ``labels (N,) int64``."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W) uint8, got {tuple(self.images.shape)} {self.images.dtype}")
        if self.labels.shape != (len(self.images),):
            raise ValueError(f"labels {tuple(self.labels.shape)} do not match {len(self.images)} images")
        self.labels = self.labels.long()

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, n: int | None, seed: int = 0) -> "Split":
        """``n`` examples chosen at random (seeded); all of them if ``n`` is None or ≥ N."""
        if n is None or n >= len(self):
            return self
        idx = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n]
        return Split(self.images[idx], self.labels[idx])


@dataclass
class Dataset:
    """Three splits and what they are. ``is_standin`` is True for generated data."""

    name: str
    classes: list[str]
    train: Split
    val: Split
    test: Split
    is_standin: bool = False
    mean: tuple = field(init=False)
    std: tuple = field(init=False)

    def __post_init__(self):
        x = self.train.images.float() / 255
        self.mean = tuple(x.mean(dim=(0, 2, 3)).tolist())
        self.std = tuple(x.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist())

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple:
        return tuple(self.train.images.shape[1:])

    def subset(self, n_train=None, n_val=None, n_test=None, seed: int = 0) -> "Dataset":
        """The same data set with smaller splits (``None`` keeps a split whole)."""
        return Dataset(
            self.name, self.classes,
            self.train.subset(n_train, seed), self.val.subset(n_val, seed), self.test.subset(n_test, seed),
            self.is_standin,
        )

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}: train {len(self.train)}, val {len(self.val)}, test {len(self.test)}, "
                f"{self.num_classes} classes, images {self.image_shape})")


# --------------------------------------------------------------------------- CIFAR-10
def download_cifar10(root: str | os.PathLike = DATA_DIR) -> Path:
    """Download the official CIFAR-10 archive (163 MB) into ``root``, verified by MD5.

    The download goes to ``<archive>.part`` and is renamed only once its checksum
    is right, so an interrupted download never looks finished; a leftover
    ``.part`` file is removed and the download starts again.
    """
    from torchvision.datasets.utils import check_integrity, download_url

    root = Path(root)
    path, part = root / CIFAR10_ARCHIVE, root / (CIFAR10_ARCHIVE + ".part")
    if path.exists():
        verify_archive(path)
        return path
    part.unlink(missing_ok=True)
    download_url(CIFAR10_URL, str(root), filename=part.name)
    if not check_integrity(str(part), CIFAR10_MD5):
        part.unlink(missing_ok=True)
        raise CorruptFileError(f"the download of {CIFAR10_URL} is incomplete or corrupt (MD5 mismatch); run again")
    part.rename(path)
    return path


def verify_archive(path: str | os.PathLike, md5: str = CIFAR10_MD5) -> None:
    """Raise :class:`CorruptFileError` unless the file at ``path`` has the expected MD5."""
    from torchvision.datasets.utils import calculate_md5

    found = calculate_md5(str(path))
    if found != md5:
        raise CorruptFileError(
            f"{path} is corrupt or incomplete (MD5 {found}, expected {md5}): delete it and run again to re-download"
        )


def parse_cifar_archive(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read the python-version CIFAR-10 archive into tensors.

    Returns:
        dict with ``train_images (50000, 3, 32, 32) uint8``, ``train_labels (50000,) int64``,
        ``test_images (10000, 3, 32, 32) uint8``, ``test_labels (10000,) int64``
        (smaller N for a smaller archive in the same format).
    """
    names = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
    batches = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar.getmembers():
                base = Path(member.name).name
                if member.isfile() and base in names["train"] + names["test"]:
                    batches[base] = pickle.load(tar.extractfile(member), encoding="bytes")
    except (tarfile.TarError, EOFError, OSError, pickle.UnpicklingError) as e:
        raise CorruptFileError(f"cannot read {path} as a CIFAR-10 archive ({e}); delete it and run again") from e
    out = {}
    for split, members in names.items():
        missing = [m for m in members if m not in batches]
        if missing:
            raise CorruptFileError(f"{path} lacks {', '.join(missing)}; delete it and run again")
        data = [torch.as_tensor(batches[m][b"data"], dtype=torch.uint8) for m in members]
        labels = [torch.as_tensor(batches[m][b"labels"], dtype=torch.int64) for m in members]
        images = torch.cat(data)
        if images.ndim != 2 or images.shape[1] != 3 * 32 * 32:
            raise CorruptFileError(f"{path}: {split} rows have {images.shape[-1]} values, expected 3072")
        out[f"{split}_images"] = images.reshape(-1, 3, 32, 32)
        out[f"{split}_labels"] = torch.cat(labels)
    return out


def load_cifar10(root: str | os.PathLike = DATA_DIR, download: bool = True, md5: str = CIFAR10_MD5) -> Dataset:
    """CIFAR-10 as a :class:`Dataset`: from the cache, else the archive, else a download.

    Raises:
        FileNotFoundError: not on disk and ``download`` is False.
        CorruptFileError: a damaged archive or cache (the message says what to delete).
        OSError: the download failed (no internet).
    """
    root = Path(root)
    cache, archive = root / CIFAR10_CACHE, root / CIFAR10_ARCHIVE
    if cache.exists():
        tensors = load_checked(cache, kind="cifar10")
    else:
        if archive.exists():
            verify_archive(archive, md5)
        elif download:
            download_cifar10(root)
        else:
            raise FileNotFoundError(f"CIFAR-10 is not in {root}; call kdtutor.data.download_cifar10()")
        tensors = parse_cifar_archive(archive)
        save_checked(tensors, cache, kind="cifar10")
    train = Split(tensors["train_images"], tensors["train_labels"])
    perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_val = len(train) // 10  # 5,000 of 50,000
    return Dataset(
        "CIFAR-10", list(CIFAR10_CLASSES),
        Split(train.images[perm[n_val:]], train.labels[perm[n_val:]]),
        Split(train.images[perm[:n_val]], train.labels[perm[:n_val]]),
        Split(tensors["test_images"], tensors["test_labels"]),
    )


def cifar10_available(root: str | os.PathLike = DATA_DIR) -> bool:
    """Whether CIFAR-10 is already on disk (cache or archive); nothing is downloaded."""
    root = Path(root)
    return (root / CIFAR10_CACHE).exists() or (root / CIFAR10_ARCHIVE).exists()


# --------------------------------------------------------------------------- stand-in
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


# --------------------------------------------------------------------------- digits
def load_digits(seed: int = 0) -> Dataset:
    """scikit-learn's 1,797 handwritten digits (8×8, 17 grey levels) as a :class:`Dataset`.

    Stratified splits: 60 % train, 20 % validation, 20 % test (fixed by ``seed``).
    Images are ``(N, 1, 8, 8) uint8`` with the 0–16 levels scaled to 0–240.
    """
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_digits()
    images = torch.as_tensor(bunch.images * 15, dtype=torch.uint8)[:, None]
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)
    idx = list(range(len(labels)))
    train_idx, rest = train_test_split(idx, test_size=0.4, stratify=bunch.target, random_state=seed)
    val_idx, test_idx = train_test_split(rest, test_size=0.5, stratify=bunch.target[rest], random_state=seed)
    take = lambda ix: Split(images[ix], labels[ix])  # noqa: E731
    return Dataset("digits (scikit-learn)", [str(d) for d in range(10)], take(train_idx), take(val_idx), take(test_idx))


# --------------------------------------------------------------------------- by profile
def standin_banner(reason: str) -> str:
    line = "=" * 78
    return (f"{line}\n  USING THE STAND-IN DATA SET — results below are NOT CIFAR-10 results.\n"
            f"  Why: {reason}\n  It has CIFAR-10's shapes (3×32×32) but is generated: coloured shapes.\n{line}")


def load_dataset(profile, root: str | os.PathLike = DATA_DIR, verbose: bool = True) -> Dataset:
    """The data set a profile asks for, cut to its sizes.

    ``profile.dataset == "standin"`` gives the stand-in. ``"cifar10"`` gives
    CIFAR-10, downloading it if needed; if that fails (no internet) it falls back
    to the stand-in and prints a banner saying so.
    """
    if profile.dataset == "standin":
        data = make_standin(profile.n_train or 45000, profile.n_val or 5000, profile.n_test or 10000)
    elif profile.dataset == "cifar10":
        try:
            data = load_cifar10(root, download=os.environ.get("KDTUTOR_OFFLINE") != "1")
        except (OSError, FileNotFoundError) as e:
            if verbose:
                print(standin_banner(f"CIFAR-10 is not in {root} and could not be downloaded ({e})."))
            data = make_standin(profile.n_train or 45000, profile.n_val or 5000, profile.n_test or 10000)
    else:
        raise ValueError(f"unknown data set {profile.dataset!r} in profile {profile.name!r}")
    return data.subset(profile.n_train, profile.n_val, profile.n_test)


# --------------------------------------------------------------------------- augmentation
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
