"""Model checkpoints, shared by the image lessons and lesson 07: written atomically with a
checksum, and the one way a training run resumes from one. (An image model is rebuilt from its
checkpoint by :func:`kdtutor.images.train.load_checkpoint`.)
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from kdtutor.fingerprint import code_fingerprint, code_key, digest
from kdtutor.storage import load_checked, save_checked, unwritable


class CheckpointMismatch(ValueError):
    """A checkpoint on disk belongs to another run (model, data, profile, seed, settings or code)."""


def save_checkpoint(path, model: nn.Module, meta: dict, **state) -> Path:
    """Write model weights + metadata (+ optional training state) atomically, with a checksum.

    ``meta`` must hold ``arch``, ``num_classes``, ``in_channels`` and ``image_size``
    so the model can be rebuilt; add anything else (data set, accuracy, seed, …). The code of the
    model (:func:`model_code`) is recorded as ``meta["model_code"]``.
    """
    for key in ("arch", "num_classes", "in_channels", "image_size"):
        if key not in meta:
            raise ValueError(f"checkpoint metadata needs {key!r}")
    model_state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    meta = {**meta, "model_code": model_code(model)}
    return save_checked({"meta": meta, "model": model_state, **state}, path, kind="checkpoint")


def model_code(model: nn.Module) -> str:
    """Fingerprint of the code that makes ``model`` compute what it computes: its submodules' classes
    (:func:`~kdtutor.fingerprint.code_key`) and the source of :mod:`kdtutor.images.models`, which builds
    the course's models (an activation changed there changes it). A SyncBatchNorm counts as the
    BatchNorm2d it was converted from (:func:`kdtutor.scale.distributed.wrap`, multi-GPU runs)."""
    classes = {nn.BatchNorm2d if isinstance(m, nn.SyncBatchNorm) else type(m) for m in model.modules()}
    return digest(code_key(*sorted(classes, key=lambda c: f"{c.__module__}.{c.__qualname__}")),
                  code_fingerprint("kdtutor.images.models"))


def check_writable(path) -> None:
    """Refuse, before any training, a checkpoint ``path`` whose folder cannot be written (``None``: no checkpoint).

    Raises:
        PermissionError: the folder is read-only, full or not a folder; the message says to choose another.
    """
    if path is not None and (why := unwritable(Path(path).parent)) is not None:
        raise PermissionError(f"cannot write the checkpoint {path} ({why}): choose a folder you can write "
                              "(KDTUTOR_DATA, or the checkpoint path) before training")


def resume_state(path, run_id: dict, model: nn.Module, optimizer, kind: str = "checkpoint",
                 run_is: str = "model, data, profile, seed or settings") -> dict:
    """Load the training state saved at ``path`` into ``model`` and ``optimizer``, if it is a
    checkpoint of the same run; return the whole checkpoint (history, step counters, …).

    ``run_id`` is what the run is (its metadata and the settings that change its result), as
    saved under ``"run"``; ``run_is`` says in words what may differ, for the error message.

    Raises:
        CheckpointMismatch: another run's checkpoint, or weights that do not fit ``model``.
        CorruptFileError: truncated or altered file.
    """
    ckpt = load_checked(path, kind=kind)
    if ckpt.get("run") != run_id:
        what = "other code" if {**(ckpt.get("run") or {}), "code": None} == {**run_id, "code": None} else f"other {run_is}"
        raise CheckpointMismatch(f"{path} is a checkpoint of a different run ({what}); move it aside "
                                 "(rename it: kdtutor keeps it) or choose another path to start afresh")
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:  # same run description, other weights: written by another code version
        raise CheckpointMismatch(f"weights in {path} do not fit this model ({e}); move the file aside (rename it) "
                                 "or choose another path to start afresh") from e
    optimizer.load_state_dict(ckpt["optimizer"])
    return ckpt
