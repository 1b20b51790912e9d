"""Student and instructor versions of every lesson, from one source each.

The sources, each kept in one place:

* ``notebooks/NN_name.ipynb`` — the lesson as learners get it (prose, stubs that raise
  ``NotImplementedError``, the stored outputs nbval compares);
* ``solutions/lessonNN.py`` — the reference answers, one function per exercise named
  like its check (tested by ``tests/test_checks_all.py``).

Generated from them by ``python -m kdtutor generate`` (and compared byte for byte by
``tests/test_delivery.py``, so neither can drift):

* the badge and setup cells at the top of each lesson (:mod:`kdtutor.classroom.delivery`) and
  ``metadata.kdtutor.lesson`` (what the grader reads);
* ``instructor/NN_name.ipynb`` — the same lesson with each stub replaced by its reference
  answer between ``### BEGIN SOLUTION`` and ``### END SOLUTION``, outputs cleared.

An exercise is a check cell ``fn = checks.<check>(fn).fn`` and, before it, the cell that
defines the stub ``def fn(...)``; its answer is ``solutions.lessonNN.<check>``.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from dataclasses import dataclass
from pathlib import Path

from kdtutor.storage import REPO_ROOT, atomic_write_bytes

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
INSTRUCTOR_DIR = REPO_ROOT / "instructor"
CHECK_CALL = re.compile(r"^(\w+)\s*=\s*checks\.(\w+)\(\s*\1\s*\)\.fn\s*$", re.M)
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


@dataclass(frozen=True)
class Exercise:
    """One exercise: the learner's function ``function``, checked by ``checks.<check>``."""

    check: str
    function: str
    stub_cell: str  # cell id of the stub's definition
    check_cell: str  # cell id of the check call


def lesson_module(notebook: str | Path) -> str:
    """``"01_softmax_temperature.ipynb"`` → ``"lesson01"`` (the checks' and solutions' module)."""
    m = re.match(r"(\d\d)_", Path(notebook).name)
    if not m:
        raise ValueError(f"a lesson notebook is named NN_name.ipynb, got {Path(notebook).name!r}")
    return f"lesson{m.group(1)}"


def exercises(nb) -> list[Exercise]:
    """The exercises of a lesson notebook, in order; ValueError if a check has no stub before it."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for fn, check in CHECK_CALL.findall(cell.source):
            stub = next((c for c in reversed(nb.cells[:i]) if c.cell_type == "code"
                         and re.search(rf"^def {fn}\(", c.source, re.M)), None)
            if stub is None:
                raise ValueError(f"cell {cell.id}: checks.{check}({fn}) has no cell defining {fn} before it")
            found.append(Exercise(check, fn, stub.id, cell.id))
    return found


def _function_node(source: str, name: str) -> ast.FunctionDef:
    node = next((n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == name), None)
    if node is None:
        raise ValueError(f"no top-level 'def {name}' in:\n{source}")
    return node


def answer_source(lesson: str, check: str, function: str) -> str:
    """The reference answer ``solutions.<lesson>.<check>`` renamed to ``function``, with the imports
    and private helpers of its module that it uses, as notebook code."""
    module = importlib.import_module(f"solutions.{lesson}")
    module_source = inspect.getsource(module)
    tree = ast.parse(module_source)
    lines = module_source.splitlines()

    def segment(node) -> str:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        return "\n".join(lines[start - 1:node.end_lineno])

    fn_node = _function_node(module_source, check)
    parts, names = [], set()
    todo = [fn_node]
    helpers = []
    while todo:  # the private helpers it calls, and theirs
        node = todo.pop()
        used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        names |= used
        for other in tree.body:
            if (isinstance(other, ast.FunctionDef) and other.name.startswith("_") and other.name in used
                    and other not in helpers):
                helpers.append(other)
                todo.append(other)
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound = {(a.asname or a.name).split(".")[0] for a in node.names}
            if bound & names:
                parts.append(segment(node))
    body = segment(fn_node)
    body = re.sub(rf"^def {check}\(", f"def {function}(", body, count=1, flags=re.M)
    for helper in sorted(helpers, key=lambda n: n.lineno):
        parts.append("\n\n" + segment(helper))
    parts.append("\n\n" + body)
    return "\n".join(parts).strip("\n")


def solved_cell_source(stub_source: str, function: str, answer: str) -> str:
    """The stub cell with ``def function`` replaced by ``answer`` between the solution markers."""
    node = _function_node(stub_source, function)
    lines = stub_source.splitlines()
    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
    block = [BEGIN, *answer.strip("\n").splitlines(), END]
    return "\n".join(lines[:start - 1] + block + lines[node.end_lineno:])


def instructor_version(nb, notebook: str | Path):
    """A copy of the student notebook ``nb`` with every stub replaced by its reference answer."""
    import copy

    lesson = lesson_module(notebook)
    out = copy.deepcopy(nb)
    by_id = {c.id: c for c in out.cells}
    for ex in exercises(out):
        cell = by_id[ex.stub_cell]
        cell.source = solved_cell_source(cell.source, ex.function, answer_source(lesson, ex.check, ex.function))
    for cell in out.cells:  # the stored outputs are the student version's: not shown here
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)
    out.metadata["kdtutor"] = {"lesson": Path(notebook).stem, "version": "instructor"}
    return out


def student_version(nb, notebook: str | Path, cfg: dict | None = None):
    """The student notebook with its generated parts (badges, setup cell, metadata) up to date."""
    import copy

    from kdtutor.classroom.delivery import decorate

    out = copy.deepcopy(nb)
    decorate(out, Path(notebook).name, cfg)
    out.metadata["kdtutor"] = {"lesson": Path(notebook).stem}
    return out


def write_instructor_copies(notebooks=None, instructor_dir: Path = INSTRUCTOR_DIR, check: bool = False) -> list[Path]:
    """Bring every lesson's generated parts up to date; return the files that changed (with
    ``check=True``: that would change, writing nothing)."""
    import nbformat

    paths = [Path(p) for p in (notebooks or sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb")))]
    changed = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        student = student_version(nb, path)
        targets = [(path, student), (Path(instructor_dir) / path.name, instructor_version(student, path))]
        for target, version in targets:
            text = nbformat.writes(version)
            text += "" if text.endswith("\n") else "\n"  # as nbformat.write
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                changed.append(target)
                if not check:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    atomic_write_bytes(target, text.encode("utf-8"))
    return changed

