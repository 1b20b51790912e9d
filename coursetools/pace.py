"""How long a lesson takes: the reading time, estimated from its text, and the compute time,
measured by a course run — written into each lesson's first cell by ``python -m coursetools generate``.

* :func:`reading_minutes` — markdown words at :data:`WORDS_PER_MINUTE`, plus :data:`CODE_CELL_MINUTES`
  per code cell (reading it and looking at its output);
* ``pace.json`` (next to this module) — per lesson, the seconds of the last measured course run of
  each profile, with where and when it was measured; ``python -m coursetools pace results/cpu/timings.json``
  records a finished ``make course`` run there;
* :func:`pace_line` — the line itself, e.g. ``**Time:** reading ≈ 20 min · compute ≈ 6 min on the
  cpu profile (2-core CPU, measured 2026-12-04; GPU not measured)``.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

PACE_PATH = Path(__file__).with_name("pace.json")
WORDS_PER_MINUTE = 200  # reading technical prose with formulas: slower than the ~250 of plain text
CODE_CELL_MINUTES = 0.5
LINE_PREFIX = "**Time:**"
_LINE = re.compile(r"^\*\*Time:\*\*.*$", re.MULTILINE)


def reading_minutes(nb) -> int:
    """Minutes to read ``nb``: markdown words (the generated time line left out) at
    :data:`WORDS_PER_MINUTE` plus :data:`CODE_CELL_MINUTES` per code cell, rounded up to whole minutes."""
    words = sum(len(_LINE.sub("", c.source).split()) for c in nb.cells if c.cell_type == "markdown")
    code = sum(1 for c in nb.cells if c.cell_type == "code")
    return max(1, math.ceil(words / WORDS_PER_MINUTE + CODE_CELL_MINUTES * code))


def load_pace(path: Path = PACE_PATH) -> dict:
    """``{"runs": {profile: {"lessons": {stem: seconds}, "machine": str, "date": str}}}``, validated."""
    data = json.loads(Path(path).read_text()) if Path(path).exists() else {"runs": {}}
    for profile, run in data.get("runs", {}).items():
        if not {"lessons", "machine", "date"} <= set(run):
            raise ValueError(f"{path}: run {profile!r} needs 'lessons', 'machine' and 'date'")
        bad = {k: v for k, v in run["lessons"].items() if not (isinstance(v, (int, float)) and v >= 0)}
        if bad:
            raise ValueError(f"{path}: run {profile!r} has lesson times that are not seconds ≥ 0: {bad}")
    return data


def compute_phrase(seconds: float) -> str:
    """``"≈ 7 min"``, or ``"< 1 min"`` for less than a minute."""
    return "< 1 min" if seconds < 60 else f"≈ {round(seconds / 60)} min"


def pace_line(nb, lesson: str, pace: dict) -> str:
    """The time line of lesson ``lesson`` (its file stem) from ``pace`` (:func:`load_pace`)."""
    parts = [f"reading ≈ {reading_minutes(nb)} min"]
    for profile in ("cpu", "gpu"):
        run = pace.get("runs", {}).get(profile)
        if run and lesson in run["lessons"]:
            parts.append(f"compute {compute_phrase(run['lessons'][lesson])} on the {profile} profile "
                         f"({run['machine']}, measured {run['date']})")
        elif profile == "gpu":
            parts.append("on a GPU not measured yet")
    return f"{LINE_PREFIX} " + " · ".join(parts)


def set_pace(nb, lesson: str, pace: dict) -> bool:
    """Write the time line as the last paragraph of ``nb``'s first cell; True if it changed."""
    first = nb.cells[0]
    body = _LINE.sub("", first.source).rstrip()
    new = f"{body}\n\n{pace_line(nb, lesson, pace)}"
    changed = new != first.source
    first.source = new
    return changed


ENVIRONMENT_KEYS = ("torch", "torch_threads", "OMP_NUM_THREADS", "cuda", "python", "cpu_count", "load_before",
                    "load_after", "data_empty_at_start", "probe_before", "probe_after")


def record_run(timings_path: Path, machine: str, date: str, path: Path = PACE_PATH, environment: dict | None = None) -> dict:
    """Store a course run's per-lesson seconds (``timings.json`` of :func:`coursetools.course.run_course`)
    in ``pace.json`` under its profile, with what it ran on (``environment``: the JSON that
    ``benchmarks/course_time.py --json`` writes — torch build, threads, load average, whether the data
    folder was empty, the machine's speed before and after (:mod:`coursetools.speedprobe`); its
    :data:`ENVIRONMENT_KEYS` are kept); returns the new contents."""
    from kdtutor.storage import atomic_write_bytes

    run = json.loads(Path(timings_path).read_text())
    if not {"profile", "lessons"} <= set(run):
        raise ValueError(f"{timings_path}: not a course run's timings (needs 'profile' and 'lessons')")
    pace = load_pace(path)
    pace.setdefault("runs", {})[run["profile"]] = {
        "lessons": {Path(k).stem: round(float(v), 1) for k, v in run["lessons"].items()},
        "machine": machine, "date": date,
        **({"environment": {k: environment[k] for k in ENVIRONMENT_KEYS if k in environment}} if environment else {})}
    atomic_write_bytes(Path(path), (json.dumps(pace, indent=1, sort_keys=True) + "\n").encode())
    return pace
