"""Lesson 03 — the data: where images come from, and the one call the lessons use.

``load_dataset(profile)`` gives the data set a profile asks for, cut to its sizes.
The pieces live in small modules beside this one (import each name from its module):

==================  ==========================================================
``splits``          :class:`Split` and :class:`Dataset`, the containers
``cifar10``         the official CIFAR-10 archive: download, MD5, parse, cache
``image_folder``    any ImageFolder folder or archive (e.g. the JPEG copy of CIFAR-10)
``standin``         generated shapes for CI and offline machines (NOT CIFAR-10)
``loader``          on-device augmentation and the :class:`DeviceLoader`
==================  ==========================================================

and **digits** (scikit-learn's 1,797 real 8×8 handwritten digits, no download) are here.

Where CIFAR-10 comes from, in order:

1. ``$KDTUTOR_CIFAR10`` — a folder or archive of CIFAR-10 images (ImageFolder layout,
   such as ``cifar10-jpeg.tar.gz``) or the official ``cifar-10-python.tar.gz``. Once set,
   it is used or the run stops with an error: never a silent fallback.
2. the official archive in ``data/`` (downloaded on first use, MD5-verified).
3. only if neither is there and the download fails: the stand-in, with a loud banner.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from kdtutor.images import cifar10
from kdtutor.images.cifar10 import (CIFAR10_ARCHIVE, CIFAR10_CLASSES, DataUnavailable, load_cifar10)
from kdtutor.images.image_folder import load_image_folder
from kdtutor.images.splits import Dataset, Split
from kdtutor.images.standin import make_standin
from kdtutor.storage import DATA_DIR

CIFAR10_ENV = "KDTUTOR_CIFAR10"



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
            f"  Why: {reason}\n  It has CIFAR-10's shapes (3×32×32) but is generated: coloured shapes.\n"
            f"  Have CIFAR-10 images on disk? Set {CIFAR10_ENV}=<folder or archive>.\n{line}")


def load_cifar10_copy(path: str | os.PathLike, progress: bool = True) -> Dataset:
    """CIFAR-10 from a local copy: the official ``cifar-10-python.tar.gz`` (verified by MD5 on every
    load, cached under ``$KDTUTOR_DATA``, never beside it: :func:`kdtutor.cifar10.load_official_copy`)
    or an ImageFolder folder/archive of its images (named e.g. "CIFAR-10 (JPEG copy)").

    Raises:
        FileNotFoundError: nothing at ``path`` (the message names ``$KDTUTOR_CIFAR10``).
        ValueError: the copy does not hold CIFAR-10's ten classes, or is not readable.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{CIFAR10_ENV}={path}: nothing there. Point it at a CIFAR-10 folder or archive "
                                f"(e.g. cifar10-jpeg.tar.gz) or unset it to use the official download")
    try:
        if path.name == CIFAR10_ARCHIVE:
            return cifar10.load_official_copy(path)
        data = load_image_folder(path, progress=progress)
    except ValueError as e:  # CorruptFileError too: say which setting pointed here
        raise type(e)(f"{CIFAR10_ENV}={path}: {e}") from e
    if data.classes != list(CIFAR10_CLASSES):
        raise ValueError(f"{CIFAR10_ENV}={path} holds the classes {data.classes}, not CIFAR-10's "
                         f"{CIFAR10_CLASSES}; use kdtutor.images.image_folder.load_image_folder for other image sets")
    return data


def load_dataset(profile, root: str | os.PathLike = DATA_DIR, verbose: bool = True, role: str = "student") -> Dataset:
    """The data set a profile asks for, cut to its sizes.

    ``role="teacher"`` keeps ``profile.n_train_teacher`` training images, ``"student"``
    keeps ``profile.n_train`` — a subset of the teacher's (same validation and test splits).

    ``profile.dataset == "standin"`` gives the stand-in. ``"cifar10"`` gives CIFAR-10
    from ``$KDTUTOR_CIFAR10`` if set, else from ``root`` (downloading it if needed);
    only if it is absent *and* the download fails does it fall back to the stand-in,
    with a banner saying why. ``KDTUTOR_OFFLINE=1`` skips the download attempt.
    """
    if role not in ("student", "teacher"):
        raise ValueError(f"role must be 'student' or 'teacher', got {role!r}")
    n_train = profile.n_train_teacher if role == "teacher" else profile.n_train
    if profile.dataset == "standin":
        data = _profile_standin(profile)
    elif profile.dataset == "cifar10":
        local = os.environ.get(CIFAR10_ENV, "").strip()
        if local:
            data = load_cifar10_copy(local, progress=verbose)
        else:
            try:
                data = load_cifar10(root, download=os.environ.get("KDTUTOR_OFFLINE") != "1")
            except DataUnavailable as e:
                if verbose:
                    print(standin_banner(str(e)))
                data = _profile_standin(profile)
    else:
        raise ValueError(f"unknown data set {profile.dataset!r} in profile {profile.name!r}")
    if n_train is not None and profile.n_train_teacher is not None and n_train > profile.n_train_teacher:
        raise ValueError(f"profile {profile.name!r}: the students' {n_train} images must be a subset of the "
                         f"teacher's {profile.n_train_teacher}")
    return data.subset(n_train, profile.n_val, profile.n_test)


def _profile_standin(profile) -> Dataset:
    sizes = [n for n in (profile.n_train, profile.n_train_teacher)]
    n_train = 45000 if None in sizes else max(sizes)
    return make_standin(n_train, profile.n_val or 5000, profile.n_test or 10000)
