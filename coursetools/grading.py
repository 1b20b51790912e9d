"""Autograding: run submitted lesson notebooks headless, then grade every exercise outside them.

    python -m coursetools grade subs/*.ipynb --out grades.csv [--force] [--jobs 2] [--time-limit 600]
                                                               [--cell-time-limit 180]

What the grader does with each submission (several at once with ``--jobs``):

1. **Run.** A copy of the notebook runs headless in a fresh kernel, offline
   (``KDTUTOR_OFFLINE=1``), in the smoke profile unless ``--profile`` says otherwise, within
   the time limit for the whole notebook and, like nbgrader, :data:`CELL_TIME_LIMIT` per cell (a
   cell past it is interrupted, the next ones run, and an exercise whose check cell it was is an
   ``error``), inside a sandbox (see :class:`Sandbox`): only its
   own scratch folder is writable (the notebook's copy, its own ``KDTUTOR_DATA`` and
   ``KDTUTOR_RESULTS``; the prepared data are visible read-only), the submissions read as
   empty files and the folders of :func:`hidden_folders` as empty folders, only the environment
   variables of :data:`ENV_ALLOWED`, no network, and every process it started ends with it. The
   run says which cells were reached.
2. **Check.** The grader reads the learner's definitions from the submitted file itself
   (each exercise's cell: its ``def``s, classes and imports, plus the notebook's imports and
   helper functions they use). Each exercise's check then runs in a process of its own: a fresh
   Python (``python -P``: nothing from its folder on ``sys.path``) in a fresh sandbox with a
   scratch folder of its own, given only that exercise's definitions; it imports kdtutor's
   checks and takes the check before any learner code runs, defines the learner's code, runs
   the check and writes one verdict line on a copy of its stdout kept aside (the learner's code
   writes to ``/dev/null``). The grader accepts exactly one verdict line from a process that
   ended normally within the check's own time limit (:data:`CHECK_TIME_LIMIT`, not shared with
   any other check). So learner code runs only in the process of the exercise it belongs to:
   nothing one exercise's code does (forged verdicts on every file descriptor, patched checks,
   a default argument that replaces ``kdtutor.checks.<name>``, processes left behind, files in
   its folder) can reach another exercise's verdict, and nothing the notebook did while it ran
   reaches any. A check that passes is followed, in the same process, by the exercise's hidden
   test, the one the instructor copy's nbgrader test cell carries (:func:`run_checks`), so an
   answer wrong only on the hidden test fails in both graders. An earlier exercise's function that a later one calls is kdtutor's reference
   (what the lesson hands on when the check does not pass), never the learner's code; a check
   refuses kdtutor's own answer for its own exercise (:func:`kdtutor.checks.core.refuse_answer_key`).
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

   Every text in the CSV that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
   return (a learner's id, a message, a written answer) gets a leading ``'``, so that a
   spreadsheet shows it as text instead of running it as a formula; line breaks become `` | ``.

Rows name the learner by the submission's path relative to the folder all submissions share
(without ``.ipynb``, unless two submissions would then share an id; Unicode-normalised to NFC),
so two ``alice.ipynb`` in different folders stay apart; a submission that is a symbolic link
leading out of that folder is refused (its row says so), never read. One submission never ends
the run: a notebook with cells of the wrong types is set right first (:func:`read_submission`),
and whatever else goes wrong with it (a file nbformat cannot read, a folder or a FIFO where its
report is read back, folders nested thousands deep, an expression too deep to read, gigabytes of output:
only the last :data:`MAX_READ` bytes are kept) becomes its own ``error`` row, and with ``out``
the CSV is rewritten after every finished submission and once more at the end, whatever
happened. The ``sandbox`` column says ``bubblewrap``, or ``none`` where bwrap is missing or does
not work here: then the submissions run with the grader's own rights, and the grader says so first.

What a sandboxed submission can still read: the system (``/usr``, ``/etc``), the Python
environment and kdtutor's package (its checks, hints included), the prepared data, and the
files of this user outside the folders the grader hides (see :func:`hidden_folders`: the home
folder, the course checkout but its package, the submissions' folders, the CSV's folder and the
grader's own scratch folders, whatever ``TMPDIR`` is). It gets only the environment variables
of :data:`ENV_ALLOWED`. Memory and disk are not limited (only time). The learner's own function
runs in its exercise's check process, so code written to attack that check (a forged verdict
for itself, then exit) can change that one exercise's verdict, and what it could read can end
up in that exercise's message (cut at :data:`MAX_MESSAGE` characters); its source is in the
submission for a human to see.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import linecache
import math
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from coursetools.instructor import (ANSWER_PLACEHOLDER, NOTEBOOK_DIR, QUESTION_ID as WRITTEN_ID, Exercise,
                                    exercises, hidden_test_source, lesson_module, written_questions)
from kdtutor.storage import DATA_DIR, atomic_write_bytes, move_aside

STATUSES = ("passed", "failed", "not attempted", "error")
BY_HAND = "to grade by hand"  # a written answer's status
MAX_ANSWER = 20_000  # characters of a written answer kept in the CSV
UNANSWERED = ("", ANSWER_PLACEHOLDER, "YOUR ANSWER HERE")  # the lesson's text, nbgrader's release's text
FIELDS = ("learner", "lesson", "exercise", "status", "points", "max_points", "message", "sandbox")
DEFAULT_TIME_LIMIT = 600  # seconds per notebook
# Seconds per cell, the same in both graders (instructor/nbgrader_config.py sets nbgrader's Execute.timeout to it).
# Fitted to the smoke profile: the longest cell of the graded lessons 01 and 02, lesson 02's digits distillation
# (cell 06ef2efd), took 45 s there (measured once, niced, on 2 CPU cores shared with other jobs; lesson 01's longest,
# its import cell, 3.8 s). 180 s leaves a 4-fold margin and costs a learner's endless loop 3 min, not nbgrader's
# former 10. Lessons that train (03, 04, 06, 07) were not measured: time their longest smoke cell the same way and
# pass --cell-time-limit (and Execute.timeout) to match.
CELL_TIME_LIMIT = 180
TIMED_OUT = "CellTimeoutError"  # the error a cell that ran past CELL_TIME_LIMIT shows (nbgrader's name for it)
CHECK_TIME_LIMIT = 60  # seconds per exercise check, each on its own
CHECK_START = 60  # seconds more for a check process to start (Python, torch, kdtutor)
INSIDE = "/tmp/grade"  # where a sandbox sees its scratch folder
VERDICTS = "KDTUTOR-VERDICTS "  # the check runner's last line of output
MAX_READ = 1 << 20  # bytes read back from a sandbox (its report, its output)
MAX_MESSAGE = 2_000  # characters of a check's message kept in the CSV
FORMULA = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet may run as a formula at the start of a cell


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

    def wrap(self, argv: list[str], scratch: Path, data_dir: Path | None = None, hide=(), hidden=()) -> list[str]:
        """``argv`` to run with ``scratch`` as its only writable folder (seen at :data:`INSIDE`), the
        top-level entries of ``data_dir`` read-only in ``<scratch>/data``, the folders in ``hidden``
        empty (but for the Python code they hold: :func:`_mask`) and the files in ``hide`` (the
        submissions) empty."""
        if self.kind != "bubblewrap":
            return argv
        mask, shown = _mask(hidden)
        binds = []
        for entry in sorted(Path(data_dir).iterdir()) if data_dir and Path(data_dir).is_dir() else []:
            binds += ["--ro-bind", str(entry), f"{INSIDE}/data/{entry.name}"]
        empty = Path(scratch).with_name(Path(scratch).name + ".empty")  # beside the scratch, not in it
        for path in hide:
            if Path(path).is_file() and Path(path).resolve() in shown:
                empty.touch()
                binds += ["--ro-bind", str(empty), str(Path(path).resolve())]
        return ["bwrap", *BWRAP_ARGS, *mask, "--bind", str(scratch), INSIDE, *binds, "--chdir", INSIDE, "--",
                *argv]


class _Shown:
    """Whether a path is visible in a sandbox with the mounts ``ops`` (``{path: "hide"|"show"}``,
    applied from the shallowest path to the deepest; ``/tmp`` is hidden first)."""

    def __init__(self, ops: dict):
        self.ops = {Path("/tmp"): "hide", **ops}

    def __contains__(self, path) -> bool:
        path = Path(path)
        above = [p for p in self.ops if path == p or path.is_relative_to(p)]
        return not above or self.ops[max(above, key=lambda p: len(p.parts))] == "show"


def _needed() -> set[Path]:
    """What the sandboxed Python must see: kdtutor's package, the course tooling's (the check runner:
    no answers in it), the Python environment, the ``PYTHONPATH`` entries and the user's site-packages."""
    import site

    import kdtutor

    paths = [Path(kdtutor.__file__).parent, Path(__file__).resolve().parent, sys.prefix, sys.exec_prefix, sys.base_prefix,
             *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p], site.getusersitepackages()]
    return {Path(p).resolve() for p in paths if Path(p).is_dir()}


def _mask(hidden) -> tuple[list[str], _Shown]:
    """bwrap arguments that hide each folder of ``hidden`` behind an empty tmpfs and show again,
    read-only, what Python needs from inside them (or from inside the private ``/tmp``: a clone
    or a virtual environment made there, as CI and tests do), shallowest first; and what is shown."""
    ops = {Path(h).resolve(): "hide" for h in hidden}
    for path in _needed():
        if path != Path("/tmp") and (path.is_relative_to("/tmp") or any(path.is_relative_to(h) for h in ops)):
            ops[path] = "show"  # also over a hide of the same folder
    args = []
    for path in sorted(ops, key=lambda p: (len(p.parts), str(p))):
        args += ["--tmpfs", str(path)] if ops[path] == "hide" else ["--ro-bind", str(path), str(path)]
    return args, _Shown(ops)


KEEP_VISIBLE = tuple(Path(p) for p in ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/dev", "/proc",
                                       "/sys", "/run", "/tmp"))  # the system: never under a hidden folder


def hidden_folders(paths=(), out=None, scratch_root=None) -> list[Path]:
    """The folders a sandboxed submission must not see: this user's home folder, the course
    checkout (its ``solutions/``, ``instructor/``, ``results/`` and ``.git`` in any case), the
    submissions' folder and each submission's folder (late submissions, checkpoints, zips), the
    folder of the CSV (earlier grades) and ``scratch_root`` (the other jobs' scratch folders).

    Left out: ``/`` and the folders above the system's (:data:`KEEP_VISIBLE`), folders inside
    ``/tmp`` (private in the sandbox anyway), ``/proc``, ``/sys``, ``/dev`` or the Python environment."""
    from kdtutor.storage import REPO_ROOT

    candidates = [Path.home(), *(REPO_ROOT / d for d in ("solutions", "instructor", "results", ".git")),
                  *([REPO_ROOT] if (REPO_ROOT / "pyproject.toml").is_file() else []),
                  *([submissions_root(paths)] if paths else []), *(Path(os.path.abspath(p)).parent for p in paths),
                  *([Path(os.path.abspath(out)).parent] if out is not None else []),
                  *([scratch_root] if scratch_root is not None else [])]
    inside_no = [Path(p).resolve() for p in ("/tmp", "/proc", "/sys", "/dev", sys.prefix, sys.base_prefix)]
    folders = []
    for c in candidates:
        c = Path(c).resolve()
        if (not c.is_dir() or c in folders or any(k == c or k.is_relative_to(c) for k in KEEP_VISIBLE)
                or any(c.is_relative_to(p) and c != p for p in inside_no) or c in inside_no[:4]):
            continue
        folders.append(c)
    return folders


BWRAP_ARGS = ("--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
              "--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534", "--cap-drop", "ALL",
              "--die-with-parent", "--new-session")
PYTHON = [sys.executable, "-P"] if sys.version_info >= (3, 11) else [sys.executable]  # -P: not its folder on sys.path


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
                   data_dir: Path | None = None, hide=(), hidden=()) -> tuple[int | None, str]:
    """Run ``argv`` in ``sandbox`` for at most ``limit`` s; kill everything it started when it ends.

    Returns (exit code, or None when killed at the limit; the last :data:`MAX_READ` bytes of its
    output, read as it comes so that memory stays bounded however much it writes)."""
    proc = subprocess.Popen(sandbox.wrap(argv, scratch, data_dir, hide, hidden), env=env, cwd=scratch,
                            start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    tail = bytearray()

    def drain() -> None:
        while chunk := os.read(proc.stdout.fileno(), 1 << 16):
            tail.extend(chunk)
            if len(tail) > 2 * MAX_READ:
                del tail[:-MAX_READ]

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        code = None
    finally:  # bwrap's pid namespace ends with it; without a sandbox, the process group at least
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
    reader.join(timeout=10)  # without a sandbox, a detached process may hold the pipe open: not waited for
    if not reader.is_alive():
        proc.stdout.close()
    return code, bytes(tail[-MAX_READ:]).decode("utf-8", "replace")


ENV_ALLOWED = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "LC_NUMERIC", "TZ", "TERM",
               "PYTHONPATH", "OMP_NUM_THREADS", "MKL_NUM_THREADS")  # the grader's variables a submission gets


def _scratch_env(scratch: Path, sandbox: Sandbox, profile_name: str) -> dict:
    """The environment of a sandboxed process: :data:`ENV_ALLOWED` of the grader's, then its own
    data, results, home and Jupyter folders."""
    inside = INSIDE if sandbox.kind == "bubblewrap" else str(scratch)
    for sub in ("data", "results", "home", "runtime"):
        (scratch / sub).mkdir(exist_ok=True)
    from kdtutor.storage import REPO_ROOT

    env = {k: os.environ[k] for k in ENV_ALLOWED if k in os.environ}
    path = [str(REPO_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env.update({"PYTHONPATH": os.pathsep.join(path),  # coursetools (the check runner) is not installed: the checkout
                "KDTUTOR_PROFILE": profile_name, "KDTUTOR_OFFLINE": "1", "MPLBACKEND": "Agg",
                "KDTUTOR_DATA": f"{inside}/data", "KDTUTOR_RESULTS": f"{inside}/results", "HOME": f"{inside}/home",
                "JUPYTER_RUNTIME_DIR": f"{inside}/runtime", "IPYTHONDIR": f"{inside}/home/.ipython",
                "MPLCONFIGDIR": f"{inside}/home/.matplotlib", "TMPDIR": "/tmp" if sandbox.kind == "bubblewrap"
                else str(scratch)})
    return env


def _read_small(path: Path) -> str | None:
    """The text of a regular file a sandbox wrote (at most MAX_READ bytes); None if it is missing,
    a symlink, a folder, a FIFO or anything else but a plain file (never blocks)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    with os.fdopen(fd, "rb") as f:
        return f.read(MAX_READ).decode("utf-8", "replace")


def _remove_tree(path: Path) -> None:
    """Delete a scratch folder whatever a submission left in it (folders nested thousands deep,
    folders without permissions); never raises."""
    try:
        shutil.rmtree(path)
    except Exception:  # RecursionError on deep trees, PermissionError on locked folders
        subprocess.run(["chmod", "-R", "u+rwx", str(path)], capture_output=True)
        subprocess.run(["rm", "-rf", "--", str(path)], capture_output=True)


# --------------------------------------------------------------------------- step 1: run
_NAME = re.compile(r"[^\w .:,'()-]")


def _plain(text, limit: int = 80) -> str:
    """``text`` cut to ``limit`` plain characters (letters, digits, spaces, ``_.:,'()-``): what a run report may carry."""
    return _NAME.sub("?", str(text))[:limit]


class _TimeUp(Exception):
    """The whole notebook's time limit has passed: no further cell starts."""


def _execute(notebook: str, report_path: str, time_limit: float, cell_limit: float = CELL_TIME_LIMIT) -> None:
    """Sandboxed child: run ``notebook`` in a fresh kernel within ``time_limit`` s in all; write a
    JSON report (cells reached, the first errors as cell id and exception name, the cells that ran
    past ``cell_limit``, whether the whole time ran out) to ``report_path``, atomically.

    As nbgrader does, a cell that runs longer than ``cell_limit`` s is interrupted, shows a
    :data:`TIMED_OUT` error, and the next cells run; once ``time_limit`` has passed no cell starts."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    nb = nbformat.read(notebook, as_version=4)
    deadline = time.monotonic() + time_limit

    def remaining(cell) -> int:
        left = deadline - time.monotonic()
        if left < 1:
            raise _TimeUp
        return math.ceil(min(cell_limit, left))  # a cell stopped by the deadline ends after it: none starts then

    client = NotebookClient(nb, timeout_func=remaining, allow_errors=True, kernel_name="python3",
                            interrupt_on_timeout=True,
                            error_on_timeout={"ename": TIMED_OUT, "evalue": f"the cell ran longer than {cell_limit:g} s",
                                              "traceback": [f"{TIMED_OUT}: the cell ran longer than {cell_limit:g} s"]},
                            resources={"metadata": {"path": str(Path(notebook).parent)}})
    report = {"timed_out": False, "died": None, "errors": [], "reached": [], "cell_timeouts": []}
    try:
        client.execute()
    except (CellTimeoutError, _TimeUp):
        report["timed_out"] = True
    except DeadKernelError:
        report["died"] = "the kernel died"
    except Exception as e:  # e.g. a kernel that did not start in time: still report the cells that ran
        report["died"] = _plain(f"{type(e).__name__}: {e}", 200)
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.get("execution_count") is not None:
            report["reached"].append(cell.get("id"))
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error" and len(report["errors"]) < 20:
                report["errors"].append(f"cell {_plain(cell.get('id'))}: {_plain(out.get('ename'))}")
            if out.get("output_type") == "error" and out.get("ename") == TIMED_OUT:
                report["cell_timeouts"].append(cell.get("id"))
    report["timed_out"] = report["timed_out"] or time.monotonic() >= deadline
    fd, tmp = tempfile.mkstemp(dir=Path(report_path).parent, prefix=".run-", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(report))
    os.replace(tmp, report_path)


def run_notebook(source: bytes, scratch: Path, time_limit: float, profile_name: str, sandbox: Sandbox,
                 hide=(), hidden=(), cell_limit: float = CELL_TIME_LIMIT) -> dict:
    """Run the notebook ``source`` in ``sandbox`` with ``scratch`` as its folder, the files in ``hide``
    (every submission) and the folders in ``hidden`` out of its sight; return its run report."""
    (scratch / "submission.ipynb").write_bytes(source)
    env = _scratch_env(scratch, sandbox, profile_name)
    if sandbox.kind != "bubblewrap" and DATA_DIR.is_dir():  # the prepared data, where the lessons look
        for entry in DATA_DIR.iterdir():
            (scratch / "data" / entry.name).symlink_to(entry)
    inside = INSIDE if sandbox.kind == "bubblewrap" else str(scratch)
    argv = [*PYTHON, "-m", "coursetools.grading", "--execute", f"{inside}/submission.ipynb",
            f"{inside}/run.json", str(time_limit), str(cell_limit)]
    code, out = _run_sandboxed(argv, scratch, sandbox, env, time_limit + 60, DATA_DIR, hide, hidden)
    try:
        report = json.loads(_read_small(scratch / "run.json") or "")
        return {"timed_out": bool(report.get("timed_out")), "died": _plain(report["died"], 200) if report.get("died")
                else None, "errors": [_plain(e, 200) for e in report.get("errors", [])][:20],
                "reached": [str(c) for c in report.get("reached", [])],
                "cell_timeouts": [str(c) for c in report.get("cell_timeouts", [])][:100]}
    except (ValueError, AttributeError, TypeError):
        return {"timed_out": code is None, "died": f"the run ended without a report (exit code {code})",
                "errors": [], "reached": [], "cell_timeouts": []}


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
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
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
        except Exception:  # a syntax error, or an expression too deep to parse: not a helper
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


def _run_check(job_path: str) -> None:
    """Sandboxed check process, one per exercise: take the check, give the earlier exercises'
    names kdtutor's references, define the learner's code, run the check and write one verdict
    line on a copy of stdout kept aside (the learner's code writes to ``/dev/null``); then exit
    at once (no ``atexit`` hook, no thread of the learner's runs after the verdict)."""
    from kdtutor import checks

    job = json.loads(Path(job_path).read_text())
    check = getattr(checks, job["check"])  # taken before any learner code runs
    earlier = {e["function"]: getattr(checks, e["check"])(_stub, verbose=False).fn for e in job["before"]}
    channel = os.dup(1)  # not inherited by anything the learner's code starts
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        verdict = _verdict(job, check, earlier)
    except BaseException as e:  # SystemExit, KeyboardInterrupt raised by the learner's code
        verdict = {"status": "error", "message": f"the check stopped: {type(e).__name__}"}
    os.write(channel, (VERDICTS + json.dumps(verdict) + "\n").encode())
    os._exit(0)


def _stub(*args, **kwargs):
    raise NotImplementedError


def _verdict(job: dict, check, earlier: dict) -> dict:
    """In the check process: define the learner's code of ``job`` (with the earlier exercises'
    functions ``earlier``, kdtutor's) and run ``check`` on its function."""
    fn = job["function"]
    ns: dict = {"__name__": "__learner__", **earlier}
    filename = f"<cell of {fn}>"
    lines = job["source"].splitlines(keepends=True)  # its source readable, as in a notebook: the check compares
    linecache.cache[filename] = (len(job["source"]), None, lines, filename)  # it with kdtutor's own
    try:
        exec(compile(job["source"], filename, "exec"), ns)
    except Exception as e:
        return {"status": "error", "message": f"the cell defining {fn} does not run on its own: {type(e).__name__}: {e}"}
    if fn not in ns:
        return {"status": "error", "message": f"the cell no longer defines {fn}"}
    result = check(ns[fn], verbose=False)
    if result.passed and job.get("hidden"):  # the instructor copy's hidden test, as nbgrader runs it
        try:
            exec(compile(job["hidden"], "<hidden test>", "exec"), {fn: ns[fn]})
        except Exception as e:
            return {"status": "failed", "message": f"✗ {job['check']}: the visible cases pass, a hidden test does "
                                                   f"not ({type(e).__name__}: {e})"}
    return {"status": {True: "passed", False: "failed", None: "not attempted"}[result.passed],
            "message": str(result.message)}


def check_one(job: dict, scratch: Path, sandbox: Sandbox, profile_name: str, hide=(), hidden=()) -> dict:
    """The verdict ``{"status", "message"}`` of one exercise (``job``: its ``check``, ``function``,
    ``source`` and the exercises ``before`` it) from a fresh check process in a fresh sandbox with
    ``scratch`` as its folder, within :data:`CHECK_TIME_LIMIT` s of its own (plus
    :data:`CHECK_START` s to start Python and import torch)."""
    scratch.mkdir()
    (scratch / "job.json").write_text(json.dumps(job))
    env = _scratch_env(scratch, sandbox, profile_name)
    inside = INSIDE if sandbox.kind == "bubblewrap" else str(scratch)
    argv = [*PYTHON, "-m", "coursetools.grading", "--check", f"{inside}/job.json"]
    code, out = _run_sandboxed(argv, scratch, sandbox, env, CHECK_TIME_LIMIT + CHECK_START, hide=hide, hidden=hidden)
    if code is None:
        return {"status": "error", "message": f"the check took longer than {CHECK_TIME_LIMIT} s"}
    lines = [line for line in out.splitlines() if line.startswith(VERDICTS)]
    try:  # one line from a process that ended normally; anything else was tampered with
        verdict = json.loads(lines[0][len(VERDICTS):]) if code == 0 and len(lines) == 1 else None
    except ValueError:
        verdict = None
    if not isinstance(verdict, dict) or verdict.get("status") not in STATUSES:
        return {"status": "error", "message": f"the check process ended without a verdict (exit code {code}; "
                                              "the learner's code exited or crashed it)"}
    message = str(verdict.get("message", ""))
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + " … (cut)"
    return {"status": verdict["status"], "message": message}


def run_checks(nb, expected: list[Exercise], scratch: Path, sandbox: Sandbox, profile_name: str, hide=(),
               hidden=(), lesson: str | None = None) -> dict:
    """Verdicts ``{check: {"status", "message", "check_cell"}}`` of the exercises of ``expected``
    that ``nb`` still has (same check on the same function), each from its own check process
    (:func:`check_one`, in ``scratch/<n>``); an exercise whose code the grader cannot read is
    an ``error``. With ``lesson`` (``01_softmax_temperature``), an exercise whose check passes
    must pass the hidden test of the instructor copy too (:func:`coursetools.instructor.hidden_test_source`),
    as in nbgrader: one policy for both graders."""
    try:
        found = {(e.check, e.function): e for e in exercises(nb)}
    except Exception:
        found = {}
    verdicts, before = {}, []
    functions = {e.function for e in expected}
    for n, ex in enumerate(expected):
        mine = found.get((ex.check, ex.function))
        job = {"check": ex.check, "function": ex.function, "before": list(before),
               "hidden": hidden_test_source(lesson_module(lesson), ex.check, ex.function) if lesson else None}
        before.append({"check": ex.check, "function": ex.function})
        if mine is None:
            continue
        try:
            job["source"] = definitions(nb, mine, functions)
        except SyntaxError as e:
            verdict = {"status": "error", "message": f"the cell defining {ex.function} has a syntax error: {e}"}
        except Exception as e:  # RecursionError on an expression too deep, a cell that is not text
            verdict = {"status": "error", "message": f"the grader cannot read the cell defining {ex.function}: "
                                                     f"{type(e).__name__}"}
        else:
            verdict = check_one(job, scratch / str(n), sandbox, profile_name, hide, hidden)
        verdicts[ex.check] = {**verdict, "check_cell": mine.check_cell}
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
        if v["check_cell"] in report.get("cell_timeouts", ()):  # as in nbgrader: the exercise timed out
            rows.append(Grade(learner, lesson, ex.check, "error", f"its check cell ran longer than the per-cell time "
                              f"limit (an endless loop in {ex.function}?)", 0, worth, sandbox))
            continue
        earned = worth if v["status"] == "passed" else 0
        rows.append(Grade(learner, lesson, ex.check, v["status"], v["message"].strip(), earned, worth, sandbox))
    return rows


def _answer_cell(nb, q):
    """The submission's answer cell of the written question ``q``: the cell marked ``answer_to`` it,
    else (metadata lost by an editor) the cell with the course's id for it; None if neither is there."""
    for cell in nb.cells:
        if _meta(cell).get("answer_to") == q.qid:
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


def _meta(node) -> dict:
    """``node.metadata.kdtutor`` if it is a mapping, else ``{}`` (a submission may hold anything there)."""
    meta = node.get("metadata")
    kd = meta.get("kdtutor") if isinstance(meta, dict) else None
    return kd if isinstance(kd, dict) else {}


def lesson_of(nb, path: Path, notebook_dir: Path = NOTEBOOK_DIR) -> str:
    """The lesson a submission belongs to: ``metadata.kdtutor.lesson`` (set in every lesson),
    else its file name; ValueError if neither names a lesson of the course."""
    lessons = {p.stem for p in Path(notebook_dir).glob("[0-9][0-9]_*.ipynb")}
    named = _meta(nb).get("lesson")
    if named in lessons:
        return named
    by_name = [stem for stem in lessons if Path(path).stem.startswith(stem)]
    if len(by_name) == 1:
        return by_name[0]
    raise ValueError(f"{path}: cannot tell which lesson this is (no metadata.kdtutor.lesson and the file name "
                     f"matches none of {sorted(lessons)})")


def submissions_root(paths) -> Path:
    """The folder all submissions share (their absolute paths, links not followed)."""
    return Path(os.path.commonpath([Path(os.path.abspath(p)).parent for p in paths]))


def learner_ids(paths) -> list[str]:
    """Each submission's path relative to the folder they all share, without ``.ipynb``
    (``a/alice``, ``b/alice``), Unicode-normalised to NFC; an id two submissions would share keeps
    its ``.ipynb`` (``g4/carol`` and ``g4/carol.ipynb``). ValueError if a file is given twice, or if
    two names differ only in their Unicode form."""
    paths = [Path(p) for p in paths]
    seen = {}
    for p in paths:
        r = p.resolve()
        if r in seen:
            raise ValueError(f"{p} is given twice (as {r})")
        seen[r] = p
    if not paths:
        return []
    root = submissions_root(paths)
    relative = [Path(os.path.abspath(p)).relative_to(root) for p in paths]
    ids = [unicodedata.normalize("NFC", str(r.with_suffix("") if r.suffix == ".ipynb" else r)) for r in relative]
    ids = [unicodedata.normalize("NFC", str(r)) if ids.count(i) > 1 else i for r, i in zip(relative, ids)]
    for i, name in enumerate(ids):
        if name in ids[:i]:
            raise ValueError(f"{paths[ids.index(name)]} and {paths[i]} would both be learner {name!r} (their names "
                             "differ only in their Unicode form); rename one")
    return ids


def _inside(path: Path, root: Path) -> None:
    """ValueError unless ``path``, links followed, is a file inside the submissions' folder ``root``."""
    if not Path(path).resolve().is_relative_to(Path(root).resolve()):
        raise ValueError(f"{Path(path).name} is a link that leads outside the submissions' folder: refused (copy "
                         "the file in instead)")
    if not Path(path).resolve().is_file():
        raise ValueError(f"{Path(path).name} is not a file")


def check_time_limit(seconds) -> float:
    """``seconds`` as a float if it is a finite number > 0, else ValueError."""
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        raise ValueError(f"the time limit must be a number of seconds, got {seconds!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"the time limit must be a finite number of seconds > 0, got {seconds!r}")
    return value


def _normalised(nb):
    """``nb`` with what the grader relies on made sound: every cell's ``source`` text (not text:
    empty), ``metadata`` a mapping, an ``id`` (nbformat 4.4 has none: ``cell-<n>``)."""
    if not isinstance(nb.get("metadata"), dict):
        nb["metadata"] = {}
    for n, cell in enumerate(nb["cells"]):
        source = cell.get("source")
        if isinstance(source, list) and all(isinstance(line, str) for line in source):
            source = "".join(source)
        cell["source"] = source if isinstance(source, str) else ""
        if not isinstance(cell.get("metadata"), dict):
            cell["metadata"] = {}
        if not isinstance(cell.get("id"), str):
            cell["id"] = f"cell-{n}"
    nb["nbformat_minor"] = max(5, nb.get("nbformat_minor", 5) if isinstance(nb.get("nbformat_minor"), int) else 5)
    return nb


def read_submission(path: Path):
    """The notebook at ``path``, read as what it is: ``metadata`` and ``source`` of the wrong types
    (which nbformat cannot read) set right first (:func:`_normalised`), then cell ids given."""
    import nbformat

    data = json.loads(Path(path).read_bytes().decode("utf-8"))
    if isinstance(data, dict) and isinstance(data.get("cells"), list):
        data["cells"] = [c for c in data["cells"] if isinstance(c, dict)]
        _normalised(data)
    return _normalised(nbformat.reads(json.dumps(data), as_version=4))


def grade_one(path: Path, learner: str, time_limit: float, profile_name: str, notebook_dir: Path,
              sandbox: Sandbox, hide=(), root: Path | None = None, scratch_root: Path | None = None,
              hidden=(), cell_limit: float = CELL_TIME_LIMIT) -> list[Grade]:
    """Run, check and grade one submission (the files in ``hide`` and the folders in ``hidden``
    out of its sight), in a scratch folder of its own under ``scratch_root``; an unreadable or
    unknown one, or a link out of the submissions' folder ``root``, is one error row."""
    import nbformat

    try:
        if root is not None:
            _inside(path, root)
        nb = read_submission(path)
        lesson = lesson_of(nb, path, notebook_dir)
        source = nbformat.writes(nb).encode("utf-8")  # what runs: the cells as the checks read them
    except Exception as e:  # unreadable or unknown: one row says so
        return [Grade(learner, "?", "?", "error", f"cannot grade {Path(path).name}: {str(e)[:MAX_MESSAGE]}", 0, 0,
                      sandbox.kind)]
    course_copy = nbformat.read(Path(notebook_dir) / f"{lesson}.ipynb", as_version=4)
    expected = exercises(course_copy)
    tmp = Path(tempfile.mkdtemp(prefix="submission-", dir=scratch_root))  # mode 0700
    try:
        (tmp / "run").mkdir()
        (tmp / "check").mkdir()
        report = run_notebook(source, tmp / "run", time_limit, profile_name, sandbox, hide, hidden, cell_limit)
        verdicts = run_checks(nb, expected, tmp / "check", sandbox, profile_name, hide, hidden, lesson)
    finally:
        _remove_tree(tmp)
    return (grade_rows(learner, lesson, expected, verdicts, report, time_limit, sandbox.kind)
            + written_rows(learner, lesson, written_questions(course_copy), nb, sandbox.kind))


def grade(paths, time_limit: float = DEFAULT_TIME_LIMIT, profile_name: str = "smoke", jobs: int = 1,
          notebook_dir: Path = NOTEBOOK_DIR, progress=print, sandbox: Sandbox | None = None,
          out: str | os.PathLike | None = None, force: bool = False,
          cell_time_limit: float = CELL_TIME_LIMIT) -> list[Grade]:
    """Grade every submission in ``paths``, ``jobs`` at a time; rows in the order of ``paths``;
    ``time_limit`` s per notebook, ``cell_time_limit`` s per cell (:data:`CELL_TIME_LIMIT`).
    The first progress line says which sandbox the submissions run in (or that there is none).

    Whatever goes wrong with one submission is its own error row. With ``out`` (checked first:
    :func:`check_out`), the CSV is rewritten after each finished submission and once more at the
    end, also when grading stops on an exception, so what was graded is never lost."""
    time_limit, cell_time_limit = check_time_limit(time_limit), check_time_limit(cell_time_limit)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a whole number ≥ 1, got {jobs!r}")
    paths = [Path(p) for p in paths]
    names = learner_ids(paths)
    sandbox = sandbox or find_sandbox()
    progress(sandbox.banner())
    lock, done, written = threading.Lock(), {}, []
    scratch_root = Path(tempfile.mkdtemp(prefix="kdtutor-grade-"))  # mode 0700, hidden from every sandbox
    hidden = hidden_folders(paths, out, scratch_root)
    root = submissions_root(paths) if paths else None

    def save() -> None:  # the rows finished so far, in the order of paths
        if out is not None:
            write_csv([g for n in sorted(done) for g in done[n]], out, force=force or bool(written))
            written.append(True)

    def one(n: int) -> None:
        t0 = time.perf_counter()
        try:
            rows = grade_one(paths[n], names[n], time_limit, profile_name, notebook_dir, sandbox, hide=paths,
                             root=root, scratch_root=scratch_root, hidden=hidden, cell_limit=cell_time_limit)
        except Exception as e:  # a fault of the grader's on this submission: its row, not the run's end
            rows = [Grade(names[n], "?", "?", "error", f"the grader failed on this submission: {type(e).__name__}: "
                                                       f"{str(e)[:200]}", 0, 0, sandbox.kind)]
        auto = [g for g in rows if not WRITTEN_ID.match(g.exercise)]  # written answers: graded by hand
        got, worth = sum(g.points for g in auto), sum(g.max_points for g in auto)
        by_hand = sum(g.status == BY_HAND for g in rows)
        with lock:
            done[n] = rows
            save()
            progress(f"{names[n]} ({rows[0].lesson if rows else '?'}): {got}/{worth} points in "
                     f"{time.perf_counter() - t0:.0f} s"
                     + (f", {by_hand} written answer{'' if by_hand == 1 else 's'} to grade by hand" if by_hand else ""))

    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        for finished in [pool.submit(one, n) for n in range(len(paths))]:
            finished.result()
    finally:  # stopped (Ctrl-C): the submissions under way finish, the others do not start
        pool.shutdown(wait=True, cancel_futures=True)
        with lock:
            save()
        _remove_tree(scratch_root)
    return [g for n in sorted(done) for g in done[n]]


# --------------------------------------------------------------------------- the CSV
def check_out(out: str | os.PathLike, submissions, force: bool = False) -> Path:
    """Where the CSV may go, checked before anything runs; ValueError naming the problem if
    ``out`` is a directory, a notebook or one of the submissions, exists without ``force`` or is
    not a plain file, or its folder is missing, not a folder or not writable (``/proc``)."""
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
    if path.exists() and not path.is_file():
        raise ValueError(f"--out {text} is not a plain file; name a CSV file to write")
    folder = Path(os.path.abspath(text)).parent
    if not folder.is_dir():
        raise ValueError(f"--out {text}: {folder} is not an existing folder")
    try:  # what writing the CSV does: a temporary file beside it
        fd, probe = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ValueError(f"--out {text}: cannot write a file in {folder} ({e.strerror or e})") from None
    return path


def _safe(text: str) -> str:
    """``text`` as one CSV line that no spreadsheet runs: line breaks become `` | ``, and a
    leading ``'`` if it starts with a :data:`FORMULA` character."""
    text = re.sub(r"\s*[\r\n]+\s*", " | ", str(text))
    return "'" + text if text.startswith(FORMULA) else text


def to_csv(grades: list[Grade]) -> str:
    """The rows as CSV, one line each; every text cell passed through :func:`_safe`."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(FIELDS)
    for g in grades:
        writer.writerow([_safe(g.learner), _safe(g.lesson), _safe(g.exercise), _safe(g.status), g.points,
                         g.max_points, _safe(g.message), _safe(g.sandbox)])
    return buf.getvalue()


def write_csv(grades: list[Grade], out: str | os.PathLike, force: bool = False) -> Path:
    """Write the CSV atomically; a file that appeared at ``out`` meanwhile (without ``force``) is
    kept as ``<out>.old`` rather than replaced."""
    out = Path(out)
    if out.exists() and not force:
        print(f"{out} appeared while grading: kept as {move_aside(out)}")
    return atomic_write_bytes(out, to_csv(grades).encode("utf-8"))


if __name__ == "__main__" and len(sys.argv) == 6 and sys.argv[1] == "--execute":
    _execute(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]))
elif __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--check":
    _run_check(sys.argv[2])
