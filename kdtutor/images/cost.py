"""Lesson 05 — what a model costs: parameters, FLOPs per image, latency, size on disk.

Latency in milliseconds per batch, sizes in bytes. :func:`model_cost` gathers them.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from kdtutor.images.models import count_parameters
from kdtutor.precision import autocast, sync


# --------------------------------------------------------------------------- cost
def _model_device(model: nn.Module) -> torch.device:
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return torch.device("cpu")


def _example_batch(example: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``batch_size`` images made by cycling through ``example (B, C, H, W)``."""
    idx = torch.arange(batch_size, device=example.device) % len(example)
    return example[idx]


@torch.no_grad()
def count_flops(model: nn.Module, example: torch.Tensor) -> int:
    """FLOPs of one forward pass for **one image**, as counted by ``torch.utils.flop_counter``.

    ``FlopCounterMode`` counts matrix multiplications and convolutions only, at
    **2 FLOPs per multiply–accumulate** (2 × MACs): a ``Linear(i, o)`` is ``2·i·o``,
    a ``Conv2d`` is ``2·(C_in/groups)·C_out·k_h·k_w·H_out·W_out``. Bias additions,
    BatchNorm, activations and pooling are **not** counted (they are a few % of a CNN's total).
    The model runs in eval mode on a batch of one image (taken from ``example``).

    Args:
        example: ``(B, C, H, W)`` (or ``(B, F)``) input on the model's device; only ``example[:1]`` is used.
    """
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            model(example[:1])
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


@torch.no_grad()
def measure_latency(model: nn.Module, example: torch.Tensor, batch_size: int = 1, warmup: int = 3,
                    repeats: int = 10) -> float:
    """Median wall-clock time of one forward pass on ``batch_size`` images, in **milliseconds**.

    Runs ``warmup`` untimed passes first (allocations, cuDNN autotuning), then
    ``repeats`` timed ones; on CUDA each timing is bracketed by
    ``torch.cuda.synchronize`` (GPU work is asynchronous) and runs in the device's
    fast precision (:func:`kdtutor.precision.amp_dtype`: bf16 or fp16 autocast on CUDA,
    float32 on the CPU), as a deployed model would. Accuracy and the other quality
    numbers come from :func:`kdtutor.images.predict.predict`, always in float32.
    The model runs in eval mode on its own device.

    Args:
        example: ``(B, C, H, W)`` images; cycled to make a batch of ``batch_size``.
    """
    if batch_size < 1 or repeats < 1 or warmup < 0:
        raise ValueError(f"need batch_size ≥ 1, repeats ≥ 1, warmup ≥ 0; got {batch_size}, {repeats}, {warmup}")
    device = _model_device(model)
    x = _example_batch(example.to(device), batch_size)
    if device.type == "cuda" and x.ndim == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    was_training = model.training
    model.eval()
    times = []
    try:
        with autocast(device):
            for i in range(warmup + repeats):
                sync(device)
                t0 = time.perf_counter()
                model(x)
                sync(device)
                if i >= warmup:
                    times.append(time.perf_counter() - t0)
    finally:
        model.train(was_training)
    return 1000 * statistics.median(times)


def size_on_disk(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())``, written to a temporary file (then deleted).

    Includes buffers (e.g. BatchNorm statistics) and the pickle's small overhead.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state_dict.pt"
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, path)
        return os.path.getsize(path)


@dataclass
class ModelCost:
    """What a model costs. ``latency_ms``: ``{batch size: median ms per forward pass}``,
    measured on ``device``; ``flops``: per image (2 × MACs, see :func:`count_flops`)."""

    params: int
    flops: int
    size_bytes: int
    latency_ms: dict[int, float]
    device: str


def model_cost(model: nn.Module, example: torch.Tensor, batch_sizes=(1, 256), warmup: int = 3,
               repeats: int = 10, latency: bool = True) -> ModelCost:
    """Parameters, FLOPs per image, size on disk and (if ``latency``) latency at each batch size.

    Args:
        example: ``(B, C, H, W)`` input images on the model's device (normalised as in training).
    """
    times = {int(b): measure_latency(model, example, int(b), warmup, repeats) for b in batch_sizes} if latency else {}
    return ModelCost(count_parameters(model), count_flops(model, example), size_on_disk(model), times,
                     str(_model_device(model)))

