"""Lesson 03 — numerics and speed settings chosen per device: precision, determinism, memory layout, clocks.

==========================  =================================================================
GPU (compute capability)    training precision (:func:`amp_dtype`)
==========================  =================================================================
≥ 8.0 (A100, H100, RTX 30+)  bfloat16 autocast: bf16 tensor cores, fp32's range, no loss scaling
7.x and 6.0 (V100, T4, P100) float16 autocast with a ``GradScaler`` (fp16 has a small range:
                             the loss is scaled up so small gradients do not underflow to 0)
other 6.x and older          float32 (their fp16 arithmetic is slower than fp32)
the CPU                      float32 (bf16 on CPUs without AMX is ~10× slower)
==========================  =================================================================

*Training* may run in low precision; every *evaluation* number (accuracy, agreement,
KL, ECE, NLL, temperature fit) is computed in float32 (:func:`full_precision`), so a
result does not depend on the GPU it was measured on.
"""

from __future__ import annotations

import contextlib
import os
import time

import torch
from torch import nn

AMP_CHOICES = {"auto": None, "fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
_AUTO = object()


# --------------------------------------------------------------------------- precision
def _as_device(device) -> torch.device:
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"not a device: {device!r} ({e}); use e.g. 'cpu', 'cuda' or 'cuda:0'") from None


def amp_dtype(device) -> torch.dtype | None:
    """The autocast dtype for training on ``device``, or None for plain float32.

    ``torch.bfloat16`` on CUDA GPUs of compute capability ≥ 8.0; ``torch.float16``
    (to be used with :func:`grad_scaler`) on 7.x and on 6.0 (P100); None on older GPUs,
    on the CPU and on any other device.

    >>> amp_dtype("cpu") is None
    True
    """
    device = _as_device(device)
    if device.type != "cuda":
        return None
    major, minor = torch.cuda.get_device_capability(device)
    if major >= 8:
        return torch.bfloat16
    if major == 7 or (major, minor) == (6, 0):
        return torch.float16
    return None


def resolve_amp(device, amp: str = "auto") -> torch.dtype | None:
    """The autocast dtype a run uses: :func:`amp_dtype` for ``"auto"``, else the one named
    (``"fp32"`` → None, ``"bf16"``, ``"fp16"``) — forcing one is for experiments and tests."""
    if amp not in AMP_CHOICES:
        raise ValueError(f"amp must be one of {', '.join(AMP_CHOICES)}, got {amp!r}")
    return amp_dtype(device) if amp == "auto" else AMP_CHOICES[amp]


def dtype_name(dtype: torch.dtype | None) -> str:
    """``torch.bfloat16`` → ``"bfloat16"``; None → ``"float32"`` (no autocast)."""
    return "float32" if dtype is None else str(dtype).removeprefix("torch.")


def autocast(device, dtype=_AUTO):
    """Autocast to ``dtype`` (default: :func:`amp_dtype` of ``device``); a no-op for None (fp32)."""
    device = _as_device(device)
    dtype = amp_dtype(device) if dtype is _AUTO else dtype
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def loss_scaling(device, dtype: torch.dtype | None) -> bool:
    """Whether training in ``dtype`` on ``device`` needs a loss scaler: only float16 on CUDA
    (bf16 has fp32's range; CPU autocast and fp32 need none)."""
    return _as_device(device).type == "cuda" and dtype == torch.float16


def grad_scaler(device, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """A loss scaler, enabled where :func:`loss_scaling` says so.

    The training loop always calls ``scale(loss).backward()``, ``step(optimizer)`` and
    ``update()``; a disabled scaler passes the loss through and just calls
    ``optimizer.step()``, so the fp32 path computes exactly what it did without one.
    """
    return torch.amp.GradScaler(_as_device(device).type, enabled=loss_scaling(device, dtype))


@contextlib.contextmanager
def full_precision(device):
    """Evaluate in true float32: no autocast, and on CUDA no TF32 in convolutions or matmuls
    (cuDNN uses TF32 — a 10-bit mantissa — for float32 convolutions by default on Ampere+).
    The previous settings come back on exit."""
    device = _as_device(device)
    if device.type != "cuda":
        yield
        return
    conv, matmul = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = conv, matmul


# --------------------------------------------------------------------------- determinism
@contextlib.contextmanager
def determinism(device, deterministic: bool = False):
    """Settings for one training run; the previous ones come back on exit.

    ``deterministic=False`` (the default, for speed): on CUDA, ``cudnn.benchmark`` lets
    cuDNN time several kernels for each input shape and keep the fastest — the choice
    can differ between runs, so the same seed can give slightly different weights.
    ``deterministic=True``: ``cudnn.benchmark`` off, ``cudnn.deterministic`` on, and
    ``torch.use_deterministic_algorithms(True, warn_only=True)`` (an operation without a
    deterministic version warns instead of stopping the run); on CUDA it also sets
    ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` if unset (effective only before cuBLAS first runs).
    On the CPU the default changes nothing: CPU training is already reproducible.
    """
    device = _as_device(device)
    cudnn = torch.backends.cudnn
    before = (cudnn.benchmark, cudnn.deterministic, torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled())
    if deterministic:
        if device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        cudnn.benchmark, cudnn.deterministic = False, True
        torch.use_deterministic_algorithms(True, warn_only=True)
    elif device.type == "cuda":
        cudnn.benchmark = True  # fixed input shapes: let cuDNN pick the fastest kernels
    try:
        yield
    finally:
        cudnn.benchmark, cudnn.deterministic = before[0], before[1]
        torch.use_deterministic_algorithms(before[2], warn_only=before[3])


# --------------------------------------------------------------------------- memory layout
def prefers_channels_last(device) -> bool:
    """True on CUDA, where channels-last (NHWC) tensors let convolutions use tensor cores directly,
    and on the CPU, where oneDNN's convolutions are faster on them too (measured on a 2-core x86
    CPU, torch 2.14, one thread: ``cnn_tiny`` trains at 4,700 instead of 2,400 images/s and
    ``airbench_small`` infers at 2,800 instead of 1,350 images/s; ``benchmarks/``)."""
    return _as_device(device).type in ("cuda", "cpu")


def place(model: nn.Module, device) -> nn.Module:
    """``model`` moved to ``device``, in channels-last memory where that is faster; returns it."""
    model.to(_as_device(device))
    if prefers_channels_last(device):
        model.to(memory_format=torch.channels_last)
    return model


def is_channels_last(model: nn.Module) -> bool:
    """True when every 4-D weight of ``model`` is stored channels-last."""
    return all(p.is_contiguous(memory_format=torch.channels_last) for p in model.parameters() if p.ndim == 4)


# --------------------------------------------------------------------------- clocks
def sync(device) -> None:
    """Wait for queued GPU work (needed before reading a clock); nothing to do on the CPU."""
    device = _as_device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Stopwatch:
    """Seconds of device work between :meth:`start` and :meth:`stop`.

    On CUDA it records CUDA events on the current stream (GPU work is asynchronous:
    the host clock would time the queueing); elsewhere it reads ``time.perf_counter``.
    """

    def __init__(self, device):
        self.device = _as_device(device)
        self.cuda = self.device.type == "cuda"

    def start(self) -> Stopwatch:
        if self.cuda:
            self._begin = torch.cuda.Event(enable_timing=True)
            self._end = torch.cuda.Event(enable_timing=True)
            self._begin.record(torch.cuda.current_stream(self.device))  # the stream of *this* device
        else:
            self._t0 = time.perf_counter()
        return self

    def stop(self) -> float:
        """Seconds since :meth:`start` (waits for the GPU to finish the work queued meanwhile)."""
        if self.cuda:
            self._end.record(torch.cuda.current_stream(self.device))
            self._end.synchronize()
            return self._begin.elapsed_time(self._end) / 1000
        return time.perf_counter() - self._t0
