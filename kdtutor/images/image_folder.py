"""Lesson 03 — your own images: a folder, or a ``.tar``, ``.tar.gz`` or ``.zip`` of one.

The layout is torchvision's ``ImageFolder``, one folder per split and per class::

    <root>/train/<class>/<any name>.jpg
    <root>/test/<class>/…
    <root>/val/<class>/…          (optional)

``<root>`` may be the path itself or one folder inside it (an archive usually
holds one top folder). Without ``val/``, the validation split is carved from
``train`` exactly as for CIFAR-10: a fixed random 10 % (seed
:data:`kdtutor.images.cifar10.SPLIT_SEED`), at least one image, so ``train/`` then needs at
least 2 images (fewer is an error that says so, not an empty validation split).

What is read, and what is not (nothing is dropped silently):

* **Image types**: ``.jpg .jpeg .png .bmp .gif .webp .tif .tiff`` (:data:`IMAGE_SUFFIXES`, any
  case). A GIF or multi-page TIFF gives its first frame; every image is converted to RGB.
* **Nested folders** below a class folder are loaded as that class, as torchvision's
  ``ImageFolder`` does: ``train/cat/indoor/1.png`` is a cat.
* **Skipped, and listed in one warning** (:class:`SkippedFiles`, repeated on a cached load):
  files under ``train/``, ``val/``, ``test/`` that are not images by their extension, hidden
  files (``.DS_Store``, ``._x.jpg``), files not inside a class folder, special files (FIFOs,
  devices, sockets; never opened) and links that lead nowhere. A class folder left with no
  image is an error that says what was in it. ``__MACOSX/`` and hidden folders above the
  split folders are ignored.
* **Limits**: a file over :func:`kdtutor.image_sources.member_cap` (64 MiB; raise with
  ``KDTUTOR_MAX_MEMBER_BYTES=<bytes>`` or ``max_member_bytes=``) or an image of more than
  :func:`pixel_cap` pixels (width × height, default 40 million; raise with
  ``KDTUTOR_MAX_PIXELS=<pixels>`` or ``max_pixels=``) is an error naming it. Non-images are never read.
* **Archives** are read completely or not at all (:mod:`kdtutor.image_sources`): a truncated or
  damaged one is an error naming it; links inside a tar are followed within the archive.

Images are decoded once (Pillow) and kept as ``uint8`` ``(N, 3, H, W)``. **Sizes**: without
``size`` every image must have the same size (a mixed folder is an error that says how to pass
``size``). ``size=64`` resizes every image to 64×64 (the aspect ratio changes);
``size=64, crop=True`` resizes the shorter side to 64 and keeps the central 64×64, as
torchvision's ``Resize(64)`` + ``CenterCrop(64)``; ``size=(48, 64)`` gives 48 rows × 64 columns.
Resampling is Pillow's bilinear filter, antialiased when shrinking. The choice is part of the
data set's name (e.g. "pets (image folder, 64×64 centre crops)"), so every table says it.

**Memory**: every decoded image of every split is held in memory as ``uint8`` (and the training
split on the training device), one original at a time being decoded and resized. The decoded data
set may take up to :func:`dataset_bytes_cap` (default 2 GiB: about 170,000 images at 64×64 or
700,000 at 32×32; raise with ``KDTUTOR_MAX_DATASET_BYTES=<bytes>`` or ``max_dataset_bytes=``): a
folder over it is an error, raised after the first image, that says which ``size`` would fit.
At the cap, loading needs about 5 × 2 GiB of RAM for a moment (the :class:`Dataset`'s mean and std
are computed on a float32 copy of the training images): the default suits a 16 GB machine. Larger
collections need a streaming loader, which kdtutor does not have. The tensors are cached in one checksummed file under
``$KDTUTOR_DATA/image_cache`` named after a hash of the source's *content* (the archive's
bytes; for a folder, every image's bytes and every file's name and size), so a second load
is fast and a changed or replaced image — even one of the same size and time stamp — is read
again. The cache records that hash and is used only if it matches.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from kdtutor.fingerprint import digest
from kdtutor.images.cifar10 import CIFAR10_CLASSES, SPLIT_SEED
from kdtutor.images.image_sources import _positive_setting, member_cap, source_kind, walk_source
from kdtutor.images.splits import Dataset, Split
from kdtutor.storage import (CorruptFileError, DATA_DIR, load_checked, save_checked, sha256_file,
                             warn_if_unwritable)

IMAGE_SUFFIXES = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".gif": "GIF", ".webp": "WebP",
                  ".tif": "TIFF", ".tiff": "TIFF"}
SPLITS = ("train", "val", "test")
CACHE_DIR = DATA_DIR / "image_cache"
CACHE_VERSION = 2  # bump when the decoded format changes
MAX_PIXELS_ENV = "KDTUTOR_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 40_000_000
MAX_DATASET_BYTES_ENV = "KDTUTOR_MAX_DATASET_BYTES"
DEFAULT_MAX_DATASET_BYTES = 2 * 2**30
MIN_TRAIN_WITHOUT_VAL = 2  # one (of a tenth, at least one) is carved off for validation, one left to train on


class SkippedFiles(UserWarning):
    """Some files under the split folders were not loaded (the message lists them by kind and reason)."""


def pixel_cap(value: int | None = None) -> int:
    """The per-image cap on width × height: ``value`` if given, else ``$KDTUTOR_MAX_PIXELS``, else 40 million."""
    return _positive_setting(value, MAX_PIXELS_ENV, DEFAULT_MAX_PIXELS)


def dataset_bytes_cap(value: int | None = None) -> int:
    """The cap on the decoded data set, ``N × 3 × H × W`` bytes over all splits: ``value`` if given, else
    ``$KDTUTOR_MAX_DATASET_BYTES``, else 2 GiB."""
    return _positive_setting(value, MAX_DATASET_BYTES_ENV, DEFAULT_MAX_DATASET_BYTES)


def check_size(size, crop: bool = False) -> tuple[int, int] | None:
    """``size`` as ``(H, W)`` pixels (an int ``s`` is ``(s, s)``), or None to keep the images' own size.

    Raises:
        ValueError: not a positive whole number or a pair of them; ``crop`` without ``size``.
    """
    if size is None:
        if crop:
            raise ValueError("crop=True needs a size: e.g. load_image_folder(path, size=64, crop=True)")
        return None
    pair = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in pair):
        raise ValueError(f"size must be a whole number of pixels ≥ 1 (e.g. 64) or (height, width), got {size!r}")
    return pair


def size_phrase(size: tuple[int, int], crop: bool) -> str:
    """How the images were made one size, in words: "resized to 64×64" or "64×64 centre crops"."""
    h, w = size
    return f"{w}×{h} centre crops" if crop else f"resized to {w}×{h}"


def resize_image(img, size: tuple[int, int], crop: bool = False):
    """A Pillow image resized to ``size = (H, W)``: directly (``crop=False``), or (``crop=True``) scaled
    with its aspect ratio kept until it covers ``size``, then cut to the central ``H × W`` (for a square
    ``size`` exactly torchvision's ``Resize(s)`` + ``CenterCrop(s)``). Bilinear, antialiased."""
    from PIL import Image

    h, w = size
    if not crop:
        return img.resize((w, h), Image.BILINEAR)
    if h / img.height >= w / img.width:  # the height decides: it becomes h
        new = (max(w, int(h * img.width / img.height)), h)
    else:
        new = (w, max(h, int(w * img.height / img.width)))
    big = img.resize(new, Image.BILINEAR)
    top, left = int(round((big.height - h) / 2.0)), int(round((big.width - w) / 2.0))
    return big.crop((left, top, left + w, top + h))


@dataclass
class _Entry:
    """One image file: its split, class, path inside the source, and ``read(cap) → bytes``."""

    split: str
    cls: str
    name: str
    read: callable = None


@dataclass
class _Listing:
    """What a walk found: image entries, every class folder per split, and the files not loaded."""

    entries: list = field(default_factory=list)
    class_dirs: dict = field(default_factory=lambda: {s: set() for s in SPLITS})
    skipped: list = field(default_factory=list)  # (path, reason)
    prefixes: set = field(default_factory=set)


# --------------------------------------------------------------------------- what is an image of which class
def _split_parts(rel: str):
    """``(prefix, split, rest)`` if the path has a split folder in it, else None (also for paths
    under ``__MACOSX`` or a hidden folder above the split)."""
    parts = PurePosixPath(rel).parts
    if "__MACOSX" in parts:
        return None
    for i, p in enumerate(parts):
        if p.startswith("."):
            return None
        if p in SPLITS:
            return parts[:i], p, parts[i + 1:]
    return None


def _suffix(name: str) -> str:
    """``".png"`` for ``"a/b.PNG"`` ("" without one): as ``PurePosixPath(name).suffix.lower()``, faster."""
    return os.path.splitext(name)[1].lower()


def _skip_reason(item, rest) -> str | None:
    """Why a file below a split folder is not loaded (None: it is an image of class ``rest[0]``)."""
    if item.kind != "file":
        return item.kind
    if any(p.startswith(".") for p in rest):
        return "hidden file"
    if len(rest) < 2:
        return "not inside a class folder"
    suffix = _suffix(rest[-1])
    if suffix not in IMAGE_SUFFIXES:
        return f"not an image by its extension ({suffix or 'none'})"
    return None


def _collect(items, source: Path, read_now=None) -> _Listing:
    """Sort the items of a walk into a :class:`_Listing`. With ``read_now(read) → bytes`` each image's
    bytes are read as the walk reaches it (an archive is read in one pass, while it is open)."""
    out = _Listing()
    for item in items:
        found = _split_parts(item.rel)
        if found is None:
            continue
        prefix, split, rest = found
        if item.kind == "dir":
            if len(rest) == 1 and not rest[0].startswith("."):
                out.class_dirs[split].add(rest[0])
                out.prefixes.add(prefix)
            continue
        if not rest:
            continue
        if len(rest) >= 2:  # inside a class folder (a loose file in a split folder says nothing of the root)
            out.prefixes.add(prefix)
            if not rest[0].startswith("."):
                out.class_dirs[split].add(rest[0])
        reason = _skip_reason(item, rest)
        if reason:
            out.skipped.append((item.rel, reason))
        elif read_now:
            data = read_now(item.read)
            out.entries.append(_Entry(split, rest[0], item.rel, read=lambda cap, data=data: data))
        else:
            out.entries.append(_Entry(split, rest[0], item.rel, read=item.read))
    if len(out.prefixes) > 1:
        roots = sorted("/".join(p) or "." for p in out.prefixes)
        raise ValueError(f"{source} holds more than one image-folder root ({', '.join(roots)}); keep one")
    return out


def _by_reason(skipped: list, examples: int = 3) -> str:
    """``"2 × hidden file (e.g. a, b); 1 × …"``: the skipped files counted by reason, most common first."""
    by_reason = {}
    for rel, reason in skipped:
        by_reason.setdefault(reason, []).append(rel)
    parts = []
    for reason, names in sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        more = f", … {len(names) - examples} more" if len(names) > examples else ""
        parts.append(f"{len(names)} × {reason} (e.g. {', '.join(names[:examples])}{more})")
    return "; ".join(parts)


def skipped_summary(source: Path, skipped: list) -> str | None:
    """One message listing the files not loaded, counted by reason (with a few names each); None if none."""
    if not skipped:
        return None
    return (f"{source}: {len(skipped)} file(s) under train/, val/, test/ were not loaded: {_by_reason(skipped)}. "
            f"Images load from {' '.join(sorted(IMAGE_SUFFIXES))}; convert or remove the rest to silence this")


# --------------------------------------------------------------------------- decoding
def decode_image(raw: bytes, name: str, limit: int | None = None, size: tuple[int, int] | None = None,
                 crop: bool = False) -> np.ndarray:
    """Decode one image file into ``(H, W, 3) uint8`` RGB (a GIF or TIFF: its first frame), resized to
    ``size = (H, W)`` if given (:func:`resize_image`).

    Raises:
        ValueError: it does not decode, or has more than ``limit`` pixels (default :func:`pixel_cap`),
            the message naming the file.
    """
    from PIL import Image, UnidentifiedImageError

    limit = pixel_cap(limit)
    try:
        with _open_image(Image, raw) as img:
            w, h = img.size
            if w * h > limit:
                raise ValueError(f"the image {name} is {w}×{h} = {w * h:,} pixels, over the limit of {limit:,}; "
                                 f"resize it, or raise the limit ({MAX_PIXELS_ENV}=<pixels> or max_pixels=…)")
            rgb = img.convert("RGB")
            return np.asarray(resize_image(rgb, size, crop) if size else rgb)
    except (UnidentifiedImageError, OSError, SyntaxError, EOFError) as e:
        raise ValueError(f"cannot decode the image {name} ({e})") from e


def _open_image(Image, raw: bytes):
    """``Image.open`` of the bytes; for an image beyond Pillow's decompression-bomb limit, opened again with
    that check off, since :func:`decode_image` checks the size against its own limit (which a user can
    raise) and names the file."""
    try:
        return Image.open(io.BytesIO(raw))
    except Image.DecompressionBombError:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            return Image.open(io.BytesIO(raw))
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _check_classes(source: Path, listing: _Listing) -> list[str]:
    class_dirs, entries = listing.class_dirs, listing.entries
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
                inside = [(r, why) for r, why in listing.skipped if _split_parts(r)[1:2] == (split,)
                          and _split_parts(r)[2][:1] == (cls,)]
                what = f"; in it: {_by_reason(inside)}" if inside else ""
                raise ValueError(f"{source}: the class folder {split}/{cls}/ has no images it can load "
                                 f"({' '.join(sorted(IMAGE_SUFFIXES))}){what}; add some or remove it")
    train = class_dirs["train"]
    for split in ("val", "test"):
        extra = sorted(class_dirs[split] - train)
        if extra:
            raise ValueError(f"{source}: {split}/ has classes that train/ lacks: {', '.join(extra)}")
    return list(CIFAR10_CLASSES) if train == set(CIFAR10_CLASSES) else sorted(train)


def _check_memory(source: Path, n: int, shape, cap: int, resized: bool) -> None:
    """Refuse ``n`` decoded images of ``shape (H, W, 3)`` taking more than ``cap`` bytes in all."""
    h, w = shape[:2]
    need = n * 3 * h * w
    if need > cap:
        fits = int((cap / (3 * n)) ** 0.5)
        raise ValueError(f"{source}: {n:,} images at {w}×{h} pixels take {need / 2**30:.2f} GiB decoded, over the "
                         f"limit of {cap / 2**30:.2f} GiB (all decoded images are held in memory): "
                         f"{'pass a smaller size, e.g. ' if resized else 'pass '}size={max(fits, 1)} "
                         f"(load_image_folder(path, size=...)), use fewer images, or raise the limit "
                         f"({MAX_DATASET_BYTES_ENV}=<bytes> or max_dataset_bytes=…)")


def _stack(source: Path, listing: _Listing, classes: list[str], decode, progress: bool, cap: int,
           resized: bool = False) -> dict:
    from tqdm.auto import tqdm

    index = {c: i for i, c in enumerate(classes)}
    out, size, first = {}, None, None
    for split in SPLITS:
        chosen = sorted((e for e in listing.entries if e.split == split), key=lambda e: (index[e.cls], e.name))
        if not chosen:
            continue
        images = []
        for e in tqdm(chosen, desc=f"decoding {split}", disable=not progress, leave=False):
            img = decode(e.read, e.name)
            if size is None:
                size, first = img.shape[:2], e.name
                _check_memory(source, len(listing.entries), img.shape, cap, resized)
            elif img.shape[:2] != size:
                raise ValueError(f"{source}: {e.name} is {img.shape[1]}×{img.shape[0]} pixels but {first} is "
                                 f"{size[1]}×{size[0]}: pass a size to make them one size, e.g. "
                                 f"load_image_folder(path, size={min(size)}) (resized; the aspect ratio changes) or "
                                 f"size={min(size)}, crop=True (the central square; --size and --crop on the "
                                 f"command line), or resize the files yourself")
            images.append(img)
        out[f"{split}_images"] = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
        out[f"{split}_labels"] = torch.tensor([index[e.cls] for e in chosen], dtype=torch.int64)
    formats = {IMAGE_SUFFIXES[_suffix(e.name)] for e in listing.entries}
    out["format"] = "/".join(sorted(formats))
    out["classes"] = classes
    out["skipped"] = skipped_summary(source, listing.skipped) or ""
    return out


def read_image_folder(path: str | os.PathLike, progress: bool = True, max_member_bytes: int | None = None,
                      max_pixels: int | None = None, size=None, crop: bool = False,
                      max_dataset_bytes: int | None = None) -> dict:
    """Decode every image of the source: ``{split}_images (N, 3, H, W) uint8``, ``{split}_labels (N,)``
    for ``train``, ``test`` (and ``val`` if present), plus ``classes``, ``format`` ("JPEG", "PNG", …)
    and ``skipped`` (the :func:`skipped_summary`, "" if nothing was skipped; also warned here).

    ``max_member_bytes`` / ``max_pixels`` / ``max_dataset_bytes``: the per-file, per-image and whole-set
    caps (default: the environment variables or defaults of the module docstring). ``size``, ``crop``:
    see the module docstring.
    """
    path = Path(path)
    kind = source_kind(path)
    size = check_size(size, crop)
    cap, pixels, total = member_cap(max_member_bytes), pixel_cap(max_pixels), dataset_bytes_cap(max_dataset_bytes)
    decode = lambda read, name: decode_image(read(cap), name, pixels, size, crop)  # noqa: E731
    if kind != "folder":  # one pass, in archive order: each image's bytes are read (capped) as it is reached
        from tqdm.auto import tqdm

        items = tqdm(walk_source(path, kind), desc="reading", unit=" files", disable=not progress, leave=False)
        listing = _collect(items, path, read_now=lambda read: read(cap))
    else:
        listing = _collect(walk_source(path, kind), path)
    tensors = _stack(path, listing, _check_classes(path, listing), decode, progress, total, size is not None)
    if tensors["skipped"]:
        warnings.warn(tensors["skipped"], SkippedFiles, stacklevel=2)
    return tensors


def source_fingerprint(path: str | os.PathLike) -> str:
    """A checksum (16 hex digits) of the source's content: of the bytes for an archive; for a folder,
    of every file's path and size and of the bytes of every file with an image extension (so
    replacing an image changes it even if its size and time stamp stay the same)."""
    path = Path(path)
    if not path.is_dir():
        return digest(sha256_file(path))
    parts = []
    for item in walk_source(path, "folder"):
        parts.append(f"{item.rel}\0{item.kind}\0{item.size}")
        if item.kind == "file" and _suffix(item.rel) in IMAGE_SUFFIXES:
            parts.append(sha256_file(path / item.rel))
    return digest(*parts)


def write_image_folder(root: str | os.PathLike, split: str, images: torch.Tensor, labels: torch.Tensor,
                       classes: list[str], fmt: str = "png", sizes: tuple[int, int] | None = None,
                       seed: int = 0) -> Path:
    """Save ``images (N, 3, H, W) uint8`` as ``root/<split>/<class>/<i>.<fmt>`` (the layout this module reads).

    For trying the loader on a folder of your own, or exporting a data set to share. ``sizes = (lo, hi)``
    resizes each image to its own random height and width, each drawn from ``lo … hi`` pixels (seeded by
    ``seed``; bilinear): a folder of mixed sizes, as real folders are.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if f".{fmt.lower()}" not in IMAGE_SUFFIXES:
        raise ValueError(f"fmt must be one of {sorted(s[1:] for s in IMAGE_SUFFIXES)}, got {fmt!r}")
    if sizes is not None and not (len(sizes) == 2 and 1 <= int(sizes[0]) <= int(sizes[1])):
        raise ValueError(f"sizes must be (lo, hi) pixels with 1 ≤ lo ≤ hi, got {sizes!r}")
    from PIL import Image

    root = Path(root)
    g = torch.Generator().manual_seed(seed)
    for i, (img, y) in enumerate(zip(images, labels.tolist())):
        folder = root / split / classes[y]
        folder.mkdir(parents=True, exist_ok=True)
        picture = Image.fromarray(img.permute(1, 2, 0).numpy())
        if sizes is not None:
            h, w = torch.randint(int(sizes[0]), int(sizes[1]) + 1, (2,), generator=g).tolist()
            picture = picture.resize((w, h), Image.BILINEAR)
        picture.save(folder / f"{i:05d}.{fmt.lower()}")
    return root


def export_classes(data: Dataset, root: str | os.PathLike, classes: list[str], sizes: tuple[int, int] | None = None,
                   fmt: str = "jpg", seed: int = 0) -> Path:
    """Write the training and test images of some ``classes`` of ``data`` as a new ImageFolder-layout folder
    ``root/{train,test}/<class>/`` (:func:`write_image_folder`; ``sizes``: mixed sizes). Written into a
    temporary folder beside ``root`` and renamed at the end, so ``root`` is complete or absent.

    Raises:
        FileExistsError: ``root`` exists (nothing is overwritten: delete it, or load it as it is).
        ValueError: a class that ``data`` does not have, or fewer than 2 classes.
    """
    root = Path(root)
    unknown = [c for c in classes if c not in data.classes]
    if unknown or len(set(classes)) < 2:
        raise ValueError(f"choose at least 2 of {data.name}'s classes {data.classes}; got {list(classes)}")
    if root.exists():
        raise FileExistsError(f"{root} exists: delete it to write it again, or load it as it is")
    partial = root.with_name(f".{root.name}.partial-{os.getpid()}")
    keep = torch.tensor([data.classes.index(c) for c in classes])
    for split in ("train", "test"):
        part = getattr(data, split)
        mask = torch.isin(part.labels, keep)
        relabelled = torch.searchsorted(keep.sort().values, part.labels[mask])
        names = [data.classes[i] for i in keep.sort().values.tolist()]
        write_image_folder(partial, split, part.images[mask], relabelled, names, fmt, sizes, seed + (split == "test"))
    partial.rename(root)
    return root


# --------------------------------------------------------------------------- the data set
def default_name(classes: list[str], image_format: str, source: Path, resized: str = "") -> str:
    """What the data set is called in every title and table.

    CIFAR-10's ten classes read from images name the copy and its format, e.g.
    "CIFAR-10 (JPEG copy)" — never plain "CIFAR-10", which is kept for the official
    archive. Any other folder is named after itself. ``resized`` (:func:`size_phrase`) is added
    inside the brackets: "pets (image folder, 64×64 centre crops)".
    """
    extra = f", {resized}" if resized else ""
    if classes == list(CIFAR10_CLASSES):
        return f"CIFAR-10 ({image_format} copy{extra})"
    stem = source.name
    for suffix in (".tar.gz", ".tgz", ".tar", ".zip"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    return f"{stem} (image folder{extra})"


def load_image_folder(path: str | os.PathLike, name: str | None = None, cache_dir: str | os.PathLike | None = None,
                      progress: bool = True, max_member_bytes: int | None = None,
                      max_pixels: int | None = None, size=None, crop: bool = False,
                      max_dataset_bytes: int | None = None) -> Dataset:
    """A :class:`Dataset` from an ImageFolder-layout folder or archive (see the module docstring).

    Args:
        path: a folder, or a ``.tar``, ``.tar.gz`` / ``.tgz`` or ``.zip`` file.
        name: what to call the data set (default: :func:`default_name`); with ``size`` the resizing
            is added to it, e.g. "my pets (resized to 64×64)", so no table hides it.
        size: make every image ``size × size`` pixels (or ``(H, W)``); None: they must already be
            one size. crop: keep the aspect ratio and cut the central square (see the module docstring).
        max_dataset_bytes: the cap on all decoded images together (default 2 GiB, see the module docstring).
        cache_dir: where the decoded tensors are cached (default ``$KDTUTOR_DATA/image_cache``,
            never beside the source); a cache that cannot be written is skipped with a warning.
        max_member_bytes, max_pixels: the per-file and per-image caps (see the module docstring).
    Raises:
        FileNotFoundError: nothing at ``path``.
        CorruptFileError: a truncated or damaged archive (a ValueError; the message names it).
        ValueError: not the layout above, an image that does not decode or is over a cap (the
            message names it), images of different sizes without ``size`` (the message says how
            to pass it), decoded images over ``max_dataset_bytes``, a class folder without images, a
            class in ``test/`` or ``val/`` that ``train/`` lacks, fewer than 2 training images
            without a ``val/`` folder.
    """
    path = Path(path).expanduser().resolve()
    source_kind(path)
    pair = check_size(size, crop)
    resized = size_phrase(pair, crop) if pair else ""
    fingerprint = source_fingerprint(path)
    shape = f"-{pair[0]}x{pair[1]}{'c' if crop else 'r'}" if pair else ""
    cache = Path(cache_dir or CACHE_DIR) / f"{path.name}-{fingerprint}{shape}-v{CACHE_VERSION}.pt"
    tensors = None
    if cache.exists():
        try:
            tensors = load_checked(cache, kind="imagefolder")
        except CorruptFileError as e:
            warnings.warn(f"ignoring a damaged cache ({e}); decoding the images again")
        if tensors is not None and (tensors.get("fingerprint") != fingerprint or tensors.get("resized", "") != resized):
            warnings.warn(f"ignoring {cache}: it was not made from this source; decoding the images again")
            tensors = None
        elif tensors is not None and tensors["skipped"]:
            warnings.warn(tensors["skipped"], SkippedFiles, stacklevel=2)
    if tensors is None:
        keep = warn_if_unwritable(cache.parent, "the decoded image cache")  # said before the decoding, not after
        tensors = {**read_image_folder(path, progress, max_member_bytes, max_pixels, pair, crop, max_dataset_bytes),
                   "fingerprint": fingerprint}
        if resized:
            tensors["resized"] = resized
        try:
            if keep:
                save_checked(tensors, cache, kind="imagefolder")
        except OSError as e:
            warnings.warn(f"could not cache the decoded images in {cache} ({e}); carrying on without a cache")
    classes = list(tensors["classes"])
    train = Split(tensors["train_images"], tensors["train_labels"])
    if "val_images" in tensors:
        val = Split(tensors["val_images"], tensors["val_labels"])
    else:  # as for CIFAR-10: a fixed random tenth of train
        if len(train) < MIN_TRAIN_WITHOUT_VAL:
            raise ValueError(f"{path} has {len(train)} training image(s) and no val/ folder: validation images are "
                             f"set aside from train/ (a tenth, at least one), so train/ needs at least "
                             f"{MIN_TRAIN_WITHOUT_VAL} images and test/ at least 1; add images, or a val/<class>/ "
                             f"folder with at least 1 image")
        perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(SPLIT_SEED))
        n_val = max(1, len(train) // 10)
        train, val = (Split(train.images[perm[n_val:]], train.labels[perm[n_val:]]),
                      Split(train.images[perm[:n_val]], train.labels[perm[:n_val]]))
    test = Split(tensors["test_images"], tensors["test_labels"])
    if name is None:
        name = default_name(classes, tensors["format"], path, resized)
    elif resized:
        name = f"{name} ({resized})"
    return Dataset(name, classes, train, val, test, source=str(path))
