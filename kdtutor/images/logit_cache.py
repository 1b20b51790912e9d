"""Scaling out — a sweep's teacher logits, computed once and kept in a checksummed file.

A T × α sweep trains many students on the same views (same seed), so the teacher's
logits for every epoch's views are the same for all of them. :func:`save_teacher_logits`
computes them once (in a data-parallel run, all processes share the work) and rank 0
writes them atomically with a checksum; later runs — or other jobs on a cluster —
load them with :func:`load_teacher_logits`.

A cache is keyed by everything its numbers depend on (:func:`cache_key`): the teacher's
weights, the training images and labels, the views (seed, flips, translation, number
of epochs covered) and the precision they were computed in. Loading a cache made from
another teacher or other data raises :class:`~kdtutor.images.distill.CachedLogitsMismatch`
(a ValueError) that says which part differs.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from kdtutor.fingerprint import fingerprint, weights_fingerprint
from kdtutor.images.distill import CachedLogitsMismatch, TeacherLogits
from kdtutor.images.loader import DeviceLoader
from kdtutor.precision import amp_dtype, dtype_name
from kdtutor.scale import distributed
from kdtutor.storage import load_checked, save_checked

KIND = "teacher_logits"


def cache_key(teacher: nn.Module, loader: DeviceLoader, epochs: int) -> dict:
    """What the cached logits of ``epochs`` epochs of ``loader``'s views from ``teacher`` depend on."""
    return {"teacher_sha256": weights_fingerprint(teacher), "data_sha256": fingerprint(loader.images, loader.labels, loader.mean, loader.std),
            "num_examples": loader.num_examples, "epochs": epochs,
            "views": {"seed": loader.seed, "flip": loader.flip, "alternate_flip": loader.alternate_flip,
                      "translate": loader.pad},
            "precision": dtype_name(amp_dtype(loader.device))}


def _epoch_keys(loader: DeviceLoader, epochs: int) -> list:
    """The view key (:meth:`DeviceLoader.view_key`, ``"clean"`` without augmentation) of each epoch."""
    keys = []
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        keys.append(loader.view_key() or "clean")
    return keys


def save_teacher_logits(path, teacher_logits: TeacherLogits, epochs: int) -> Path:
    """Compute the teacher's logits for ``epochs`` epochs of views and write them to ``path``.

    Every process of a data-parallel run calls it (they share the work); rank 0 writes
    the file atomically, and all return once it is on disk. ``teacher_logits`` (mode
    ``"cached"``) keeps them too, ready for training.

    File content: ``{"key": cache_key(...), "logits": (E', N, C) float32}``, one row per
    distinct view (E' = 1 without augmentation, else ``epochs``).
    """
    if teacher_logits.mode != "cached":
        raise ValueError(f"only 'cached' teacher logits can be saved, got mode {teacher_logits.mode!r}")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    loader = teacher_logits.loader
    keep = loader.epoch
    keys = list(dict.fromkeys(_epoch_keys(loader, epochs)))
    logits = []
    for epoch, key in enumerate(keys):
        loader.set_epoch(epoch)
        logits.append(teacher_logits._all_logits(key).float().cpu())
    loader.set_epoch(keep)
    path = Path(path)
    if distributed.is_main():
        save_checked({"key": cache_key(teacher_logits.teacher, loader, epochs), "logits": torch.stack(logits)},
                     path, kind=KIND)
    distributed.barrier()
    return path


def load_teacher_logits(path, teacher_logits: TeacherLogits, epochs: int) -> None:
    """Fill ``teacher_logits`` (mode ``"cached"``) with the logits saved at ``path``.

    Raises:
        FileNotFoundError: no file there.
        CorruptFileError: truncated or altered file.
        CachedLogitsMismatch: the file was made from another teacher, other data, other views,
            fewer epochs or another precision than this run uses.
    """
    if teacher_logits.mode != "cached":
        raise ValueError(f"saved teacher logits serve mode 'cached', got mode {teacher_logits.mode!r}")
    saved = load_checked(path, kind=KIND)
    loader = teacher_logits.loader
    want, have = cache_key(teacher_logits.teacher, loader, epochs), saved["key"]
    what = {"teacher_sha256": "another teacher (other weights)", "data_sha256": "other training data",
            "num_examples": "another number of training images", "views": "other views (seed or augmentation)",
            "precision": "another precision"}
    for name, meaning in what.items():
        if have.get(name) != want.get(name):
            raise CachedLogitsMismatch(f"the teacher logits in {path} were made from {meaning}: {name} is "
                                       f"{have.get(name)!r} there, {want.get(name)!r} in this run; "
                                       "delete the file (or choose another) to compute them afresh")
    if have["epochs"] < epochs:
        raise CachedLogitsMismatch(f"the teacher logits in {path} cover {have['epochs']} epochs, this run needs "
                                   f"{epochs}; delete the file to compute them afresh")
    keep = loader.epoch
    keys = list(dict.fromkeys(_epoch_keys(loader, epochs)))
    loader.set_epoch(keep)
    for key, logits in zip(keys, saved["logits"]):
        teacher_logits.cache[key] = logits.to(loader.device)


def cached_teacher_logits(path, teacher: nn.Module, loader: DeviceLoader, epochs: int) -> TeacherLogits:
    """``"cached"`` teacher logits for ``epochs`` epochs of ``loader``: loaded from ``path`` if it
    exists (and belongs to this teacher and data), else computed by all processes and saved there."""
    shared = TeacherLogits(teacher, loader, "cached")
    if distributed.broadcast_object(Path(path).exists()):  # rank 0 decides: every process takes the same branch
        load_teacher_logits(path, shared, epochs)
    else:
        save_teacher_logits(path, shared, epochs)
    return shared
