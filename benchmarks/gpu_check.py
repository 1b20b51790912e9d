"""One command for a user with a GPU: does kdtutor's gpu profile do here what it should?

    python benchmarks/gpu_check.py                          # on the GPU it finds (a few minutes at most)
    python benchmarks/gpu_check.py --device cpu --dry-run   # the same code at tiny size: under a minute

It trains the gpu profile's teacher (``airbench``, airbench94's recipe, on all 50,000 CIFAR-10
training images) and one distilled student (the profile's ``cnn_small``, T = 4, α = 0.9, the
teacher run online), with the data already on the device. Training is timed with CUDA events
(on the CPU: the host clock); the first epoch — cuDNN autotuning, memory allocation — is
reported apart. Test accuracy is computed in float32, for the teacher with and without
test-time augmentation. The results are printed and saved as JSON (``--json``), next to the
targets below and whether each was met (None where this run cannot tell: a dry run, another
device than CUDA, stand-in data).

Targets (an H100, data on the device): teacher ≥ 93.5 % test accuracy in ≤ 10 s of training;
a distilled-student run ≤ 10 s; the whole gpu-profile course ≤ 10 minutes (not measured here:
``time KDTUTOR_PROFILE=gpu make course``). For reference, airbench94 reports 94.01 % in 3.83 s
on an A100 (with TTA, mean of 1,000 runs).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path

import torch

from kdtutor.images.data import load_dataset
from kdtutor.images.distill import distill_student
from kdtutor.images.models import count_parameters
from kdtutor.images.metrics import top1_accuracy
from kdtutor.images.predict import predict
from kdtutor.images.recipes import config_for
from kdtutor.images.standin import make_standin
from kdtutor.images.train import eval_loader, train_model
from kdtutor.precision import amp_dtype, dtype_name, sync
from kdtutor.profiles import get_profile
from kdtutor.storage import RESULTS_DIR

TARGETS = {"teacher_test_acc": 0.935, "teacher_train_s": 10.0, "student_train_s": 10.0, "course_s": 600.0}
DRY = {"n_train": 192, "n_val": 64, "n_test": 100, "batch_size": 64, "teacher_epochs": 5, "student_epochs": 2}
# 4 steps per teacher epoch: Lookahead starts in epoch 4 (step 15) and updates once (step 20)


def describe(device: torch.device) -> dict:
    """What ran the check: device name, compute capability, training precision, versions."""
    out = {"device": str(device), "torch": str(torch.__version__), "python": platform.python_version(),
           "amp_dtype": dtype_name(amp_dtype(device))}
    if device.type == "cuda":
        out.update(name=torch.cuda.get_device_name(device), capability=list(torch.cuda.get_device_capability(device)),
                   cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    else:
        out.update(name=f"CPU: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
                   capability=None, cuda=None, cudnn=None)
    return out


def timing(history, n_images: int) -> dict:
    """Seconds and images/s of a run's training epochs (device clock), first epoch apart.

    ``n_images``: images trained per epoch (the training split less the dropped partial batch).
    """
    seconds = [e["seconds"] for e in history.epochs]
    rest = seconds[1:]
    return {"train_s": sum(seconds), "first_epoch_s": seconds[0], "other_epochs_s": sum(rest),
            "images_per_s": n_images * len(seconds) / sum(seconds),
            "images_per_s_after_first_epoch": n_images * len(rest) / sum(rest) if rest else None}


def _peak_mib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2 ** 20 if device.type == "cuda" else None


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _judge(ok: bool, can_tell: str | None) -> bool | None:
    return None if can_tell else bool(ok)


def targets(result: dict, dry_run: bool) -> dict:
    """Each target, what was measured, and whether it was met (None, with why, where this run cannot tell)."""
    dev, t, s = result["device"], result["teacher"], result["student"]
    why = ("a dry run (tiny sizes)" if dry_run else "not a CUDA GPU" if dev["capability"] is None
           else "stand-in data, not CIFAR-10" if result["data"]["is_standin"] else None)
    note = why or ("" if "H100" in dev["name"] else f"measured on {dev['name']}, the targets are for an H100")
    return {
        "teacher": {"target": f"test accuracy (TTA) ≥ {TARGETS['teacher_test_acc']:.1%} in ≤ "
                              f"{TARGETS['teacher_train_s']:g} s of training",
                    "measured": f"{t['test_acc_tta']:.2%} in {t['train_s']:.2f} s",
                    "met": _judge(t["test_acc_tta"] >= TARGETS["teacher_test_acc"]
                                  and t["train_s"] <= TARGETS["teacher_train_s"], why), "note": note},
        "student": {"target": f"a distilled-student run ≤ {TARGETS['student_train_s']:g} s",
                    "measured": f"{s['train_s']:.2f} s", "met": _judge(s["train_s"] <= TARGETS["student_train_s"], why),
                    "note": note},
        "course": {"target": f"the whole gpu-profile course ≤ {TARGETS['course_s'] / 60:g} minutes",
                   "measured": None, "met": None,
                   "note": "not measured by this script: time KDTUTOR_PROFILE=gpu make course"},
    }


def load_data(dry_run: bool):
    """``(teacher data, student data, profile)``: the gpu profile's, or tiny stand-ins for a dry run."""
    profile = get_profile("gpu")
    if dry_run:
        data = make_standin(DRY["n_train"], DRY["n_val"], DRY["n_test"], seed=0)
        return data, data, profile.with_(teacher_epochs=DRY["teacher_epochs"], student_epochs=DRY["student_epochs"],
                                         batch_size=DRY["batch_size"])
    return load_dataset(profile, role="teacher"), load_dataset(profile, role="student"), profile


def run(device: torch.device, dry_run: bool = False, deterministic: bool = False) -> dict:
    """Train and evaluate the teacher and one distilled student; return the results as a dict."""
    teacher_data, student_data, profile = load_data(dry_run)
    result = {"check": "kdtutor gpu_check", "dry_run": dry_run, "deterministic": deterministic,
              "device": describe(device),
              "data": {"name": teacher_data.name, "is_standin": teacher_data.is_standin,
                       "n_train_teacher": len(teacher_data.train) + len(teacher_data.val),
                       "n_train_student": len(student_data.train), "n_test": len(teacher_data.test)}}
    test_loader = eval_loader(teacher_data, "test", device)

    # the teacher: airbench94's recipe on training + validation images, no validation, no checkpoint
    cfg = dataclasses.replace(config_for(profile.teacher, profile.teacher_epochs, profile.batch_size),
                              train_on_val=True, deterministic=deterministic)
    _reset_peak(device)
    sync(device)
    t0 = time.perf_counter()
    teacher = train_model(profile.teacher, teacher_data, cfg, device=device, progress=False)
    sync(device)
    wall = time.perf_counter() - t0
    per_epoch = (teacher.meta["n_train"] // cfg.batch_size) * cfg.batch_size
    t_eval = time.perf_counter()
    test_acc = top1_accuracy(*predict(teacher.model, test_loader))
    tta_mirror = top1_accuracy(*predict(teacher.model, test_loader, tta=1))
    tta = top1_accuracy(*predict(teacher.model, test_loader, tta=2))
    sync(device)
    result["teacher"] = {"arch": profile.teacher, "params": count_parameters(teacher.model), "epochs": cfg.epochs,
                         "batch_size": cfg.batch_size, "n_train": teacher.meta["n_train"],
                         **timing(teacher.history, per_epoch), "wall_s_with_setup": wall,
                         "eval_s_three_passes": time.perf_counter() - t_eval,
                         "test_acc": test_acc, "test_acc_tta_mirror": tta_mirror, "test_acc_tta": tta,
                         "peak_gpu_memory_mib": _peak_mib(device)}

    # one distilled student, teacher online, validated once at the end
    cfg = dataclasses.replace(config_for(profile.student, profile.student_epochs, profile.batch_size, seed=1),
                              val_every=0, deterministic=deterministic)
    _reset_peak(device)
    student = distill_student(teacher.model, profile.student, student_data, cfg, T=4.0, alpha=0.9, mode="online",
                              device=device, progress=False)
    per_epoch = (len(student_data.train) // cfg.batch_size) * cfg.batch_size
    result["student"] = {"arch": profile.student, "params": count_parameters(student.model), "epochs": cfg.epochs,
                         "batch_size": cfg.batch_size, "T": 4.0, "alpha": 0.9, "teacher_mode": "online",
                         **timing(student.history, per_epoch),
                         "test_acc": top1_accuracy(*predict(student.model, eval_loader(student_data, "test", device))),
                         "peak_gpu_memory_mib": _peak_mib(device)}
    result["targets"] = targets(result, dry_run)
    return result


def report(result: dict) -> str:
    """A few readable lines about ``result``."""
    d, t, s = result["device"], result["teacher"], result["student"]
    mem = lambda r: "" if r["peak_gpu_memory_mib"] is None else f", peak GPU memory {r['peak_gpu_memory_mib']:,.0f} MiB"  # noqa: E731
    lines = [f"device: {d['name']} (capability {d['capability']}), training precision {d['amp_dtype']}, "
             f"torch {d['torch']}" + (" — DRY RUN, tiny sizes: the numbers mean nothing" if result["dry_run"] else ""),
             f"data: {result['data']['name']}",
             f"teacher {t['arch']} ({t['params']:,d} params, {t['epochs']} epochs on {t['n_train']:,d} images): "
             f"{t['train_s']:.2f} s training (first epoch {t['first_epoch_s']:.2f} s), {t['images_per_s']:,.0f} images/s; "
             f"test {t['test_acc']:.2%}, TTA mirror {t['test_acc_tta_mirror']:.2%}, TTA six views "
             f"{t['test_acc_tta']:.2%}{mem(t)}",
             f"student {s['arch']} distilled (T = 4, α = 0.9, online teacher, {s['epochs']} epochs): "
             f"{s['train_s']:.2f} s (first epoch {s['first_epoch_s']:.2f} s), {s['images_per_s']:,.0f} images/s; "
             f"test {s['test_acc']:.2%}{mem(s)}"]
    for name, tg in result["targets"].items():
        verdict = {True: "MET", False: "NOT MET", None: "cannot tell"}[tg["met"]]
        lines.append(f"target {name}: {tg['target']} — {verdict}"
                     + (f" ({tg['measured']})" if tg["measured"] else "") + (f"; {tg['note']}" if tg["note"] else ""))
    return "\n".join(lines)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", help="cuda, cuda:1 or cpu (default: cuda if available)")
    p.add_argument("--dry-run", action="store_true", help="tiny stand-in data and few epochs: checks the code path")
    p.add_argument("--deterministic", action="store_true", help="train with the deterministic switch (to time its cost)")
    p.add_argument("--json", default=None, help=f"where to save the results (default: {RESULTS_DIR}/gpu_check.json, "
                                                "gpu_check_dry_run.json for a dry run)")
    args = p.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: PyTorch sees no CUDA GPU (torch {torch.__version__}); "
                         "check the driver and the CUDA build of PyTorch, or use --device cpu --dry-run")
    if device.type != "cuda" and not args.dry_run:
        raise SystemExit("no CUDA GPU here: the full check would take hours on a CPU. "
                         "Run with --dry-run to check the code path at tiny size.")
    result = run(device, dry_run=args.dry_run, deterministic=args.deterministic)
    out = Path(args.json) if args.json else RESULTS_DIR / ("gpu_check_dry_run.json" if args.dry_run else "gpu_check.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(report(result))
    print(json.dumps(result, indent=2))
    print(f"saved to {out}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
