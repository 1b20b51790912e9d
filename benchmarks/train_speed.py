"""Training speed of the course's models on this machine — a measurement, not a test.

    python benchmarks/train_speed.py                  # defaults sized for the device
    python benchmarks/train_speed.py --n-train 50000 --epochs 10 --json results/bench.json

For each model: training images/s (median over epochs after the first, which
includes warm-up) and the time of an ``--epochs`` run with the data already on
the device. For distillation: student images/s with an online teacher and with
teacher logits served from a cache that an earlier run filled (as in a sweep).
Input: stand-in images of CIFAR-10's shape — speed does not depend on pixel values.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from kdtutor.images.distill import TeacherLogits, distill_student
from kdtutor.images.models import build_model, count_parameters
from kdtutor.images.recipes import config_for
from kdtutor.images.standin import make_standin
from kdtutor.images.train import default_device, make_loaders, train_model


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    return f"CPU: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def run_stats(history, n_images: int) -> dict:
    eps = history.epochs
    steady = [e["images_per_s"] for e in eps[1:]] or [eps[0]["images_per_s"]]
    return {"images_per_s": statistics.median(steady),
            "first_epoch_s": eps[0]["seconds"],
            "steady_epoch_s": n_images / statistics.median(steady),
            "train_s_total": sum(e["seconds"] for e in eps),
            "val_acc_last": eps[-1]["val_acc"]}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default=None)
    p.add_argument("--n-train", type=int, default=None, help="training images (default: 50,000 on GPU, 2,500 on CPU)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per run (default: 10 on GPU, 2 on CPU)")
    p.add_argument("--models", default="airbench,airbench_small,cnn_small,cnn_tiny")
    p.add_argument("--student", default="cnn_small", help="student for the distillation benchmark")
    p.add_argument("--teacher", default="airbench", help="teacher for the distillation benchmark")
    p.add_argument("--json", help="also write the numbers to this file")
    args = p.parse_args(argv)

    device = torch.device(args.device) if args.device else default_device()
    gpu = device.type == "cuda"
    n_train = args.n_train or (50_000 if gpu else 2_500)
    epochs = args.epochs or (10 if gpu else 2)
    batch = 1024 if gpu else 250
    print(f"device: {describe_device(device)}; torch {torch.__version__}; python {platform.python_version()}")
    print(f"data: {n_train:,d} stand-in images of 3×32×32 on the device; {epochs} epochs; batch {batch}\n")
    if gpu:
        torch.backends.cudnn.benchmark = True
    data = make_standin(n_train, 1000, 1000)
    out = {"device": describe_device(device), "torch": str(torch.__version__), "n_train": n_train,
           "epochs": epochs, "batch": batch, "train": {}, "distill": {}}

    print(f"{'model':16s} {'params':>10s} {'images/s':>10s} {'epoch (s)':>10s} {'run (s)':>9s} {'1st epoch (s)':>14s}")
    for arch in args.models.split(","):
        cfg = config_for(arch, epochs, batch)
        t0 = time.perf_counter()
        r = train_model(arch, data, cfg, device=device, progress=False)
        wall = time.perf_counter() - t0
        s = {**run_stats(r.history, n_train), "params": count_parameters(r.model), "wall_s_with_eval": wall}
        out["train"][arch] = s
        print(f"{arch:16s} {s['params']:>10,d} {s['images_per_s']:>10,.0f} {s['steady_epoch_s']:>10.2f} "
              f"{s['train_s_total']:>9.2f} {s['first_epoch_s']:>14.2f}")

    teacher = build_model(args.teacher).to(device)
    if hasattr(teacher, "init_whitening"):
        teacher.init_whitening(torch.randn(512, 3, 32, 32))
    cfg = config_for(args.student, epochs, batch)
    print(f"\ndistillation: student {args.student}, teacher {args.teacher} ({count_parameters(teacher):,d} params)")
    print(f"{'teacher logits':22s} {'images/s':>10s} {'run (s)':>9s}")
    loader = make_loaders(data, batch, device, cfg.seed)[0]
    shared = TeacherLogits(teacher, loader, "cached")
    for label, kw in [("online (same view)", {"mode": "online"}),
                      ("cached, first run", {"teacher_logits": shared}),
                      ("cached, reused", {"teacher_logits": shared})]:
        r = distill_student(teacher, args.student, data, cfg, T=4, alpha=0.9, device=device, progress=False, **kw)
        s = run_stats(r.history, n_train)
        out["distill"][label] = s
        print(f"{label:22s} {s['images_per_s']:>10,.0f} {s['train_s_total']:>9.2f}")

    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2))
        print(f"\nwritten to {args.json}")


if __name__ == "__main__":
    main()
