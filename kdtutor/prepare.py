"""Get a machine ready before a workshop: ``python -m kdtutor prepare [--profile P] [--pretrain]``.

1. checks the environment: Python, torch and torchvision versions, the device (and the
   mixed precision it will use), free disk space, write access to the data and results folders;
2. fetches or imports the data the profile needs and verifies it: the images (the stand-in
   for ``smoke``; CIFAR-10 for ``cpu``/``gpu``, from ``$KDTUTOR_CIFAR10`` if set, else
   downloaded and checksummed) and lesson 07's text (``$KDTUTOR_TEXT``, else downloaded);
3. with ``--pretrain``: trains and saves the teacher of lessons 03–05 and lesson 04's
   students (its T × α sweep, then scratch and distilled students for every seed, where the
   lesson looks for them), so a learner can start at any lesson without waiting.

It prints one table of PASS / WARN / FAIL rows and returns 1 if any row failed. Everything
it writes goes through the course's own caches and checkpoints, which are written atomically
and reused when valid: interrupting it and running it again picks up where it stopped.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

MIN_FREE_GB = 2.0
MIN_VERSIONS = {"python": (3, 10), "torch": (2, 3), "torchvision": (0, 18)}  # as pyproject.toml


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("+")[0].split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def version_row(name: str, version: str) -> tuple[str, str, str]:
    need = MIN_VERSIONS[name]
    ok = _version_tuple(version) >= need
    return (name, "PASS" if ok else "FAIL", f"{version} (needs ≥ {'.'.join(map(str, need))})")


def device_row() -> tuple[str, str, str]:
    import torch

    from .precision import amp_dtype, dtype_name
    from .profiles import get_profile

    default = os.environ.get("KDTUTOR_PROFILE") or get_profile().name
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        return ("device", "PASS", f"CUDA: {name}; mixed precision {dtype_name(amp_dtype('cuda'))}; "
                                  f"default profile {default}")
    return ("device", "PASS", f"CPU ({os.cpu_count()} cores), no CUDA GPU; default profile {default}")


def disk_row(folder: Path, min_gb: float = MIN_FREE_GB) -> tuple[str, str, str]:
    probe = folder
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free / 1e9
    return ("disk", "PASS" if free >= min_gb else "FAIL", f"{free:.1f} GB free at {probe} (needs ≥ {min_gb:g} GB)")


def write_row(label: str, folder: Path) -> tuple[str, str, str]:
    """Can we create ``folder`` and write a file in it? (Leaves the folder, removes the file.)"""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".prepare-"):
            pass
    except OSError as e:
        return (f"write {label}", "FAIL", f"{folder}: {e}")
    return (f"write {label}", "PASS", str(folder))


def images_row(profile) -> tuple[str, str, str]:
    """The images the profile uses, loaded and checked. ``$KDTUTOR_CIFAR10``, once set, is always
    loaded and must work, whatever the profile (the smoke profile's stand-in does not hide a bad copy)."""
    from .data import CIFAR10_ENV, load_cifar10_copy, load_dataset

    where = os.environ.get(CIFAR10_ENV, "").strip()
    try:
        copy = load_cifar10_copy(where, progress=False) if where and profile.dataset != "cifar10" else None
        data = load_dataset(profile, role="teacher", verbose=False)
    except Exception as e:  # a corrupt archive, a wrong path: say so
        return ("images", "FAIL", f"{type(e).__name__}: {e}")
    detail = f"{data.name}: {len(data.train)} train / {len(data.val)} val / {len(data.test)} test images"
    if where:
        detail += f" from ${CIFAR10_ENV}={where}" if not data.is_standin else (
            f"; ${CIFAR10_ENV}={where} also checked: {copy.name}, "
            f"{len(copy.train) + len(copy.val) + len(copy.test)} images")
    if profile.dataset != "standin" and data.is_standin:
        return ("images", "FAIL", f"CIFAR-10 unavailable, the lessons would fall back to the stand-in; "
                                  f"set {CIFAR10_ENV} to a local copy ({detail})")
    return ("images", "PASS", detail)


def text_row(profile) -> tuple[str, str, str]:
    """Lesson 07's text for the profile, checked to be a readable text long enough for its windows;
    ``$KDTUTOR_TEXT``, once set, must be usable whatever the profile."""
    from .lm_lesson import lesson_text
    from .text import TEXT_ENV

    try:
        text = lesson_text(profile.name, verbose=False)
    except Exception as e:
        return ("text", "FAIL", f"{type(e).__name__}: {e}")
    detail = f"{text.name}: {text.train.numel() + text.val.numel() + text.test.numel():,d} characters"
    if text.is_standin and profile.name != "smoke":
        return ("text", "FAIL", f"tiny Shakespeare unavailable, lesson 07 would use a stand-in; set {TEXT_ENV} "
                                f"to a local copy ({detail})")
    return ("text", "PASS", detail)


def pretrain_rows(profile) -> list[tuple[str, str, str]]:
    """Train (or reuse) the teacher and lesson 04's students, exactly as lessons 03 and 04 do."""
    from . import distill, train
    from .data import load_dataset
    from .storage import CHECKPOINT_DIR

    device = train.default_device()
    t0 = time.perf_counter()
    teacher = train.get_teacher(profile, load_dataset(profile, role="teacher", verbose=False), device=device)
    rows = [("teacher", "PASS", f"{profile.teacher}: val acc {teacher.history.last_val_acc:.2%} "
                                f"({time.perf_counter() - t0:.0f} s) → {train.teacher_path(profile)}")]
    data = load_dataset(profile, verbose=False)

    def student_cfg(seed):  # as lesson 04's student_cfg
        return train.config_for(profile.student, profile.student_epochs, profile.batch_size, seed=seed)

    t0 = time.perf_counter()
    sweep = distill.sweep(teacher.model, profile.student, data, student_cfg(profile.sweep_seed),
                          profile.temperatures, profile.alphas, device=device)
    T, alpha = sweep.best
    folder = CHECKPOINT_DIR / f"students_{profile.name}"
    distill.compare_scratch_vs_kd(teacher.model, profile.student, data, student_cfg, profile.seeds, T=T, alpha=alpha,
                                  split="val", device=device, checkpoint_dir=folder, profile=profile.name)
    rows.append(("students", "PASS", f"lesson 04: sweep + {2 * len(profile.seeds)} students at T={T:g}, "
                                     f"α={alpha:g} ({time.perf_counter() - t0:.0f} s) → {folder}"))
    return rows


def format_table(rows) -> str:
    widths = [max(len(r[i]) for r in rows + [("check", "result", "")]) for i in range(2)]
    lines = [f"{'check':<{widths[0]}}  {'result':<{widths[1]}}  detail"]
    lines += [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c}" for a, b, c in rows]
    return "\n".join(lines)


def prepare(profile_name: str | None = None, pretrain: bool = False, data_only: bool = False,
            needs=None, out=print) -> int:
    """Run the checks (see the module docstring), print the table; 0 if nothing failed, else 1."""
    import torch
    import torchvision

    from .profiles import get_profile
    from .storage import DATA_DIR, RESULTS_DIR

    profile = get_profile(profile_name)
    needs = set(needs or ("images", "text"))
    t0 = time.perf_counter()
    rows = []
    if not data_only:
        rows += [version_row("python", ".".join(map(str, sys.version_info[:3]))),
                 version_row("torch", torch.__version__), version_row("torchvision", torchvision.__version__),
                 device_row(), disk_row(DATA_DIR), write_row("data", DATA_DIR), write_row("results", RESULTS_DIR)]
    if "images" in needs:
        rows.append(images_row(profile))
    if "text" in needs:
        rows.append(text_row(profile))
    if pretrain:
        if any(r[1] == "FAIL" for r in rows):
            rows.append(("pretrain", "FAIL", "skipped: fix the failed checks above first"))
        else:
            rows += pretrain_rows(profile)
    rows.append(("total", "PASS" if all(r[1] != "FAIL" for r in rows) else "FAIL",
                 f"profile {profile.name}, {time.perf_counter() - t0:.0f} s"))
    out(format_table(rows))
    return 0 if rows[-1][1] == "PASS" else 1
