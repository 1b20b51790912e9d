"""Autograding: run submitted lesson notebooks headless and grade every exercise.

    python -m kdtutor grade alice.ipynb bob.ipynb --out grades.csv [--time-limit 600]

Each submission runs in its own process and its own kernel, with a time limit for the whole
notebook, offline (``KDTUTOR_OFFLINE=1``), in the smoke profile unless ``--profile`` says
otherwise, with its results written to a scratch folder (not the course's ``results/``).
While it runs, every exercise check appends its verdict on the learner's own function to a
log (``$KDTUTOR_GRADE_LOG``, see :mod:`kdtutor.checks.core`). The grade of an exercise is the
last verdict of its check on the function the lesson's check cell names:

=================  ==============================================================
``passed``         the check passed on the learner's function
``failed``         the check found a wrong case (its message says which)
``not attempted``  the stub still raises ``NotImplementedError``
``error``          the check never ran on it: the cell was removed, the notebook
                   crashed before it, or the time limit was reached
=================  ==============================================================

Which exercises a lesson has comes from the course's own copy of the lesson in
``notebooks/`` (see :func:`kdtutor.classroom.instructor.exercises`), so deleting a check cell does not
remove the exercise. A crash, a timeout or an endless loop costs only that submission.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kdtutor.classroom.instructor import NOTEBOOK_DIR, exercises
from kdtutor.storage import atomic_write_bytes

STATUSES = ("passed", "failed", "not attempted", "error")
FIELDS = ("learner", "lesson", "exercise", "status", "message")
DEFAULT_TIME_LIMIT = 600  # seconds per notebook


@dataclass(frozen=True)
class Grade:
    learner: str
    lesson: str
    exercise: str
    status: str
    message: str


def lesson_of(nb, path: Path, notebook_dir: Path = NOTEBOOK_DIR) -> str:
    """The lesson a submission belongs to: ``metadata.kdtutor.lesson`` (set in every lesson),
    else its file name; ValueError if neither names a lesson of the course."""
    lessons = {p.stem for p in Path(notebook_dir).glob("[0-9][0-9]_*.ipynb")}
    named = nb.metadata.get("kdtutor", {}).get("lesson")
    if named in lessons:
        return named
    by_name = [stem for stem in lessons if Path(path).stem.startswith(stem)]
    if len(by_name) == 1:
        return by_name[0]
    raise ValueError(f"{path}: cannot tell which lesson this is (no metadata.kdtutor.lesson and the file name "
                     f"matches none of {sorted(lessons)})")


def _execute(notebook: str, log: str, time_limit: float) -> None:
    """Child process: run ``notebook`` in a fresh kernel within ``time_limit`` s in all; write a
    JSON report of the cells that raised (and whether time ran out) next to ``log``."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    nb = nbformat.read(notebook, as_version=4)
    deadline = time.monotonic() + time_limit

    def remaining(cell) -> int:
        return max(1, int(deadline - time.monotonic()))

    client = NotebookClient(nb, timeout_func=remaining, allow_errors=True, kernel_name="python3",
                            interrupt_on_timeout=False,
                            resources={"metadata": {"path": str(Path(notebook).parent)}})
    report = {"timed_out": False, "died": None, "errors": []}
    try:
        client.execute()
    except CellTimeoutError:
        report["timed_out"] = True
    except DeadKernelError as e:
        report["died"] = str(e) or "the kernel died"
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                report["errors"].append(f"cell {cell.get('id')}: {out.get('ename')}: {out.get('evalue')}")
    Path(log + ".run.json").write_text(json.dumps(report))


def run_submission(path: Path, time_limit: float, profile: str = "smoke") -> tuple[list[dict], dict]:
    """Run one submission in its own process; return its check records and its run report."""
    with tempfile.TemporaryDirectory(prefix="kdtutor-grade-") as tmp:
        work = Path(tmp) / "submission.ipynb"
        work.write_bytes(Path(path).read_bytes())
        log = str(Path(tmp) / "checks.jsonl")
        env = {**os.environ, "KDTUTOR_PROFILE": profile, "KDTUTOR_GRADE_LOG": log, "KDTUTOR_OFFLINE": "1",
               "MPLBACKEND": "Agg", "KDTUTOR_RESULTS": str(Path(tmp) / "results")}
        proc = subprocess.Popen([sys.executable, "-m", "kdtutor.classroom.grading", "--execute", str(work), log,
                                 str(time_limit)], env=env, cwd=tmp, start_new_session=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            out, _ = proc.communicate(timeout=time_limit + 60)  # the child stops itself; this is a backstop
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        run_file = Path(log + ".run.json")
        if run_file.exists():
            report = json.loads(run_file.read_text())
        else:
            tail = out.decode("utf-8", "replace").strip().splitlines()[-3:]
            report = {"timed_out": proc.returncode == -signal.SIGKILL, "died": " / ".join(tail) or
                      f"the grading process ended with code {proc.returncode}", "errors": []}
        records = []
        if Path(log).exists():
            records = [json.loads(line) for line in Path(log).read_text(encoding="utf-8").splitlines() if line]
    return records, report


def grade_records(learner: str, lesson: str, expected, records: list[dict], report: dict,
                  time_limit: float) -> list[Grade]:
    """One :class:`Grade` per expected exercise from the check records of one run."""
    why_missing = "its check did not run on " + "{fn}"
    if report.get("timed_out"):
        why_missing += f": the notebook hit the time limit of {time_limit:g} s before it"
    elif report.get("died"):
        why_missing += f": the kernel died ({report['died']})"
    elif report.get("errors"):
        why_missing += f" (first error: {report['errors'][0]})"
    else:
        why_missing += " (was its check cell removed or renamed?)"
    grades = []
    for ex in expected:
        mine = [r for r in records if r["check"] == ex.check and r["function"] == ex.function]
        if not mine:
            grades.append(Grade(learner, lesson, ex.check, "error", why_missing.format(fn=ex.function)))
            continue
        passed = mine[-1]["passed"]
        status = {True: "passed", False: "failed", None: "not attempted"}[passed]
        grades.append(Grade(learner, lesson, ex.check, status, mine[-1]["message"].strip()))
    return grades


def grade(paths, time_limit: float = DEFAULT_TIME_LIMIT, profile: str = "smoke",
          notebook_dir: Path = NOTEBOOK_DIR, progress=print) -> list[Grade]:
    """Grade every submission in ``paths``; a broken one costs only its own rows."""
    import nbformat

    if time_limit <= 0:
        raise ValueError(f"the time limit must be positive, got {time_limit}")
    grades = []
    for path in map(Path, paths):
        learner = path.stem
        try:
            nb = nbformat.read(path, as_version=4)
            lesson = lesson_of(nb, path, notebook_dir)
        except Exception as e:  # unreadable or unknown: one row says so
            grades.append(Grade(learner, "?", "?", "error", f"cannot grade {path.name}: {e}"))
            progress(f"{learner}: cannot grade ({e})")
            continue
        expected = exercises(nbformat.read(Path(notebook_dir) / f"{lesson}.ipynb", as_version=4))
        t0 = time.perf_counter()
        records, report = run_submission(path, time_limit, profile)
        mine = grade_records(learner, lesson, expected, records, report, time_limit)
        grades += mine
        n_passed = sum(g.status == "passed" for g in mine)
        progress(f"{learner} ({lesson}): {n_passed}/{len(mine)} passed in {time.perf_counter() - t0:.0f} s"
                 + (" — time limit reached" if report.get("timed_out") else ""))
    return grades


def to_csv(grades: list[Grade]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(FIELDS)
    for g in grades:
        writer.writerow([g.learner, g.lesson, g.exercise, g.status, re.sub(r"\s*\n\s*", " | ", g.message)])
    return buf.getvalue()


def write_csv(grades: list[Grade], out: str | os.PathLike) -> Path:
    return atomic_write_bytes(out, to_csv(grades).encode("utf-8"))


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "--execute":
    _execute(sys.argv[2], sys.argv[3], float(sys.argv[4]))
