"""Run by tests/test_distributed.py under ``torchrun --nproc_per_node 2`` (and in-process at world size 1).

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/ddp_worker.py OUT_DIR

Trains the runs the test compares with their 1-process twins and saves (rank 0) what it compares,
then trains a teacher with the command line's ``train-teacher`` (OUT_DIR/teacher.pt) for the
``torchrun -m kdtutor distill`` test: one launch instead of two.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import torch

from kdtutor.__main__ import main as cli
from kdtutor.images.data import load_dataset
from kdtutor.images.recipes import digits_config, student_config
from kdtutor.images.train import fit, prepare_run
from kdtutor.profiles import get_profile
from kdtutor.scale import distributed
from kdtutor.storage import save_checked

N_TRAIN = 999  # global batch 100: the last batch of 99 splits 50 / 49 over two processes
BATCH = 100


@functools.cache
def smoke_data():
    return load_dataset(get_profile("smoke"), role="student").subset(n_train=N_TRAIN, n_val=300)


def mlp_config(epochs: int = 2):
    """The MLP's recipe (keeps the last, smaller batch), short: no BatchNorm anywhere."""
    return digits_config(epochs=epochs, batch_size=BATCH, seed=3)


def cnn_config(epochs: int = 2):
    return student_config(epochs=epochs, batch_size=BATCH, seed=3)


class StopAtEpoch(Exception):
    """Raised by :func:`stopping_loss` to end a run at the start of an epoch, as an interruption would."""


def stopping_loss(epoch: int):
    """Cross-entropy that raises :class:`StopAtEpoch` on the first batch of ``epoch`` (0-based)."""
    from kdtutor.images.train import hard_label_loss

    ce = hard_label_loss()

    def loss_fn(logits, batch):
        if batch.view is not None and batch.view[2] == epoch:
            raise StopAtEpoch
        return ce(logits, batch)

    return loss_fn


def run(arch: str, cfg, data, checkpoint=None, loss_fn=None) -> dict:
    """Train ``arch`` with ``cfg`` (on whatever world size this process is in); what the test compares."""
    model, train_loader, val_loader, meta = prepare_run(arch, data, cfg, profile_name="smoke", device="cpu")
    history = fit(model, train_loader, val_loader, cfg, loss_fn=loss_fn, checkpoint=checkpoint, meta=meta,
                  progress=False)
    return {"state": {k: v.detach().clone() for k, v in model.state_dict().items()}, "history": history.epochs}


def main(out: Path) -> None:
    torch.set_num_threads(1)
    distributed.init_from_env("cpu")
    data = smoke_data()
    results = {"world_size": distributed.world_size(), "mlp": run("mlp_small", mlp_config(), data),
               "cnn": run("cnn_tiny", cnn_config(), data)}
    try:  # the MLP run again, checkpointed, interrupted at the start of its second epoch
        run("mlp_small", mlp_config(), data, checkpoint=out / "interrupted.pt", loss_fn=stopping_loss(1))
    except StopAtEpoch:
        pass
    if distributed.is_main():
        save_checked(results, out / f"results_world{distributed.world_size()}.pt", kind="test_results")
    cli(["train-teacher", "--arch", "cnn_tiny", "--out", str(out / "teacher.pt"), "--profile", "smoke",
         "--epochs", "1", "--device", "cpu"])


if __name__ == "__main__":
    main(Path(sys.argv[1]))
