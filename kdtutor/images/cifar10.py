"""Lesson 03 — the official CIFAR-10 archive: download, verify (MD5), parse, cache (SHA-256).

Splits: 45,000 train / 5,000 validation (a fixed random split of the official
training set, :data:`SPLIT_SEED`) / the official 10,000 test images.
"""

from __future__ import annotations

import os
import pickle
import warnings
import tarfile
from pathlib import Path

import torch

from kdtutor.images.splits import Dataset, Split
from kdtutor.storage import CorruptFileError, DATA_DIR, load_checked, save_checked, warn_if_unwritable

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_CACHE = "cifar10_uint8.pt"
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
SPLIT_SEED = 0  # fixes which 5,000 training images form the validation split
MD5_ADVICE = ("delete it and download again; if it happens twice, open the file: a proxy or captive portal "
              "may have saved an HTML page in its place")


class DataUnavailable(OSError):
    """CIFAR-10 is not on disk and could not be downloaded (no internet, or downloads switched off)."""


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
    try:
        download_url(CIFAR10_URL, str(root), filename=part.name)
    except OSError as e:  # no network, DNS, HTTP errors (urllib's are OSErrors), or an unwritable folder
        part.unlink(missing_ok=True)
        raise DataUnavailable(f"CIFAR-10 is not in {root} and could not be downloaded from {CIFAR10_URL} ({e})") from e
    if not check_integrity(str(part), CIFAR10_MD5):
        part.unlink(missing_ok=True)
        raise CorruptFileError(f"the download of {CIFAR10_URL} is incomplete or not the CIFAR-10 archive "
                               f"(MD5 mismatch); it was removed. If this repeats, a proxy or captive portal may be "
                               f"answering instead of the server: download the archive in a browser and put it in {root}")
    part.rename(path)
    return path


def verify_archive(path: str | os.PathLike, md5: str = CIFAR10_MD5) -> None:
    """Raise :class:`CorruptFileError` unless the file at ``path`` has the expected MD5."""
    from torchvision.datasets.utils import calculate_md5

    found = calculate_md5(str(path))
    if found != md5:
        raise CorruptFileError(
            f"{path} is corrupt, incomplete or not the CIFAR-10 archive (MD5 {found}, expected {md5}): {MD5_ADVICE}"
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
        DataUnavailable: not on disk, and ``download`` is False or the download failed.
        CorruptFileError: a damaged archive or cache (the message says what to delete).

    The cache is a convenience: if it cannot be written (a read-only or full folder)
    a warning says so and the data are used from memory.
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
            raise DataUnavailable(f"CIFAR-10 is not in {root} and downloading is switched off "
                                  "(KDTUTOR_OFFLINE=1 or download=False)")
        tensors = parse_cifar_archive(archive)
        try:
            save_checked(tensors, cache, kind="cifar10")
        except OSError as e:
            warnings.warn(f"could not write the CIFAR-10 cache {cache} ({e}); carrying on without it")
    return _as_dataset(tensors, archive)


def load_official_copy(path: str | os.PathLike, md5: str | None = None) -> Dataset:
    """CIFAR-10 from a copy of the official archive somewhere of the user's (``$KDTUTOR_CIFAR10``).

    The archive is verified by MD5 on every load (so a damaged or replaced file is noticed) and
    parsed once; the tensors are cached under ``$KDTUTOR_DATA/cifar10_copies/``, keyed by that MD5 —
    never beside the archive (the user's folder is only read), and a ``cifar10_uint8.pt`` found
    beside it is ignored.

    Raises:
        CorruptFileError: not the official archive (the file is left as it is; the message says so).
    """
    from torchvision.datasets.utils import calculate_md5

    path, md5 = Path(path), md5 or CIFAR10_MD5
    found = calculate_md5(str(path))
    if found != md5:
        raise CorruptFileError(f"{path} is truncated, damaged or not the official CIFAR-10 archive (MD5 {found}, "
                               f"expected {md5}); kdtutor left it as it is: copy or download it again")
    cache = Path(DATA_DIR) / "cifar10_copies" / f"cifar10_uint8-{found}.pt"
    tensors = None
    if cache.exists():
        try:
            tensors = load_checked(cache, kind="cifar10")
        except CorruptFileError as e:
            warnings.warn(f"ignoring a damaged cache ({e}); parsing {path} again")
    if tensors is None:
        keep = warn_if_unwritable(cache.parent, "the CIFAR-10 cache")  # said before the parsing, not after
        tensors = parse_cifar_archive(path)
        try:
            if keep:
                save_checked(tensors, cache, kind="cifar10")
        except OSError as e:
            warnings.warn(f"could not write the CIFAR-10 cache {cache} ({e}); carrying on without it")
    return _as_dataset(tensors, path)


def _as_dataset(tensors: dict, source: Path) -> Dataset:
    """The parsed archive as a :class:`Dataset`: a fixed random tenth of train (seed :data:`SPLIT_SEED`) validates."""
    train = Split(tensors["train_images"], tensors["train_labels"])
    perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_val = len(train) // 10  # 5,000 of 50,000
    return Dataset(
        "CIFAR-10", list(CIFAR10_CLASSES),
        Split(train.images[perm[n_val:]], train.labels[perm[n_val:]]),
        Split(train.images[perm[:n_val]], train.labels[perm[:n_val]]),
        Split(tensors["test_images"], tensors["test_labels"]),
        source=str(source),
    )


def cifar10_available(root: str | os.PathLike = DATA_DIR) -> bool:
    """Whether CIFAR-10 is already on disk, where the lessons look for it: the folder or archive
    ``$KDTUTOR_CIFAR10`` names when it is set (then only there), else the cache or archive in ``root``;
    nothing is downloaded."""
    from kdtutor.images.data import CIFAR10_ENV

    local = os.environ.get(CIFAR10_ENV, "").strip()
    if local:
        return Path(local).expanduser().exists()
    root = Path(root)
    return (root / CIFAR10_CACHE).exists() or (root / CIFAR10_ARCHIVE).exists()


