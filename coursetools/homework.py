"""Grading the weekly homework (``homework/hw1.ipynb``, ``homework/hw2.ipynb``), each learner
against their own variant.

    from coursetools.homework import grade_homework
    rows = grade_homework("submissions/alice/hw1.ipynb", "s1234567")   # list of coursetools.grading.Grade

The homework's problems are not in ``kdtutor`` (new functions, variants of the lessons' losses,
readings of a small run); their numbers come from the learner's id through
``homework/hwtools.py:variant`` (shipped with the notebooks, no answer in it). The hidden tests
and model answers live in ``instructor/homework/`` (``hwN_tests.py``, ``hwN_solution.py``), which
``python -m coursetools release`` never ships.

What :func:`grade_homework` does:

1. reads the submission's code cells (nothing of it runs in the grader's process) and the id it
   names in ``STUDENT_ID`` (read, not run: a row says when it is not the roster's id);
2. runs them in a sandboxed subprocess (the lessons' grader's sandbox:
   :func:`coursetools.grading.find_sandbox`) within ``time_limit`` seconds in all: for each problem a
   forked child runs every code cell in order (a cell that raises is recorded and the next cells
   still run; IPython magics do nothing) and then that problem's hidden test, with the variant of
   the **roster's** id, within :data:`PROBLEM_TIME_LIMIT` seconds;
3. returns one row per problem: ``passed`` (its points), ``failed`` (which case, what was
   expected), ``not attempted`` (the stub still raises ``NotImplementedError`` or the answer is
   still ``None``) or ``error`` (no verdict: time limit, crash); then one row ``student_id``
   (0 points) saying whether the notebook's id is the roster's.

So a notebook copied from a classmate (their ``STUDENT_ID``, their numbers) fails every problem
whose numbers differ between the two variants; re-deriving one's own numbers with a classmate's
code is not detected (compare the code for that). Limits as in :mod:`coursetools.grading`: a
function written to attack its own check can change that problem's verdict only.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import select
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable

from coursetools.grading import (INSIDE, Grade, Sandbox, _run_sandboxed, _scratch_env, check_time_limit,
                                 find_sandbox)
from kdtutor.storage import REPO_ROOT

HOMEWORK_DIR = REPO_ROOT / "homework"  # learner notebooks + hwtools.py (shipped)
INSTRUCTOR_DIR = REPO_ROOT / "instructor" / "homework"  # hidden tests and model answers (never shipped)
HOMEWORKS = ("hw1", "hw2")
DEFAULT_TIME_LIMIT = 120  # seconds for one submission in all
PROBLEM_TIME_LIMIT = 30  # seconds for one problem (running the cells, then its hidden test)
VERDICTS = "KDTUTOR-HOMEWORK "  # the runner's last line of output
STUDENT_ID_ROW = "student_id"


# --------------------------------------------------------------------------- what hidden tests use
class NotAttempted(Exception):
    """The learner has not answered yet (stub raises NotImplementedError, answer still None)."""


class Failed(AssertionError):
    """A hidden test found a wrong case; the message says which and what was expected."""


@dataclass(frozen=True)
class Problem:
    """One graded problem: its name (the function or answer variable), its points, and its hidden
    test ``test(namespace, variant)`` that returns on a right answer and raises :class:`Failed`
    (or :class:`NotAttempted`) otherwise."""

    name: str
    points: int
    test: Callable[[dict, dict], None]


def function(ns: dict, name: str) -> Callable:
    """The learner's function ``name`` from the notebook's namespace ``ns``."""
    fn = ns.get(name)
    if fn is None:
        raise Failed(f"the notebook does not define {name} (was its cell renamed or deleted?)")
    if not callable(fn):
        raise Failed(f"{name} is not a function but a {type(fn).__name__}")
    return fn


def call(fn: Callable, *args):
    """``fn(*args)``; :class:`NotAttempted` for the stub's NotImplementedError, :class:`Failed` for any other error."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise NotAttempted("the stub still raises NotImplementedError") from None
    except Exception as e:
        raise Failed(f"{getattr(fn, '__name__', 'it')} raised {type(e).__name__}: {e}") from None


def number(ns: dict, name: str) -> float:
    """The learner's numeric answer ``name`` (a finite number); NotAttempted while it is None."""
    if name not in ns:
        raise Failed(f"the notebook does not set {name}")
    got = ns[name]
    if got is None:
        raise NotAttempted(f"{name} is still None")
    try:
        value = float(got)
    except (TypeError, ValueError):
        raise Failed(f"{name} must be a number, got {got!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise Failed(f"{name} must be a finite number, got {got!r}")
    return value


def expect_close(got: float, want: float, what: str, atol: float) -> None:
    """:class:`Failed` unless ``|got − want| ≤ atol``."""
    if not abs(got - want) <= atol:
        raise Failed(f"{what}: got {got:.6g}, expected {want:.6g} (± {atol:g}) for your variant")


# --------------------------------------------------------------------------- reading a submission
def homework_of(nb, path: Path) -> str:
    """``"hw1"`` or ``"hw2"``: ``metadata.kdtutor.homework``, else the file name; ValueError if neither."""
    named = nb.metadata.get("kdtutor", {}).get("homework")
    if named in HOMEWORKS:
        return named
    by_name = [hw for hw in HOMEWORKS if Path(path).stem.startswith(hw)]
    if len(by_name) == 1:
        return by_name[0]
    raise ValueError(f"{path}: cannot tell which homework this is (no metadata.kdtutor.homework and the file "
                     f"name starts with none of {HOMEWORKS})")


def code_cells(nb) -> list[str]:
    """The notebook's code cells as plain Python (IPython magics and shell lines become calls that do nothing)."""
    from IPython.core.inputtransformer2 import TransformerManager

    tm = TransformerManager()
    return [tm.transform_cell(c.source) for c in nb.cells if c.cell_type == "code"]


def notebook_student_id(cells: list[str]) -> str | None:
    """The literal the notebook assigns to ``STUDENT_ID`` (read, never run); None if there is none."""
    for source in cells:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "STUDENT_ID"
                                                     for t in node.targets)
                    and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
                return node.value.value
    return None


def load_module(path: Path, name: str):
    """Import the Python file ``path`` as module ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def problems(homework: str, instructor_dir: Path = INSTRUCTOR_DIR) -> tuple[Problem, ...]:
    """The graded problems of ``homework`` (from ``instructor/homework/<homework>_tests.py``, whose
    ``PROBLEMS`` lists them and whose optional ``prepare(variant)`` the runner calls before any learner code)."""
    if homework not in HOMEWORKS:
        raise ValueError(f"homework must be one of {HOMEWORKS}, got {homework!r}")
    return load_module(Path(instructor_dir) / f"{homework}_tests.py", f"_{homework}_tests").PROBLEMS


def model_answers(homework: str, instructor_dir: Path = INSTRUCTOR_DIR) -> dict[str, str]:
    """``{answer cell name: source}`` from ``instructor/homework/<homework>_solution.py``, whose
    sections start with a line ``# %% [answer <name>]``."""
    text = (Path(instructor_dir) / f"{homework}_solution.py").read_text(encoding="utf-8")
    parts = re.split(r"^# %% \[answer (\w+)\]\n", text, flags=re.M)
    return {name: body.strip() + "\n" for name, body in zip(parts[1::2], parts[2::2])}


def solved_notebook(homework: str, instructor_dir: Path = INSTRUCTOR_DIR):
    """The learner notebook of ``homework`` with every answer cell (metadata ``kdtutor.homework_answer``)
    replaced by its model answer; ValueError if an answer cell has none or a model answer no cell."""
    import nbformat

    nb = nbformat.read(HOMEWORK_DIR / f"{homework}.ipynb", as_version=4)
    answers = model_answers(homework, instructor_dir)
    cells = {c.metadata.get("kdtutor", {}).get("homework_answer"): c for c in nb.cells}
    cells.pop(None, None)
    if set(cells) != set(answers):
        raise ValueError(f"{homework}: answer cells {sorted(cells)} but model answers {sorted(answers)}")
    for name, cell in cells.items():
        cell.source = answers[name].rstrip("\n")
    return nb


# --------------------------------------------------------------------------- grading
def grade_homework(notebook_path, student_id: str, time_limit: float = DEFAULT_TIME_LIMIT,
                   sandbox: Sandbox | None = None, learner: str | None = None,
                   problem_time_limit: float = PROBLEM_TIME_LIMIT) -> list[Grade]:
    """Grade the homework notebook at ``notebook_path`` against the variant of ``student_id`` (the
    roster's id); one :class:`~coursetools.grading.Grade` per problem, then the ``student_id`` row.
    ``learner`` names the rows (default: ``student_id``); ``time_limit`` (s) bounds the whole
    submission, ``problem_time_limit`` (s) each problem's run of the cells and its test."""
    import nbformat

    time_limit, problem_time_limit = check_time_limit(time_limit), check_time_limit(problem_time_limit)
    path = Path(notebook_path)
    nb = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
    homework = homework_of(nb, path)
    load_module(HOMEWORK_DIR / "hwtools.py", "_hwtools").seed_of(homework, student_id)  # no id: ValueError now
    graded = problems(homework)
    cells = code_cells(nb)
    sandbox = sandbox or find_sandbox()
    learner = learner or student_id
    with tempfile.TemporaryDirectory(prefix="kdtutor-homework-") as tmp:
        scratch = Path(tmp)
        inside = INSIDE if sandbox.kind == "bubblewrap" else str(scratch)
        grader = scratch / "grader"  # what the runner needs from the checkout, which the sandbox may not show
        grader.mkdir()                # (a checkout under /tmp is behind the sandbox's private /tmp)
        shutil.copyfile(HOMEWORK_DIR / "hwtools.py", grader / "hwtools.py")
        shutil.copyfile(INSTRUCTOR_DIR / f"{homework}_tests.py", grader / f"{homework}_tests.py")
        (scratch / "job.json").write_text(json.dumps({"homework": homework, "student_id": student_id,
                                                      "cells": cells, "problem_time_limit": problem_time_limit,
                                                      "grader": f"{inside}/grader"}))
        env = _scratch_env(scratch, sandbox, "smoke")
        argv = [sys.executable, "-m", "coursetools.homework", "--run", f"{inside}/job.json"]
        code, out = _run_sandboxed(argv, scratch, sandbox, env, time_limit, hide=[path])
    lines = [line for line in out.splitlines() if line.startswith(VERDICTS)]
    try:  # one line from a runner that ended normally; anything else was tampered with or cut short
        got = json.loads(lines[0][len(VERDICTS):]) if code == 0 and len(lines) == 1 else {}
    except ValueError:
        got = {}
    why = (f"the homework did not finish within {time_limit:g} s" if code is None
           else f"the grader's runner failed ({' / '.join(out.strip().splitlines()[-2:]) or code})")
    rows = []
    for p in graded:
        v = got.get(p.name) if isinstance(got, dict) else None
        if not (isinstance(v, dict) and v.get("status") in ("passed", "failed", "not attempted", "error")):
            v = {"status": "error", "message": why}
        earned = p.points if v["status"] == "passed" else 0
        rows.append(Grade(learner, homework, p.name, v["status"], str(v.get("message", "")), earned, p.points,
                          sandbox.kind))
    written = notebook_student_id(cells)
    same = written is not None and written.strip().lower() == student_id.strip().lower()
    rows.append(Grade(learner, homework, STUDENT_ID_ROW, "passed" if same else "failed",
                      f"the notebook's STUDENT_ID is {written!r}" + ("" if same else
                      f", not {student_id!r}: every problem was checked against {student_id!r}'s variant"),
                      0, 0, sandbox.kind))
    return rows


# --------------------------------------------------------------------------- the sandboxed runner
def _not_dumpable() -> None:
    """Linux: make this process non-dumpable, so that its children (learner code, without capabilities in
    the sandbox) cannot open its file descriptors through ``/proc/<pid>/fd`` to print a verdict."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except (OSError, AttributeError):
        pass


def _run(job_path: str) -> None:
    """Sandboxed runner: each problem's verdict from a forked child; all verdicts as the last line."""
    import sklearn.datasets  # noqa: F401 — imported once, before any learner code: every child starts with them
    import torch

    import kdtutor.kd.losses  # noqa: F401

    torch.set_num_threads(1)  # no OpenMP pool in the parent: a pool used before fork() hangs the children

    _not_dumpable()
    job = json.loads(Path(job_path).read_text())
    sys.path.insert(0, job["grader"])  # the course's hwtools, whatever the submission carried
    from hwtools import variant

    v = variant(job["homework"], job["student_id"])
    limit = float(job["problem_time_limit"])
    tests = load_module(Path(job["grader"]) / f"{job['homework']}_tests.py", f"_{job['homework']}_tests")
    if hasattr(tests, "prepare"):  # e.g. the reference run, once, before any learner code
        tests.prepare(v)
    verdicts = {p.name: _in_child(p, job["cells"], v, limit) for p in tests.PROBLEMS}
    print(VERDICTS + json.dumps(verdicts), flush=True)


def _in_child(problem: Problem, cells: list[str], v: dict, limit: float) -> dict:
    """Fork; in the child, run the cells, then ``problem``'s hidden test; its verdict (or an error)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: learner code runs only here
        os.close(read)
        verdict = {"status": "error", "message": "the hidden test did not run"}
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            verdict = _verdict(problem, cells, v)
        finally:
            os.write(write, json.dumps(verdict).encode())
            os._exit(0)
    os.close(write)
    chunks, deadline, timed_out = [], time.monotonic() + limit, False
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([read], [], [], left)[0]:
            timed_out = True
            break
        chunk = os.read(read, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)
    if timed_out:
        return {"status": "error", "message": f"the notebook's cells and this problem's test took longer than "
                                              f"{limit:g} s"}
    try:
        return json.loads(b"".join(chunks)[:1 << 20])
    except ValueError:
        return {"status": "error", "message": "the learner's code ended the process before the test gave a verdict"}


def _verdict(problem: Problem, cells: list[str], v: dict) -> dict:
    """In the child: run every cell (a raising cell is noted, the next cells run), then the hidden test."""
    ns: dict = {"__name__": "__homework__", "get_ipython": _NoIPython}
    errors = []
    for i, source in enumerate(cells):
        try:
            exec(compile(source, f"<code cell {i + 1}>", "exec"), ns)
        except Exception as e:
            errors.append(f"code cell {i + 1}: {type(e).__name__}: {e}")
    try:
        problem.test(ns, v)
    except NotAttempted as e:
        return {"status": "not attempted", "message": str(e)}
    except Failed as e:
        return {"status": "failed", "message": str(e)}
    except Exception as e:
        first = f" (first error in the notebook: {errors[0]})" if errors else ""
        return {"status": "error", "message": f"the hidden test could not run: {type(e).__name__}: {e}{first}"}
    return {"status": "passed", "message": ""}


class _NoIPython:
    """What ``get_ipython()`` gives a graded cell: magics (``%matplotlib``, ``!pip``) do nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--run":
    from coursetools.homework import _run as run  # the importable module: the tests' Failed is its Failed

    run(sys.argv[2])
