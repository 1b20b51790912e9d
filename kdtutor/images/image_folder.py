"""Lesson 03 — your own images: a folder, or a ``.tar``, ``.tar.gz`` or ``.zip`` of one.

The layout is torchvision's ``ImageFolder``, one folder per split and per class::

    <root>/train/<class>/<any name>.jpg|.jpeg|.png
    <root>/test/<class>/…
    <root>/val/<class>/…          (optional)

``<root>`` may be the path itself or one folder inside it (an archive usually
holds one top folder). Without ``val/``, the validation split is carved from
``train`` exactly as for CIFAR-10: a fixed random 10 % (seed
:data:`kdtutor.images.cifar10.SPLIT_SEED`).

Images are decoded once (Pillow), converted to RGB and kept as ``uint8``
``(N, 3, H, W)``; the tensors are cached in one checksummed file named after the
source's size and checksum, so a second load takes seconds and a changed source is
read again. Every image must have the same size.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from kdtutor.images.cifar10 import CIFAR10_CLASSES, SPLIT_SEED
from kdtutor.images.splits import Dataset, Split
from kdtutor.storage import CorruptFileError, DATA_DIR, load_checked, save_checked

IMAGE_SUFFIXES = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}
SPLITS = ("train", "val", "test")
CACHE_DIR = DATA_DIR / "image_cache"
CACHE_VERSION = 1  # bump when the decoded format changes


@dataclass
class _Entry:
    """One image file: its split, class, path inside the source, and how to read its bytes."""

    split: str
    cls: str
    name: str
    read: callable


# --------------------------------------------------------------------------- reading the source
def _walk_folder(path: Path):
    """``(relative posix path, is_dir, reader)`` for everything below the folder ``path``."""
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for d in dirnames:
            yield (Path(dirpath, d).relative_to(path).as_posix(), True, None)
        for f in sorted(filenames):
            full = Path(dirpath, f)
            yield (full.relative_to(path).as_posix(), False, full.read_bytes)


def _walk_tar(tar: tarfile.TarFile):
    for m in tar:  # streams through a .tar.gz once
        if m.isdir():
            yield (m.name.rstrip("/"), True, None)
        elif m.isfile():
            data = tar.extractfile(m).read()
            yield (m.name, False, lambda data=data: data)


def _walk_zip(zf: zipfile.ZipFile):
    for info in zf.infolist():
        if info.is_dir():
            yield (info.filename.rstrip("/"), True, None)
        else:
            yield (info.filename, False, lambda info=info: zf.read(info))


def source_kind(path: Path) -> str:
    """``"folder"``, ``"tar"`` or ``"zip"``; a clear error for anything else."""
    if not path.exists():
        raise FileNotFoundError(f"no image folder or archive at {path}")
    if path.is_dir():
        return "folder"
    if zipfile.is_zipfile(path):
        return "zip"
    if tarfile.is_tarfile(path):
        return "tar"
    raise ValueError(f"{path} is neither a folder nor a .tar, .tar.gz or .zip archive")


def source_fingerprint(path: Path) -> str:
    """A short checksum of the source: of the bytes for an archive; of every file's name, size and
    modification time for a folder (so editing, adding or removing an image changes it)."""
    h = hashlib.sha256()
    if path.is_dir():
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            for f in sorted(filenames):
                st = Path(dirpath, f).stat()
                h.update(f"{Path(dirpath, f).relative_to(path).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    else:
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
    return h.hexdigest()[:16]


def _split_parts(rel: str):
    """``(prefix, split, rest)`` if the path has a split folder in it, else None."""
    parts = PurePosixPath(rel).parts
    if any(p.startswith(".") or p == "__MACOSX" for p in parts):
        return None  # hidden files and macOS resource forks
    for i, p in enumerate(parts):
        if p in SPLITS:
            return parts[:i], p, parts[i + 1:]
    return None


def _collect(walk, source: Path) -> tuple[list[_Entry], dict[str, set[str]]]:
    """The image entries and, per split, every class folder seen (also empty ones)."""
    entries, class_dirs, prefixes = [], {s: set() for s in SPLITS}, set()
    for rel, is_dir, read in walk:
        found = _split_parts(rel)
        if found is None:
            continue
        prefix, split, rest = found
        if is_dir and len(rest) == 1:
            class_dirs[split].add(rest[0])
            prefixes.add(prefix)
        elif not is_dir and len(rest) == 2 and PurePosixPath(rest[1]).suffix.lower() in IMAGE_SUFFIXES:
            class_dirs[split].add(rest[0])
            prefixes.add(prefix)
            entries.append(_Entry(split, rest[0], rel, read))
    if len(prefixes) > 1:
        roots = sorted("/".join(p) or "." for p in prefixes)
        raise ValueError(f"{source} holds more than one image-folder root ({', '.join(roots)}); keep one")
    return entries, class_dirs


# --------------------------------------------------------------------------- decoding
def decode_image(raw: bytes, name: str) -> np.ndarray:
    """Decode one JPEG or PNG into ``(H, W, 3) uint8`` RGB; a ValueError naming the file if it cannot."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(raw)) as img:
            return np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"cannot decode the image {name} ({e})") from e


def _check_classes(source: Path, class_dirs: dict[str, set[str]], entries: list[_Entry]) -> list[str]:
    for split in ("train", "test"):
        if not class_dirs[split]:
            raise ValueError(f"{source} has no {split}/<class>/<image> files: expected the ImageFolder layout "
                             f"train/<class>/*.jpg and test/<class>/*.jpg (val/ optional)")
    counts = {}
    for e in entries:
        counts[e.split, e.cls] = counts.get((e.split, e.cls), 0) + 1
    for split, classes in class_dirs.items():
        for cls in sorted(classes):
            if not counts.get((split, cls)):
                raise ValueError(f"{source}: the class folder {split}/{cls}/ has no images "
                                 f"(.jpg, .jpeg or .png); add some or remove it")
    train = class_dirs["train"]
    for split in ("val", "test"):
        extra = sorted(class_dirs[split] - train)
        if extra:
            raise ValueError(f"{source}: {split}/ has classes that train/ lacks: {', '.join(extra)}")
    return list(CIFAR10_CLASSES) if train == set(CIFAR10_CLASSES) else sorted(train)


def _decode_all(source: Path, entries: list[_Entry], classes: list[str], progress: bool) -> dict:
    from tqdm.auto import tqdm

    index = {c: i for i, c in enumerate(classes)}
    out, size, first = {}, None, None
    for split in SPLITS:
        chosen = sorted((e for e in entries if e.split == split), key=lambda e: (index[e.cls], e.name))
        if not chosen:
            continue
        images = []
        for e in tqdm(chosen, desc=f"decoding {split}", disable=not progress, leave=False):
            img = decode_image(e.read(), e.name)
            if size is None:
                size, first = img.shape[:2], e.name
            elif img.shape[:2] != size:
                raise ValueError(f"{source}: {e.name} is {img.shape[1]}×{img.shape[0]} pixels but {first} is "
                                 f"{size[1]}×{size[0]}; resize the images to one size first")
            images.append(img)
        out[f"{split}_images"] = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
        out[f"{split}_labels"] = torch.tensor([index[e.cls] for e in chosen], dtype=torch.int64)
    formats = {IMAGE_SUFFIXES[PurePosixPath(e.name).suffix.lower()] for e in entries}
    out["format"] = "/".join(sorted(formats))
    out["classes"] = classes
    return out


def read_image_folder(path: str | os.PathLike, progress: bool = True) -> dict:
    """Decode every image of the source: ``{split}_images (N, 3, H, W) uint8``, ``{split}_labels (N,)``
    for ``train``, ``test`` (and ``val`` if present), plus ``classes`` and ``format`` ("JPEG", "PNG", …)."""
    path = Path(path)
    kind = source_kind(path)
    try:
        if kind == "folder":
            entries, dirs = _collect(_walk_folder(path), path)
            return _decode_all(path, entries, _check_classes(path, dirs, entries), progress)
        opener = tarfile.open(path, "r:*") if kind == "tar" else zipfile.ZipFile(path)
        with opener as archive:
            walk = _walk_tar(archive) if kind == "tar" else _walk_zip(archive)
            entries, dirs = _collect(walk, path)
            return _decode_all(path, entries, _check_classes(path, dirs, entries), progress)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as e:
        raise CorruptFileError(f"cannot read the archive {path} ({e}); is it complete?") from e


def write_image_folder(root: str | os.PathLike, split: str, images: torch.Tensor, labels: torch.Tensor,
                       classes: list[str], fmt: str = "png") -> Path:
    """Save ``images (N, 3, H, W) uint8`` as ``root/<split>/<class>/<i>.<fmt>`` (the layout this module reads).

    For trying the loader on a folder of your own, or exporting a data set to share.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if f".{fmt.lower()}" not in IMAGE_SUFFIXES:
        raise ValueError(f"fmt must be one of {sorted(s[1:] for s in IMAGE_SUFFIXES)}, got {fmt!r}")
    from PIL import Image

    root = Path(root)
    for i, (img, y) in enumerate(zip(images, labels.tolist())):
        folder = root / split / classes[y]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(folder / f"{i:05d}.{fmt.lower()}")
    return root


# --------------------------------------------------------------------------- the data set
def default_name(classes: list[str], image_format: str, source: Path) -> str:
    """What the data set is called in every title and table.

    CIFAR-10's ten classes read from images name the copy and its format, e.g.
    "CIFAR-10 (JPEG copy)" — never plain "CIFAR-10", which is kept for the official
    archive. Any other folder is named after itself.
    """
    if classes == list(CIFAR10_CLASSES):
        return f"CIFAR-10 ({image_format} copy)"
    stem = source.name
    for suffix in (".tar.gz", ".tgz", ".tar", ".zip"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    return f"{stem} (image folder)"


def load_image_folder(path: str | os.PathLike, name: str | None = None, cache_dir: str | os.PathLike | None = None,
                      progress: bool = True) -> Dataset:
    """A :class:`Dataset` from an ImageFolder-layout folder or archive (see the module docstring).

    Args:
        path: a folder, or a ``.tar``, ``.tar.gz`` / ``.tgz`` or ``.zip`` file.
        name: what to call the data set (default: :func:`default_name`).
        cache_dir: where the decoded tensors are cached (default ``data/image_cache``);
            a cache that cannot be written is skipped with a warning.
    Raises:
        FileNotFoundError: nothing at ``path``.
        ValueError: not the layout above, an image that does not decode (the message
            names it), images of different sizes, a class folder without images, a
            class in ``test/`` or ``val/`` that ``train/`` lacks.
    """
    path = Path(path).expanduser().resolve()
    kind = source_kind(path)
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if kind == "folder" else path.stat().st_size
    cache = Path(cache_dir or CACHE_DIR) / f"{path.name}-{size}-{source_fingerprint(path)}-v{CACHE_VERSION}.pt"
    tensors = None
    if cache.exists():
        try:
            tensors = load_checked(cache, kind="imagefolder")
        except CorruptFileError as e:
            warnings.warn(f"ignoring a damaged cache ({e}); decoding the images again")
    if tensors is None:
        tensors = read_image_folder(path, progress=progress)
        try:
            save_checked(tensors, cache, kind="imagefolder")
        except OSError as e:
            warnings.warn(f"could not cache the decoded images in {cache} ({e}); carrying on without a cache")
    classes = list(tensors["classes"])
    train = Split(tensors["train_images"], tensors["train_labels"])
    if "val_images" in tensors:
        val = Split(tensors["val_images"], tensors["val_labels"])
    else:  # as for CIFAR-10: a fixed random tenth of train
        perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(SPLIT_SEED))
        n_val = len(train) // 10
        train, val = (Split(train.images[perm[n_val:]], train.labels[perm[n_val:]]),
                      Split(train.images[perm[:n_val]], train.labels[perm[:n_val]]))
    test = Split(tensors["test_images"], tensors["test_labels"])
    name = name or default_name(classes, tensors["format"], path)
    return Dataset(name, classes, train, val, test, source=str(path))
