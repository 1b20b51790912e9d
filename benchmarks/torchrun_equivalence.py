"""One process with batch B against two (torchrun, gloo, CPU) with B/2 each — a measurement, not a test.

    python benchmarks/torchrun_equivalence.py                     # smoke stand-in, 3 epochs
    python benchmarks/torchrun_equivalence.py --n-train 5000 --epochs 5 --json results/ddp.json

Trains ``mlp_small`` (no BatchNorm: the runs should agree to float rounding) and ``cnn_tiny``
(BatchNorm: per-process statistics on the CPU, so close but not equal) on the stand-in data,
once in this process and once under ``python -m torch.distributed.run --nproc_per_node 2``,
with the same seed and global batch. Prints final train loss, validation loss and accuracy
of both, the largest weight difference, and the wall time of each (the 2-process time
includes launching the processes). Set ``--n-train`` odd to exercise an uneven last batch.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from kdtutor.images.data import load_dataset
from kdtutor.images.recipes import config_for
from kdtutor.images.train import fit, prepare_run
from kdtutor.profiles import get_profile
from kdtutor.scale import distributed
from kdtutor.storage import load_checked, save_checked, save_json

ARCHS = ("mlp_small", "cnn_tiny")


def train_all(args) -> dict:
    """Train every model of ARCHS on whatever world size this process is in; weights and histories."""
    data = load_dataset(get_profile("smoke"), role="student").subset(n_train=args.n_train)
    out = {}
    for arch in ARCHS:
        cfg = config_for(arch, args.epochs, args.batch_size, seed=args.seed)
        cfg.drop_last = False
        model, train_loader, val_loader, meta = prepare_run(arch, data, cfg, device="cpu")
        history = fit(model, train_loader, val_loader, cfg, meta=meta, progress=False)
        out[arch] = {"state": model.state_dict(), "last": history.epochs[-1]}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-train", type=int, default=1999, help="training images (default 1999: uneven last batch)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=250, help="global batch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--worker", help=argparse.SUPPRESS)  # set when run under torchrun: where rank 0 saves
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.worker:
        distributed.init_from_env("cpu")
        results = train_all(args)
        if distributed.is_main():
            save_checked(results, args.worker, kind="bench_results")
        distributed.barrier()
        return

    t0 = time.perf_counter()
    one = train_all(args)
    t_one = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "two.pt"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", __file__,
               "--worker", str(path), "--n-train", str(args.n_train), "--epochs", str(args.epochs),
               "--batch-size", str(args.batch_size), "--seed", str(args.seed)]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        t_two = time.perf_counter() - t0
        two = load_checked(path, kind="bench_results")
    print(f"stand-in data (NOT CIFAR-10), {args.n_train} training images, global batch {args.batch_size}, "
          f"{args.epochs} epochs, CPU, 1 thread per process; 1 process: {t_one:.1f} s, "
          f"2 processes (torchrun, gloo, incl. launch): {t_two:.1f} s")
    report = {"n_train": args.n_train, "batch_size": args.batch_size, "epochs": args.epochs,
              "seconds_1_process": t_one, "seconds_2_processes": t_two, "models": {}}
    for arch in ARCHS:
        a, b = one[arch], two[arch]
        diff = max((a["state"][k].double() - b["state"][k].double()).abs().max().item() for k in a["state"])
        row = {"max_weight_difference": diff}
        for key in ("train_loss", "val_loss", "val_acc"):
            row[key] = {"1_process": a["last"][key], "2_processes": b["last"][key]}
        report["models"][arch] = row
        print(f"{arch:10s} train loss {a['last']['train_loss']:.6f} vs {b['last']['train_loss']:.6f}, "
              f"val loss {a['last']['val_loss']:.6f} vs {b['last']['val_loss']:.6f}, "
              f"val acc {a['last']['val_acc']:.4f} vs {b['last']['val_acc']:.4f}, max |Δweight| {diff:.2e}")
    if args.json:
        save_json(report, args.json)


if __name__ == "__main__":
    main()
