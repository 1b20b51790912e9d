"""Scaling out — the glue between kdtutor's training loop and PyTorch's own distributed engine.

Launched by ``torchrun`` (or ``srun torchrun`` on SLURM), every process gets ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` in its environment. :func:`init_from_env` reads them
and joins the default process group (NCCL on CUDA, gloo on the CPU). A plain
``python …`` run has no ``WORLD_SIZE``: nothing is initialised, :func:`world_size` is 1
and every function here is a no-op, so single-process code runs exactly as before.

How a step is split (global batch B, W processes): step k's global batch is the same
B examples a 1-process run would take (``order[k·B:(k+1)·B]`` of the epoch's
permutation); process r trains on piece r of it (:func:`shard_batch`). The model is
wrapped in :class:`~torch.nn.parallel.DistributedDataParallel` (:func:`wrap`), which
averages the W gradients — the gradient of the mean loss over the global batch.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn


# --------------------------------------------------------------------------- who am I
def launched() -> bool:
    """True when the environment names a multi-process run (``WORLD_SIZE`` > 1, as torchrun sets it)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    """True when a process group with more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if active() else 1


def rank() -> int:
    """This process's rank, 0 … world_size − 1 (0 without a process group)."""
    return dist.get_rank() if active() else 0


def is_main() -> bool:
    """True in the process that writes files, prints and shows progress bars (rank 0)."""
    return rank() == 0


def local_device(device) -> torch.device:
    """``device`` for this process: under a multi-process CUDA run, ``cuda`` becomes
    ``cuda:LOCAL_RANK`` (one GPU per process); anything else is returned unchanged."""
    device = torch.device(device)
    if launched() and device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def init_from_env(device="cpu") -> int:
    """Join the process group named by the environment (once); returns the world size.

    Backend: NCCL when ``device`` is a CUDA device, gloo otherwise. Without
    ``WORLD_SIZE`` > 1 in the environment nothing happens and 1 is returned.

    Raises:
        RuntimeError: the environment asks for several processes but this PyTorch has no
            distributed support (or no gloo for a CPU run).
    """
    if not launched():
        return 1
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    if not dist.is_initialized():
        device = local_device(device)
        if device.type == "cuda":
            torch.cuda.set_device(device)
            dist.init_process_group("nccl", device_id=device)
        else:
            if not dist.is_gloo_available():
                raise RuntimeError("a CPU run on several processes needs the gloo backend, missing from this PyTorch")
            dist.init_process_group("gloo")
    return dist.get_world_size()


# --------------------------------------------------------------------------- data
def shard_batch(index: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """Piece ``rank`` of ``world`` of one global batch ``index (B,)``: contiguous pieces
    whose sizes differ by at most one, in order, so their union is the whole batch."""
    return torch.tensor_split(index, world)[rank]


def check_batch_split(num_examples: int, batch_size: int, drop_last: bool, world: int) -> None:
    """Refuse a global batch that cannot be split evenly over ``world`` processes.

    Every full batch must split into ``world`` equal pieces (so each process's mean loss
    has the same weight); a last, smaller batch (``drop_last=False``) must give every
    process at least one example (its pieces are then weighted by their size).
    """
    if world == 1:
        return
    if batch_size % world:
        raise ValueError(f"the global batch of {batch_size} images cannot be split evenly over {world} processes: "
                         f"choose a batch size that is a multiple of {world}")
    rest = num_examples % batch_size
    if not drop_last and 0 < rest < world:
        raise ValueError(f"the last batch of {rest} images cannot give each of {world} processes one: "
                         "use drop_last=True or another batch size")


# --------------------------------------------------------------------------- model
def wrap(model: nn.Module, device, sync_batchnorm: bool | None = None) -> nn.Module:
    """``model`` in :class:`~torch.nn.parallel.DistributedDataParallel` (``model`` itself at world size 1).

    ``sync_batchnorm`` (default: on CUDA) turns BatchNorm into SyncBatchNorm in place, so
    batch statistics are over the global batch, as in a 1-process run. PyTorch's
    SyncBatchNorm needs a GPU: on the CPU each process normalises its own B/W images.
    """
    if not active():
        return model
    device = torch.device(device)
    if sync_batchnorm is None:
        sync_batchnorm = device.type == "cuda"
    if sync_batchnorm:
        nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap_batchnorm(model: nn.Module) -> nn.Module:
    """Turn SyncBatchNorm layers (from :func:`wrap`) back into BatchNorm2d, sharing their
    parameters and statistics; the model is changed in place and returned."""
    for name, child in model.named_children():
        if isinstance(child, nn.SyncBatchNorm):
            bn = nn.BatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                child.track_running_stats)
            bn.weight, bn.bias = child.weight, child.bias
            bn.running_mean, bn.running_var = child.running_mean, child.running_var
            bn.num_batches_tracked = child.num_batches_tracked
            bn.train(child.training)
            setattr(model, name, bn)
        else:
            unwrap_batchnorm(child)
    return model


# --------------------------------------------------------------------------- collectives
def all_reduce_sum(*values: torch.Tensor) -> list[torch.Tensor]:
    """The sums over processes of ``values`` (tensors on this process's device), as new tensors;
    copies of them at world size 1."""
    out = [v.detach().clone() for v in values]
    if active():
        for v in out:
            dist.all_reduce(v)
    return out


def barrier() -> None:
    """Wait until every process gets here (nothing at world size 1)."""
    if active():
        dist.barrier()


def broadcast_object(obj):
    """Rank 0's ``obj`` on every process (``obj`` itself at world size 1)."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


# --------------------------------------------------------------------------- a training loop's side of it
class DataParallel:
    """What a training loop (:func:`kdtutor.images.train.fit`) needs to run data-parallel, and nothing
    at world size 1.

    ``DataParallel(model, loader)`` joins the process group named by the environment and checks that
    ``loader`` (a :class:`~kdtutor.images.loader.DeviceLoader`) is sharded for this process.
    :meth:`step_model` is the model to run the training steps on: ``model`` itself in one process,
    else ``model`` in DistributedDataParallel, rebuilt whenever the set of trainable parameters
    changes (DDP reduces the gradients of the parameters trainable when it is built; airbench
    freezes its whitening bias mid-run). :meth:`finish` turns SyncBatchNorm back into BatchNorm and
    waits until every process is there (the checkpoint is on disk before any process goes on).
    ``main``: this process writes files and shows progress (rank 0).

    Raises:
        ValueError: ``loader`` is sharded for another rank or world size.
    """

    def __init__(self, model: nn.Module, loader):
        self.world = init_from_env(loader.device)
        if (loader.world_size, loader.rank) != (self.world, rank()):
            raise ValueError(f"the training loader is sharded for rank {loader.rank} of {loader.world_size} "
                             f"processes, but this is rank {rank()} of {self.world}: build it with "
                             "make_train_loader (or prepare_run) inside the run")
        self.model, self.device, self.main = model, loader.device, is_main()
        self._trainable, self._wrapped = None, model

    def step_model(self) -> nn.Module:
        """The model the steps run on (see the class docstring)."""
        if self.world == 1:
            return self.model
        trainable = [p.requires_grad for p in self.model.parameters()]
        if trainable != self._trainable:
            self._trainable, self._wrapped = trainable, wrap(self.model, self.device)
        return self._wrapped

    def finish(self) -> None:
        """After the last epoch: plain BatchNorm again, and every process waits for the others."""
        if self.world > 1:
            unwrap_batchnorm(self.model)
            barrier()
