"""Autograding: run submitted lesson notebooks headless, then grade every exercise outside them.

    python -m coursetools grade subs/*.ipynb --out grades.csv [--force] [--jobs 2] [--time-limit 600]

What the grader does with each submission (several at once with ``--jobs``):

1. **Run.** A copy of the notebook runs headless in a fresh kernel, offline
   (``KDTUTOR_OFFLINE=1``), in the smoke profile unless ``--profile`` says otherwise, within
   the time limit for the whole notebook, inside a sandbox (see :class:`Sandbox`): only its
   own scratch folder is writable (the notebook's copy, its own ``KDTUTOR_DATA`` and
   ``KDTUTOR_RESULTS``; the prepared data are visible read-only), the submissions read as
   empty files, no network, and every process it started ends with it. The run says which
   cells were reached.
2. **Check.** The grader reads the learner's definitions from the submitted file itself
   (each exercise's cell: its ``def``s, classes and imports, plus the notebook's imports and
   helper functions they use) and runs each exercise's check on them in a fresh process
   (forked from a runner that has only imported torch and kdtutor), in a second, fresh
   sandbox. Nothing the notebook did while it ran (a forged log line, patched checks, files
   left behind) reaches the checks; a check refuses kdtutor's own answer
   (:func:`kdtutor.checks.core.refuse_answer_key`). As in the lesson, a later exercise sees an
   earlier one's function as its check left it (the learner's if it passed, else kdtutor's).
3. **Grade.** One row per exercise of the course's copy of the lesson (deleting a check cell
   does not remove the exercise):

=================  ==============================================================
``passed``         the check passed on the learner's function (its points)
``failed``         the check found a wrong case (its message says which)
``not attempted``  the stub still raises ``NotImplementedError``
``error``          no verdict: the notebook never reached the check cell (removed,
                   renamed, time limit, dead kernel), or the cell does not run
=================  ==============================================================

   After them, one row per **written question** of the lesson (optional, graded by hand; see
   :mod:`coursetools.instructor`), read from the submitted file, never run: ``exercise`` is
   the question's id, ``max_points`` its points, ``points`` 0 until a TA grades it, and

=====================  ==========================================================
``to grade by hand``   ``message`` is the learner's answer, as written
``not attempted``      the answer cell is empty or still says ``*Your answer here.*``
                       (or nbgrader's ``YOUR ANSWER HERE``)
``error``              the submission has no answer cell for the question
=====================  ==========================================================

   An answer that starts with ``=``, ``+``, ``-``, ``@`` or a tab gets a leading ``'`` in the
   CSV, so that a spreadsheet shows it as text instead of running it as a formula.

Rows name the learner by the submission's path relative to the folder all submissions share
(without ``.ipynb``), so two ``alice.ipynb`` in different folders stay apart. The ``sandbox``
column says ``bubblewrap``, or ``none`` where bwrap is missing or does not work here: then the
submissions run with the grader's own rights, and the grader says so first.

Not guaranteed: apart from the submissions, a submission can *read* what the grader's user
can read (grade as an unprivileged user, or in a container, to hide other files); memory and
disk are not limited (only time is); and code inside an exercise's
function runs in that exercise's check process, so a function written to attack the check
(e.g. writing a forged verdict for itself and exiting) is not stopped by the sandbox: it can
change only its own exercise's verdict (the runner accepts one verdict line from a runner that
ended normally, and its file descriptors are closed to its children), and its source is in the
submission for a human to see.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import math
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from coursetools.instructor import (ANSWER_PLACEHOLDER, NOTEBOOK_DIR, QUESTION_ID as WRITTEN_ID, Exercise,
                                         exercises, written_questions)
from kdtutor.storage import DATA_DIR, atomic_write_bytes, move_aside

STATUSES = ("passed", "failed", "not attempted", "error")
BY_HAND = "to grade by hand"  # a written answer's status
MAX_ANSWER = 20_000  # characters of a written answer kept in the CSV
UNANSWERED = ("", ANSWER_PLACEHOLDER, "YOUR ANSWER HERE")  # the lesson's text, nbgrader's release's text
FIELDS = ("learner", "lesson", "exercise", "status", "points", "max_points", "message", "sandbox")
DEFAULT_TIME_LIMIT = 600  # seconds per notebook
CHECK_TIME_LIMIT = 60  # seconds per exercise check
INSIDE = "/tmp/grade"  # where a sandbox sees its scratch folder
VERDICTS = "KDTUTOR-VERDICTS "  # the check runner's last line of output
MAX_READ = 1 << 20  # bytes read back from a sandbox (its report, its output)


@dataclass(frozen=True)
class Grade:
    learner: str
    lesson: str
    exercise: str
    status: str
    message: str
    points: int = 0
    max_points: int = 0
    sandbox: str = "none"


# --------------------------------------------------------------------------- the sandbox
@dataclass(frozen=True)
class Sandbox:
    """How submissions run: ``kind`` is ``"bubblewrap"``, or ``"none"`` (then ``why`` says why)."""

    kind: str
    why: str = ""

    def banner(self) -> str:
        if self.kind == "bubblewrap":
            return ("sandbox: bubblewrap (read-only system, private /tmp, no network, only the submission's "
                    "scratch folder writable, everything it starts ends with it)")
        return (f"WARNING: NO SANDBOX ({self.why}). Submissions run with this user's rights: they can change "
                "files, other submissions and these grades. Install bubblewrap (apt-get install bubblewrap).")

    def wrap(self, argv: list[str], scratch: Path, data_dir: Path | None = None, hide=()) -> list[str]:
        """``argv`` to run with ``scratch`` as its only writable folder (seen at :data:`INSIDE`), the
        top-level entries of ``data_dir`` read-only in ``<scratch>/data``, and the files in ``hide``
        (the submissions) empty."""
        if self.kind != "bubblewrap":
            return argv
        binds = []
        for entry in sorted(Path(data_dir).iterdir()) if data_dir and Path(data_dir).is_dir() else []:
            binds += ["--ro-bind", str(entry), f"{INSIDE}/data/{entry.name}"]
        empty = Path(scratch).with_name(Path(scratch).name + ".empty")  # beside the scratch, not in it
        for path in hide:
            if Path(path).is_file():
                empty.touch()
                binds += ["--ro-bind", str(empty), str(Path(path).resolve())]
        return ["bwrap", *BWRAP_ARGS, *_code_binds(), "--bind", str(scratch), INSIDE, *binds, "--chdir", INSIDE, "--",
                *argv]


def _code_binds() -> list[str]:
    """Read-only binds of what the sandboxed Python needs but the private ``/tmp`` would hide: the
    course checkout and the Python environment, where they live under ``/tmp`` (a clone or a
    virtual environment made there, as CI and tests do)."""
    from kdtutor.storage import REPO_ROOT

    needed = {Path(p).resolve() for p in (REPO_ROOT, sys.prefix, sys.exec_prefix, sys.base_prefix)}
    under_tmp = sorted(p for p in needed if p.is_relative_to("/tmp") and p != Path("/tmp"))
    return [arg for p in under_tmp for arg in ("--ro-bind", str(p), str(p))]


BWRAP_ARGS = ("--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
              "--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534", "--cap-drop", "ALL",
              "--die-with-parent", "--new-session")


def find_sandbox() -> Sandbox:
    """Bubblewrap if ``bwrap`` is installed and a trivial sandboxed command works here, else ``none``."""
    if shutil.which("bwrap") is None:
        return Sandbox("none", "bwrap (bubblewrap) is not installed")
    with tempfile.TemporaryDirectory(prefix="kdtutor-sandbox-") as tmp:
        probe = Sandbox("bubblewrap").wrap(["sh", "-c", f"touch {INSIDE}/ok"], Path(tmp))
        try:
            done = subprocess.run(probe, capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as e:
            return Sandbox("none", f"bwrap does not start: {e}")
        if done.returncode != 0 or not (Path(tmp) / "ok").exists():
            err = done.stderr.decode("utf-8", "replace").strip().splitlines()
            return Sandbox("none", f"bwrap does not work here: {err[-1] if err else f'exit code {done.returncode}'}")
    return Sandbox("bubblewrap")


def _run_sandboxed(argv: list[str], scratch: Path, sandbox: Sandbox, env: dict, limit: float,
                   data_dir: Path | None = None, hide=()) -> tuple[int | None, str]:
    """Run ``argv`` in ``sandbox`` for at most ``limit`` s; kill everything it started when it ends.

    Returns (exit code, or None when killed at the limit; the tail of its output)."""
    proc = subprocess.Popen(sandbox.wrap(argv, scratch, data_dir, hide), env=env, cwd=scratch, start_new_session=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=limit)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        code = None
    finally:  # bwrap's pid namespace ends with it; without a sandbox, the process group at least
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if code is None:
        out, _ = proc.communicate()
    return code, out[-MAX_READ:].decode("utf-8", "replace")


def _scratch_env(scratch: Path, sandbox: Sandbox, profile_name: str) -> dict:
    """The environment of a sandboxed process: its own data, results, home and Jupyter folders."""
    inside = INSIDE if sandbox.kind == "bubblewrap" else str(scratch)
    for sub in ("data", "results", "home", "runtime"):
        (scratch / sub).mkdir(exist_ok=True)
    from kdtutor.storage import REPO_ROOT

    env = {k: v for k, v in os.environ.items() if not k.startswith("KDTUTOR_GRADE")}
    path = [str(REPO_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env.update({"PYTHONPATH": os.pathsep.join(path),  # coursetools (the check runner) is not installed: the checkout
                "KDTUTOR_PROFILE": profile_name, "KDTUTOR_OFFLINE": "1", "MPLBACKEND": "Agg",
                "KDTUTOR_DATA": f"{inside}/data", "KDTUTOR_RESULTS": f"{inside}/results", "HOME": f"{inside}/home",
                "JUPYTER_RUNTIME_DIR": f"{inside}/runtime", "IPYTHONDIR": f"{inside}/home/.ipython",
                "MPLCONFIGDIR": f"{inside}/home/.matplotlib", "TMPDIR": "/tmp" if sandbox.kind == "bubblewrap"
                else str(scratch)})
    return env


def _read_small(path: Path) -> str | None:
    """The text of a regular file a sandbox wrote (not through a symlink, at most MAX_READ bytes)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        return f.read(MAX_READ).decode("utf-8", "replace")


# --------------------------------------------------------------------------- step 1: run
def _execute(notebook: str, report_path: str, time_limit: float) -> None:
    """Sandboxed child: run ``notebook`` in a fresh kernel within ``time_limit`` s in all; write a
    JSON report (cells reached, cells that raised, whether time ran out) to ``report_path``."""
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
    report = {"timed_out": False, "died": None, "errors": [], "reached": []}
    try:
        client.execute()
    except CellTimeoutError:
        report["timed_out"] = True
    except DeadKernelError as e:
        report["died"] = str(e) or "the kernel died"
    except Exception as e:  # e.g. a kernel that did not start in time: still report the cells that ran
        report["died"] = f"{type(e).__name__}: {e}"
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.get("execution_count") is not None:
            report["reached"].append(cell.get("id"))
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                report["errors"].append(f"cell {cell.get('id')}: {out.get('ename')}: {out.get('evalue')}")
    Path(report_path).write_text(json.dumps(report))


def run_notebook(source: bytes, scratch: Path, time_limit: float, profile_name: str, sandbox: Sandbox,
                 hide=()) -> dict:
    """Run the notebook ``source`` in ``sandbox`` with ``scratch`` as its folder, the files in ``hide``
    (every submission) unreadable; return its run report."""
    (scratch / "submission.ipynb").write_bytes(source)
    env = _scratch_env(scratch, sandbox, profile_name)
    if sandbox.kind != "bubblewrap" and DATA_DIR.is_dir():  # the prepared data, where the lessons look
        for entry in DATA_DIR.iterdir():
            (scratch / "data" / entry.name).symlink_to(entry)
    inside = INSIDE if sandbox.kind == "bubblewrap" else str(scratch)
    argv = [sys.executable, "-m", "coursetools.grading", "--execute", f"{inside}/submission.ipynb",
            f"{inside}/run.json", str(time_limit)]
    code, out = _run_sandboxed(argv, scratch, sandbox, env, time_limit + 60, data_dir=DATA_DIR, hide=hide)
    try:
        report = json.loads(_read_small(scratch / "run.json") or "")
        return {"timed_out": bool(report.get("timed_out")), "died": report.get("died"),
                "errors": [str(e) for e in report.get("errors", [])][:20],
                "reached": [str(c) for c in report.get("reached", [])]}
    except (ValueError, AttributeError, TypeError):
        tail = out.strip().splitlines()[-3:]
        return {"timed_out": code is None, "died": " / ".join(tail) or f"the run ended with code {code}",
                "errors": [], "reached": []}


# --------------------------------------------------------------------------- step 2: check
def _cell_python(source: str) -> ast.Module:
    """A code cell as Python (IPython magics turned into calls), parsed; SyntaxError if it is not."""
    from IPython.core.inputtransformer2 import TransformerManager

    return ast.parse(TransformerManager().transform_cell(source))


def _names(node) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _is_constant(node) -> bool:
    """``EPS = 1e-12``: an assignment of a literal (runs nothing)."""
    if not isinstance(node, (ast.Assign, ast.AnnAssign)) or node.value is None:
        return False
    try:
        ast.literal_eval(node.value)
    except ValueError:
        return False
    return True


def definitions(nb, ex: Exercise, exercise_functions: set[str]) -> str:
    """The code the check of ``ex`` runs on: the ``def``s, classes, imports and constants of its cell, after
    the notebook's imports and helper functions (defined before its check) that they use.

    Nothing else of the notebook runs: no top-level statement, no other cell's side effect."""
    cells = [c for c in nb.cells if c.cell_type == "code"]
    stop = next(i for i, c in enumerate(cells) if c.id == ex.check_cell)
    own = [n for n in _cell_python(next(c.source for c in cells if c.id == ex.stub_cell)).body
           if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom))
           or _is_constant(n)]
    imports, helpers = [], {}
    for cell in cells[:stop]:
        try:
            body = _cell_python(cell.source).body
        except SyntaxError:
            continue
        for n in body:
            if isinstance(n, (ast.Import, ast.ImportFrom)):
                imports.append(n)
            elif isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name not in exercise_functions:
                helpers[n.name] = n  # the last definition before the check wins, as in the notebook
    needed, todo, used_helpers = set(), list(own), []
    while todo:  # helpers the cell uses, and theirs
        node = todo.pop()
        for name in _names(node) - needed:
            needed.add(name)
            if name in helpers and helpers[name] not in own:
                used_helpers.append(helpers[name])
                todo.append(helpers[name])
    bound = [n for n in imports if {(a.asname or a.name).split(".")[0] for a in n.names} & needed]
    return ast.unparse(ast.Module(body=[*bound, *used_helpers, *own], type_ignores=[]))


def _run_checks(job_path: str) -> None:
    """Sandboxed check runner: for each exercise of the job, a forked child runs the definitions of
    that exercise and the ones before it (each earlier one replaced as its check leaves it) and
    sends back the check's verdict; the runner prints all verdicts as its last line."""
    import kdtutor.checks  # noqa: F401 — imported before any learner code, so every child starts clean

    _not_dumpable()
    job = json.loads(Path(job_path).read_text())
    verdicts = [_check_in_child(job["exercises"], k) for k in range(len(job["exercises"]))]
    print(VERDICTS + json.dumps(verdicts), flush=True)


def _not_dumpable() -> None:
    """Linux: make this process non-dumpable, so that its children (without capabilities in the
    sandbox) cannot open its file descriptors through ``/proc/<pid>/fd`` (e.g. to print verdicts)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except (OSError, AttributeError):
        pass


def _check_in_child(exercises_: list[dict], k: int) -> dict:
    """Fork; in the child, exercise ``k``'s check on the learner's function; return its verdict."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: learner code runs only here
        os.close(read)
        verdict = {"status": "error", "message": "the check did not run"}
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            verdict = _verdict(exercises_, k)
        finally:
            os.write(write, json.dumps(verdict).encode())
            os._exit(0)
    os.close(write)
    chunks, deadline, timed_out = [], time.monotonic() + CHECK_TIME_LIMIT, False
    while True:  # until the child closes its end (done, or dead) or time runs out
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
        return {"status": "error", "message": f"the check took longer than {CHECK_TIME_LIMIT} s"}
    try:
        return json.loads(b"".join(chunks)[:MAX_READ])
    except ValueError:
        return {"status": "error", "message": "the check process ended without a verdict (the learner's code "
                                              "exited or crashed it)"}


def _verdict(exercises_: list[dict], k: int) -> dict:
    """In the child: define exercises 0…k as the notebook would and check exercise ``k``."""
    from kdtutor import checks

    ns: dict = {"__name__": "__learner__"}
    for j, ex in enumerate(exercises_[:k + 1]):
        try:
            exec(compile(ex["source"], f"<cell of {ex['function']}>", "exec"), ns)
        except Exception as e:
            if j == k:
                return {"status": "error", "message": f"the cell defining {ex['function']} does not run on its "
                                                      f"own: {type(e).__name__}: {e}"}
        if ex["function"] not in ns:
            if j == k:
                return {"status": "error", "message": f"the cell no longer defines {ex['function']}"}
            continue
        result = getattr(checks, ex["check"])(ns[ex["function"]], verbose=False)
        if j < k:
            ns[ex["function"]] = result.fn
    status = {True: "passed", False: "failed", None: "not attempted"}[result.passed]
    return {"status": status, "message": result.message}


def run_checks(nb, expected: list[Exercise], scratch: Path, sandbox: Sandbox, profile_name: str, hide=()) -> dict:
    """Verdicts ``{check: {"status", "message"}}`` of the exercises of ``expected`` that ``nb`` still
    has (same check on the same function), from a fresh sandboxed check runner."""
    try:
        found = {(e.check, e.function): e for e in exercises(nb)}
    except ValueError:
        found = {}
    job, verdicts = [], {}
    functions = {e.function for e in expected}
    for ex in expected:
        mine = found.get((ex.check, ex.function))
        if mine is None:
            continue
        try:
            job.append({"check": ex.check, "function": ex.function, "source": definitions(nb, mine, functions),
                        "check_cell": mine.check_cell})
        except SyntaxError as e:
            verdicts[ex.check] = {"status": "error", "message": f"the cell defining {ex.function} has a syntax "
                                                                f"error: {e}", "check_cell": mine.check_cell}
    if job:
        (scratch / "job.json").write_text(json.dumps({"exercises": job}))
        env = _scratch_env(scratch, sandbox, profile_name)
        inside = INSIDE if sandbox.kind == "bubblewrap" else str(scratch)
        argv = [sys.executable, "-m", "coursetools.grading", "--check", f"{inside}/job.json"]
        code, out = _run_sandboxed(argv, scratch, sandbox, env, CHECK_TIME_LIMIT * len(job) + 120, hide=hide)
        lines = [line for line in out.splitlines() if line.startswith(VERDICTS)]
        try:  # one line from a runner that ended normally; anything else was tampered with
            got = json.loads(lines[0][len(VERDICTS):]) if code == 0 and len(lines) == 1 else []
        except ValueError:
            got = []
        for ex, verdict in zip(job, got if isinstance(got, list) and len(got) == len(job) else []):
            if isinstance(verdict, dict) and verdict.get("status") in STATUSES:
                verdicts[ex["check"]] = {"status": verdict["status"], "message": str(verdict.get("message", "")),
                                         "check_cell": ex["check_cell"]}
        tail = " / ".join(out.strip().splitlines()[-2:])
        for ex in job:
            verdicts.setdefault(ex["check"], {"status": "error", "message": f"the check runner failed ({tail or code})",
                                              "check_cell": ex["check_cell"]})
    return verdicts


# --------------------------------------------------------------------------- step 3: grade
def grade_rows(learner: str, lesson: str, expected, verdicts: dict, report: dict, time_limit: float,
               sandbox: str = "none") -> list[Grade]:
    """One :class:`Grade` per expected exercise: its check's verdict if the run reached its check cell."""
    from kdtutor.checks.core import points

    why_missing = "its check did not run on " + "{fn}"
    if report.get("timed_out"):
        why_missing += f": the notebook hit the time limit of {time_limit:g} s before it"
    elif report.get("died"):
        why_missing += f": the kernel died ({report['died']})"
    elif report.get("errors"):
        why_missing += f" (first error: {report['errors'][0]})"
    else:
        why_missing += " (was its check cell removed or renamed?)"
    rows = []
    for ex in expected:
        v = verdicts.get(ex.check)
        worth = points(ex.check)
        if v is None or (v["status"] != "error" and v["check_cell"] not in report.get("reached", ())):
            rows.append(Grade(learner, lesson, ex.check, "error", why_missing.format(fn=ex.function), 0, worth,
                              sandbox))
            continue
        earned = worth if v["status"] == "passed" else 0
        rows.append(Grade(learner, lesson, ex.check, v["status"], v["message"].strip(), earned, worth, sandbox))
    return rows


def _answer_cell(nb, q):
    """The submission's answer cell of the written question ``q``: the cell marked ``answer_to`` it,
    else (metadata lost by an editor) the cell with the course's id for it; None if neither is there."""
    for cell in nb.cells:
        if cell.get("metadata", {}).get("kdtutor", {}).get("answer_to") == q.qid:
            return cell
    return next((cell for cell in nb.cells if cell.get("id") == q.answer_cell), None)


def written_rows(learner: str, lesson: str, questions, nb, sandbox: str = "none") -> list[Grade]:
    """One :class:`Grade` per written question of ``questions``, with the submission ``nb``'s answer
    as its message (status :data:`BY_HAND`), for a TA to grade; 0 points until then."""
    rows = []
    for q in questions:
        cell = _answer_cell(nb, q)
        if cell is None:
            rows.append(Grade(learner, lesson, q.qid, "error", f"no answer cell for {q.qid} (was it deleted?)", 0,
                              q.points, sandbox))
            continue
        text = str(cell.get("source", "")).strip()
        if text in UNANSWERED:
            rows.append(Grade(learner, lesson, q.qid, "not attempted", "", 0, q.points, sandbox))
            continue
        if len(text) > MAX_ANSWER:
            text = text[:MAX_ANSWER] + f" … (cut at {MAX_ANSWER:,} characters; the rest is in the submission)"
        rows.append(Grade(learner, lesson, q.qid, BY_HAND, text, 0, q.points, sandbox))
    return rows


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


def learner_ids(paths) -> list[str]:
    """Each submission's path relative to the folder they all share, without ``.ipynb``
    (``a/alice``, ``b/alice``); ValueError if a file is given twice."""
    resolved = [Path(p).resolve() for p in paths]
    seen = set()
    for p, r in zip(paths, resolved):
        if r in seen:
            raise ValueError(f"{p} is given twice (as {r})")
        seen.add(r)
    if not resolved:
        return []
    root = Path(os.path.commonpath([r.parent for r in resolved]))
    return [str(r.relative_to(root).with_suffix("")) if r.suffix == ".ipynb" else str(r.relative_to(root))
            for r in resolved]


def check_time_limit(seconds) -> float:
    """``seconds`` as a float if it is a finite number > 0, else ValueError."""
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        raise ValueError(f"the time limit must be a number of seconds, got {seconds!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"the time limit must be a finite number of seconds > 0, got {seconds!r}")
    return value


def grade_one(path: Path, learner: str, time_limit: float, profile_name: str, notebook_dir: Path,
              sandbox: Sandbox, hide=()) -> list[Grade]:
    """Run, check and grade one submission (with the files in ``hide`` unreadable to it); an
    unreadable or unknown one is one error row."""
    import nbformat

    try:
        source = Path(path).read_bytes()
        nb = nbformat.reads(source.decode("utf-8"), as_version=4)
        lesson = lesson_of(nb, path, notebook_dir)
    except Exception as e:  # unreadable or unknown: one row says so
        return [Grade(learner, "?", "?", "error", f"cannot grade {Path(path).name}: {e}", 0, 0, sandbox.kind)]
    course_copy = nbformat.read(Path(notebook_dir) / f"{lesson}.ipynb", as_version=4)
    expected = exercises(course_copy)
    with tempfile.TemporaryDirectory(prefix="kdtutor-grade-") as tmp:
        run_dir, check_dir = Path(tmp) / "run", Path(tmp) / "check"
        run_dir.mkdir()
        check_dir.mkdir()
        report = run_notebook(source, run_dir, time_limit, profile_name, sandbox, hide)
        verdicts = run_checks(nb, expected, check_dir, sandbox, profile_name, hide)
    return (grade_rows(learner, lesson, expected, verdicts, report, time_limit, sandbox.kind)
            + written_rows(learner, lesson, written_questions(course_copy), nb, sandbox.kind))


def grade(paths, time_limit: float = DEFAULT_TIME_LIMIT, profile_name: str = "smoke", jobs: int = 1,
          notebook_dir: Path = NOTEBOOK_DIR, progress=print, sandbox: Sandbox | None = None) -> list[Grade]:
    """Grade every submission in ``paths``, ``jobs`` at a time; rows in the order of ``paths``.
    The first progress line says which sandbox the submissions run in (or that there is none)."""
    time_limit = check_time_limit(time_limit)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a whole number ≥ 1, got {jobs!r}")
    paths = [Path(p) for p in paths]
    names = learner_ids(paths)
    sandbox = sandbox or find_sandbox()
    progress(sandbox.banner())
    lock = threading.Lock()

    def one(path: Path, learner: str) -> list[Grade]:
        t0 = time.perf_counter()
        rows = grade_one(path, learner, time_limit, profile_name, notebook_dir, sandbox, hide=paths)
        auto = [g for g in rows if not WRITTEN_ID.match(g.exercise)]  # written answers: graded by hand
        got, worth = sum(g.points for g in auto), sum(g.max_points for g in auto)
        by_hand = sum(g.status == BY_HAND for g in rows)
        with lock:
            progress(f"{learner} ({rows[0].lesson if rows else '?'}): {got}/{worth} points in {time.perf_counter() - t0:.0f} s"
                     + (f", {by_hand} written answer{'' if by_hand == 1 else 's'} to grade by hand" if by_hand else ""))
        return rows

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(one, paths, names))
    return [g for rows in results for g in rows]


# --------------------------------------------------------------------------- the CSV
def check_out(out: str | os.PathLike, submissions, force: bool = False) -> Path:
    """Where the CSV may go, checked before anything runs; ValueError naming the problem if
    ``out`` is a directory, a notebook or one of the submissions, or exists without ``force``."""
    text = os.fspath(out)
    path = Path(text)
    if text.endswith(("/", os.sep)) or path.is_dir():
        raise ValueError(f"--out {text} is a directory; name the CSV file to write, e.g. --out {path / 'grades.csv'}")
    if path.suffix.lower() == ".ipynb":
        raise ValueError(f"--out {text} is a notebook, not a CSV (did the shell expand --out *.ipynb?); "
                         "write e.g. --out grades.csv")
    if path.resolve() in {Path(s).resolve() for s in submissions}:
        raise ValueError(f"--out {text} is one of the submissions")
    if path.exists() and not force:
        raise ValueError(f"--out {text} exists; choose another file, or pass --force to replace it")
    return path


def to_csv(grades: list[Grade]) -> str:
    """The rows as CSV, one line each (a message's line breaks become `` | ``; a written answer that
    a spreadsheet would run as a formula starts with ``'``)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(FIELDS)
    for g in grades:
        message = re.sub(r"\s*\n\s*", " | ", g.message)
        if g.status == BY_HAND and message.startswith(("=", "+", "-", "@", "\t", "\r")):
            message = "'" + message
        writer.writerow([g.learner, g.lesson, g.exercise, g.status, g.points, g.max_points, message, g.sandbox])
    return buf.getvalue()


def write_csv(grades: list[Grade], out: str | os.PathLike, force: bool = False) -> Path:
    """Write the CSV atomically; a file that appeared at ``out`` meanwhile (without ``force``) is
    kept as ``<out>.old`` rather than replaced."""
    out = Path(out)
    if out.exists() and not force:
        print(f"{out} appeared while grading: kept as {move_aside(out)}")
    return atomic_write_bytes(out, to_csv(grades).encode("utf-8"))


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "--execute":
    _execute(sys.argv[2], sys.argv[3], float(sys.argv[4]))
elif __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--check":
    _run_checks(sys.argv[2])
