"""Lesson 03 — a model's predictions on a split, always in float32 (also under torchrun).

:func:`predict` returns every logit of a loader in split order (with optional test-time
augmentation), :func:`cached_predict` the same, computed once per model and data, and
:func:`split_metrics` the mean cross-entropy and accuracy, all-reduced over the processes
of a data-parallel run. Importable from :mod:`kdtutor.images.train` too.
"""

from __future__ import annotations

import torch
from torch import nn

from kdtutor.evalcache import cached
from kdtutor.images.airbench import tta_logits
from kdtutor.images.loader import DeviceLoader
from kdtutor.images.metrics import top1_accuracy
from kdtutor.kd.losses import cross_entropy
from kdtutor.precision import full_precision
from kdtutor.scale import distributed


@torch.no_grad()
def predict(model: nn.Module, loader: DeviceLoader, tta: bool | int = False) -> tuple[torch.Tensor, torch.Tensor]:
    """All logits and labels of a (non-shuffled) loader, in split order, computed in float32.

    Evaluation never uses autocast or TF32, on any device: accuracy, agreement, KL,
    ECE and the rest do not depend on the GPU's training precision.

    Args:
        tta: test-time augmentation level (:func:`kdtutor.images.airbench.tta_views`):
            0 / False none; 1 / True the image and its mirror; 2 airbench94's six views
            (mirror × {no shift, one pixel up-left, one pixel down-right}), weighted as airbench.
    Returns:
        ``logits (N, C) float32`` and ``labels (N,) int64``, on the loader's device.
    Raises:
        ValueError: the loader's split is empty (the message says how many images each split needs).
    """
    level = int(tta)
    _check_not_empty(loader)
    was_training = model.training
    model.eval()
    outs, labels, index = [], [], []
    with full_precision(loader.device):
        for batch in loader:
            outs.append(tta_logits(model, batch.images, level))
            labels.append(batch.labels)
            index.append(batch.index)
    model.train(was_training)
    order = torch.argsort(torch.cat(index))
    return torch.cat(outs)[order], torch.cat(labels)[order]


def cached_predict(model: nn.Module, loader: DeviceLoader, tta: bool | int = False,
                   folder=None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`predict`, computed once per content of ``model``'s weights, ``loader``'s data and ``tta``, then
    loaded from ``folder`` (default ``$KDTUTOR_DATA/evaluations/``; :func:`kdtutor.evalcache.cached`): a
    re-run with nothing changed does not evaluate again; a changed weight, image or setting evaluates again."""
    logits, labels = cached("predict", {"model": model, "data": loader, "tta": int(tta)},
                            lambda: predict(model, loader, tta), folder=folder)
    return logits.to(loader.device), labels.to(loader.device)


def _check_not_empty(loader: DeviceLoader) -> None:
    if loader.num_examples == 0:
        raise ValueError("this split has no images, so there is nothing to predict or evaluate: every split "
                         "(train, validation, test) needs at least one image; give the data set more images "
                         "(an image folder needs at least 2 in train/ without val/, and 1 in test/)")


@torch.no_grad()
def split_metrics(model: nn.Module, loader: DeviceLoader) -> tuple[float, float]:
    """``(mean cross-entropy, accuracy)`` of ``model`` on every example of ``loader``, in float32.

    In a data-parallel run (:mod:`kdtutor.scale.distributed`) process r evaluates batches
    r, r + W, … and the sums of losses, correct answers and counts are all-reduced, so
    every process gets the numbers of the whole split. At world size 1: :func:`predict`.
    """
    _check_not_empty(loader)
    if not distributed.active():
        logits, labels = predict(model, loader)
        return cross_entropy(logits, labels, check=False).item(), top1_accuracy(logits, labels)
    was_training = model.training
    model.eval()
    sums = torch.zeros(3, device=loader.device, dtype=torch.float64)  # loss sum, correct, count
    with full_precision(loader.device):
        for i, batch in enumerate(loader):
            if i % distributed.world_size() != distributed.rank():
                continue
            logits = model(batch.images).float()
            sums[0] += torch.nn.functional.cross_entropy(logits, batch.labels, reduction="sum").double()
            sums[1] += (logits.argmax(dim=1) == batch.labels).sum()
            sums[2] += len(batch.labels)
    model.train(was_training)
    (total,) = distributed.all_reduce_sum(sums)
    return (total[0] / total[2]).item(), (total[1] / total[2]).item()
