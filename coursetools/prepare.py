"""Workshop preparation on top of the learner's ``kdtutor prepare``: pre-training and a wheelhouse.

* ``python -m coursetools pretrain [--profile P]``: the learner's checks (``kdtutor.machine.prepare``),
  then every lesson run once, headless, in the profile (the course run of ``make course``); each
  lesson trains and keeps its models where it looks for them, so a learner can then start at any
  lesson without waiting for training.
* ``python -m coursetools wheelhouse DIR``: one machine downloads every wheel a room needs, at the
  workshop's pinned versions (``requirements/workshop.txt``), into ``DIR``; each laptop then installs
  offline with ``python -m kdtutor install --wheelhouse DIR``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kdtutor.machine import (BUILD_REQUIREMENT, CPU_INDEX, ROOT, TORCH_REQUIREMENTS, choose_torch, prepare,
                             run_commands)

WORKSHOP_PINS = ROOT / "requirements" / "workshop.txt"  # uv pip compile output; see requirements/workshop.in


def pretrain_rows(profile, results_dir: Path | None = None) -> list[tuple[str, str, str]]:
    """Run every lesson once, headless (:func:`coursetools.course.run_course`): each trains and
    keeps its models exactly where it looks for them (the teacher, lesson 04's sweep and students,
    lesson 06's runs, lesson 07's models), so that afterwards every lesson starts from checkpoints.
    One row per lesson with its time; the executed copies go to ``results_dir`` (default ``results/``)."""
    from coursetools.course import run_course

    try:
        summary = run_course(profile.name, results_dir=results_dir)
    except Exception as e:  # a lesson that fails: say which and why, as a row
        first = str(e).strip().splitlines()[:3]
        return [("pretrain", "FAIL", f"a lesson failed ({type(e).__name__}): " + " / ".join(first))]
    timings = json.loads((summary.parent / "timings.json").read_text())["lessons"]
    return [(Path(name).stem, "PASS", f"ran in {sec:.0f} s; its models are kept for the next run")
            for name, sec in timings.items()]


def pretrain(profile_name: str | None = None, out=print) -> int:
    """``pretrain``: the learner's checks, then (if they pass) every lesson once; 0 if nothing failed."""
    return prepare(profile_name, out=out, then=pretrain_rows)


def wheelhouse_commands(folder, pins=WORKSHOP_PINS, cpu_torch: bool = True, python: str = sys.executable,
                        root: Path = ROOT) -> list[list[str]]:
    """The pip downloads that fill ``folder`` with every wheel the course needs at the ``pins``.

    With ``cpu_torch``, torch and torchvision come first, alone, from ``CPU_INDEX``; the second
    download looks in ``folder`` too, so it takes those CPU wheels instead of PyPI's CUDA ones
    (``2.11.0+cpu`` sorts above ``2.11.0``) and fetches everything else from the usual index.
    ``root`` itself is not saved: the room installs it from its own checkout.
    """
    download = [python, "-m", "pip", "download", "--dest", str(folder), "--constraint", str(pins)]
    commands = []
    if cpu_torch:
        commands.append(download + ["--no-deps", "--index-url", CPU_INDEX, *TORCH_REQUIREMENTS])
    commands.append(download + ["--find-links", str(folder), BUILD_REQUIREMENT, str(root)])
    return commands


def make_wheelhouse(folder, pins=WORKSHOP_PINS, add: bool = False, torch: str = "auto", dry_run: bool = False,
                    run=None, out=print, **choose) -> int:
    """``wheelhouse DIR``: download the room's wheels into ``DIR`` once; 0 on success.

    Refuses a ``DIR`` that already holds files unless ``add`` (pip then keeps the files it
    finds there and downloads only what is missing). The wheels fit this machine's operating
    system, processor and Python: make the wheelhouse on a laptop like the room's. The room is
    taken to have no GPU (CPU wheels, as ``choose_torch`` without a GPU); ``torch="default"``
    for a room of NVIDIA laptops.
    """
    folder, pins = Path(folder), Path(pins)
    if not pins.is_file():
        raise SystemExit(f"no pinned versions at {pins}: run from a checkout of the course, or pass --pins FILE")
    if folder.exists() and not folder.is_dir():
        raise SystemExit(f"--wheelhouse {folder} is a file, not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not add:
        raise SystemExit(f"--wheelhouse {folder} already holds files; pass --add to download into it anyway "
                         f"(pip keeps what is there), or choose an empty folder")
    choose.setdefault("gpu", lambda: False)  # the room's laptops, not this machine
    choice = choose_torch(torch, **choose)
    out(f"PyTorch: {choice.reason}")
    status = run_commands(wheelhouse_commands(folder, pins, choice.wheels == "cpu"), dry_run, run, out)
    if status == 0:
        out(f"{'would fill' if dry_run else 'filled'} {folder}; on each laptop, in a checkout of the course:\n"
            f"  python -m kdtutor install --wheelhouse {folder} --constraints {pins}")
    return status
