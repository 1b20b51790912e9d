"""Student and instructor versions of every lesson, from one source each.

The sources, each kept in one place:

* ``notebooks/NN_name.ipynb`` — the lesson as learners get it (prose, stubs that raise
  ``NotImplementedError``, the stored outputs nbval compares);
* ``solutions/lessonNN.py`` — the reference answers, one function per exercise named
  like its check (tested by ``tests/test_checks_all.py``).

Generated from them by ``python -m coursetools generate`` (and compared byte for byte by
``tests/test_delivery.py``, so neither can drift):

* the badge and setup cells at the top of each lesson (:mod:`coursetools.delivery`) and
  ``metadata.kdtutor.lesson`` (what the grader reads);
* ``instructor/NN_name.ipynb`` — the same lesson as an nbgrader *source* notebook, outputs
  cleared. Each stub's body (after its signature and docstring) is its reference answer
  between ``### BEGIN SOLUTION`` and ``### END SOLUTION``, so ``nbgrader generate_assignment``
  gives back the stub (nbgrader's own ``# YOUR CODE HERE / raise NotImplementedError()``).
  Cell metadata (``metadata.nbgrader``, schema 3): the stub cell is a solution cell; the
  lesson's text, the setup cell and each check cell are read-only; after each check cell
  comes an autograded test cell worth ``checks.points(check)`` points that asserts with
  ``checks.require`` (and runs the answer's hidden tests, ``solutions.lessonNN._hidden_<check>``
  where there is one, between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``).

An exercise is a check cell ``fn = checks.<check>(fn).fn`` and, before it, the cell that
defines the stub ``def fn(...)`` (its body ``# YOUR CODE HERE`` and ``raise NotImplementedError``);
its answer is ``solutions.lessonNN.<check>``, with the stub's parameter names.

A **written question** (graded by hand) is a markdown cell with metadata
``{"kdtutor": {"written": "q<LL>-<n>", "points": <int>}}`` whose text starts with
``**Written question q<LL>-<n> (<wording>, graded by hand, <points> point(s)).**``, and right after
it a markdown answer cell with metadata ``{"kdtutor": {"answer_to": "q<LL>-<n>"}}`` and the text
``*Your answer here.*`` (:func:`written_questions` finds them and refuses a malformed one). The
wording, ``optional`` or ``required``, is the course's choice (``"written_questions"`` in
``coursetools/delivery.json``); ``generate`` writes it into every heading and into lesson 00's
description of the written questions (:func:`set_written_wording`).

Each question's **model answer and rubric** live in one instructor-only file,
``solutions/written_answers.md`` (never in a release: ``solutions/`` is withheld), one section per
question (:func:`written_answers` reads it and refuses a malformed one)::

    ## q01-1

    **Model answer.** The answer, in markdown (several paragraphs allowed).

    **Rubric.**
    - 1 point: what earns this point.
    - 1 point: ...

the rubric's points summing to the question's points. In the instructor copy the answer cell holds
the model answer and the rubric (:func:`model_answer_source`) and is an nbgrader *manually graded
answer* (``solution`` and ``grade``, ``grade_id`` the question's id, its points, unlocked):
``nbgrader generate_assignment`` replaces a markdown solution cell with its ``YOUR ANSWER HERE``, so
the release never carries the model answer; the TA reads it in the source notebook. The question
stays read-only like all the lesson's text. The grader (:mod:`coursetools.grading`) lists each
submission's answers for a TA.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

from coursetools.course import notebook_text
from coursetools.delivery import SETUP_ID as SETUP_CELL, WRITTEN_WORDINGS
from kdtutor.storage import REPO_ROOT, atomic_write_bytes

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
INSTRUCTOR_DIR = REPO_ROOT / "instructor"
CHECK_CALL = re.compile(r"^(\w+)\s*=\s*checks\.(\w+)\(\s*\1\s*\)\.fn\s*$", re.M)
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
STUB_MARK = "# YOUR CODE HERE"
NBGRADER_SCHEMA = 3
ANSWER_PLACEHOLDER = "*Your answer here.*"
QUESTION_ID = re.compile(r"^q(\d\d)-([1-9]\d*)$")
WRITTEN_ANSWERS = REPO_ROOT / "solutions" / "written_answers.md"
# lesson 00's description of the written questions, reworded with the headings
WRITTEN_INTRO = re.compile(r"\*\*Written questions\*\* \((" + "|".join(WRITTEN_WORDINGS) + r"), graded by hand\)")


# The instructor copies' setup cell ends with this: under nbgrader's autograde, each submission gets its own
# KDTUTOR_DATA (the prepared data as a link per file: a run that writes replaces its link, never the file) and
# KDTUTOR_RESULTS, as under python -m coursetools grade. Set before kdtutor is imported; kdtutor says where its data are.
AUTOGRADE_SCRATCH = """\
if os.environ.get("NBGRADER_EXECUTION") == "autograde":  # nbgrader: this submission's own data and results
    import shutil, tempfile
    shared = subprocess.run([sys.executable, "-c", "from kdtutor.storage import DATA_DIR; print(DATA_DIR)"],
                            check=True, capture_output=True, text=True).stdout.strip()
    own = tempfile.mkdtemp(prefix="kdtutor-submission-")
    if os.path.isdir(shared):
        shutil.copytree(shared, os.path.join(own, "data"), symlinks=True, copy_function=os.symlink)
    os.environ["KDTUTOR_DATA"], os.environ["KDTUTOR_RESULTS"] = os.path.join(own, "data"), os.path.join(own, "results")
"""


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


@dataclass(frozen=True)
class WrittenQuestion:
    """One written question ``qid`` (``q01-1``) worth ``points``, graded by hand."""

    qid: str
    points: int
    question_cell: str  # cell id of the question
    answer_cell: str  # cell id of the (learner's) answer cell, right after it


def question_heading(qid: str, points: int, wording: str = "optional") -> str:
    """The text a written question's cell starts with; ``wording`` is ``"optional"`` or ``"required"``."""
    if wording not in WRITTEN_WORDINGS:
        raise ValueError(f"a written question is {' or '.join(WRITTEN_WORDINGS)}, got {wording!r}")
    return f"**Written question {qid} ({wording}, graded by hand, {points} point{'' if points == 1 else 's'}).**"


def written_questions(nb, notebook: str | Path | None = None) -> list[WrittenQuestion]:
    """The written questions of a lesson notebook, in order. ValueError if one breaks the convention
    (see the module docstring): a bad id or points, a duplicate id, a question cell whose id is the
    question's id, a heading that does not match its metadata, another lesson's number, or no answer
    cell right after it."""
    where = f"{Path(notebook).name}: " if notebook else ""
    lesson = re.match(r"(\d\d)_", Path(notebook).name) if notebook else None
    found, seen = [], set()
    for i, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("kdtutor", {})
        if "written" not in meta:
            continue
        qid, points = meta["written"], meta.get("points")
        if not isinstance(qid, str) or not QUESTION_ID.match(qid):
            raise ValueError(f"{where}cell {cell.id}: a written question's id is q<LL>-<n>, got {qid!r}")
        if lesson and QUESTION_ID.match(qid).group(1) != lesson.group(1):
            raise ValueError(f"{where}cell {cell.id}: question {qid} belongs to lesson {qid[1:3]}")
        if isinstance(points, bool) or not isinstance(points, int) or points < 1:
            raise ValueError(f"{where}question {qid}: points must be a whole number >= 1, got {points!r}")
        if qid in seen:
            raise ValueError(f"{where}question {qid} appears twice")
        seen.add(qid)
        if cell.get("id") == qid:  # the question cell's nbgrader grade_id is its cell id, the answer's is qid
            raise ValueError(f"{where}question {qid}: its cell id must differ from {qid!r}, the grade id of its "
                             "answer (nbgrader refuses a duplicate grade id)")
        if cell.cell_type != "markdown" or not any(cell.source.startswith(question_heading(qid, points, w))
                                                   for w in WRITTEN_WORDINGS):
            raise ValueError(f"{where}question {qid}: a markdown cell starting with {question_heading(qid, points)!r} "
                             f"(or {'/'.join(WRITTEN_WORDINGS[1:])} for optional)")
        answer = nb.cells[i + 1] if i + 1 < len(nb.cells) else None
        if (answer is None or answer.cell_type != "markdown"
                or answer.get("metadata", {}).get("kdtutor", {}).get("answer_to") != qid):
            raise ValueError(f"{where}question {qid}: the next cell must be a markdown answer cell with metadata "
                             f"kdtutor.answer_to = {qid!r}")
        found.append(WrittenQuestion(qid, points, cell.id, answer.id))
    return found


def set_written_wording(nb, wording: str, notebook: str | Path | None = None) -> bool:
    """Word every written question's heading of ``nb`` (and lesson 00's description of the written
    questions) as ``wording``, ``"optional"`` or ``"required"``; True if anything changed."""
    if wording not in WRITTEN_WORDINGS:
        raise ValueError(f"a written question is {' or '.join(WRITTEN_WORDINGS)}, got {wording!r}")
    changed = False
    cells = {c.get("id"): c for c in nb.cells}
    for q in written_questions(nb, notebook):
        cell = cells[q.question_cell]
        old = next(question_heading(q.qid, q.points, w) for w in WRITTEN_WORDINGS
                   if cell.source.startswith(question_heading(q.qid, q.points, w)))
        new = question_heading(q.qid, q.points, wording)
        changed |= old != new
        cell.source = new + cell.source[len(old):]
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            text = WRITTEN_INTRO.sub(f"**Written questions** ({wording}, graded by hand)", cell.source)
            changed |= text != cell.source
            cell.source = text
    return changed


@dataclass(frozen=True)
class ModelAnswer:
    """A written question's model answer (markdown) and rubric: ``(points, marking point)`` pairs."""

    qid: str
    answer: str
    rubric: tuple[tuple[int, str], ...]

    @property
    def points(self) -> int:
        return sum(p for p, _ in self.rubric)


RUBRIC_LINE = re.compile(r"^- ([1-9]\d*) points?: (\S.*)$")


def written_answers(path: Path = WRITTEN_ANSWERS) -> dict[str, ModelAnswer]:
    """``{qid: ModelAnswer}`` from the instructor's file (format in the module docstring); ValueError
    naming the section if one is malformed: a bad or repeated id, no ``**Model answer.**`` paragraph,
    no ``**Rubric.**`` or an empty one, a rubric line that is not ``- <n> point(s): <text>``."""
    text = Path(path).read_text(encoding="utf-8")
    sections = re.split(r"^## (.*)$", text, flags=re.M)[1:]  # [heading, body, heading, body, ...]
    found = {}
    for qid, body in zip(sections[::2], sections[1::2]):
        qid = qid.strip()
        where = f"{Path(path).name}, section {qid!r}"
        if not QUESTION_ID.match(qid):
            raise ValueError(f"{where}: a section heading is a question id, '## q<LL>-<n>'")
        if qid in found:
            raise ValueError(f"{where} appears twice")
        parts = re.split(r"^\*\*Rubric\.\*\*[ \t]*$", body.strip(), flags=re.M)
        answer, rubric = (parts[0].strip(), parts[1]) if len(parts) == 2 else ("", "")
        if not answer.startswith("**Model answer.** ") or len(parts) != 2:
            raise ValueError(f"{where}: a '**Model answer.** ...' paragraph, then a line '**Rubric.**'")
        items = []
        for line in rubric.strip().splitlines():
            if line.startswith("  ") and items:  # a marking point's continuation line
                items[-1] = (items[-1][0], f"{items[-1][1]} {line.strip()}")
                continue
            m = RUBRIC_LINE.match(line)
            if m is None:
                raise ValueError(f"{where}: a rubric line is '- <n> point(s): <what earns them>', got {line!r}")
            items.append((int(m.group(1)), m.group(2)))
        if not items:
            raise ValueError(f"{where}: the rubric has no marking point")
        if any(m in body for m in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS", "MARK SCHEME")):
            raise ValueError(f"{where}: nbgrader would take its 'BEGIN/END SOLUTION', 'HIDDEN TESTS' or 'MARK SCHEME' "
                             "text for a marker; reword it")
        found[qid] = ModelAnswer(qid, answer.removeprefix("**Model answer.** ").strip(), tuple(items))
    return found


def model_answer_source(q: WrittenQuestion, model: ModelAnswer) -> str:
    """The instructor copy's answer cell of ``q``: its model answer and rubric. ValueError unless the
    rubric's points sum to the question's."""
    if model.qid != q.qid or model.points != q.points:
        raise ValueError(f"{WRITTEN_ANSWERS.name}: the rubric of {model.qid} gives {model.points} point(s); "
                         f"question {q.qid} is worth {q.points}")
    s = "" if q.points == 1 else "s"
    rubric = "\n".join(f"- **{p} point{'' if p == 1 else 's'}:** {text}" for p, text in model.rubric)
    return (f"**Model answer** (instructor copy: nbgrader's release shows learners an empty answer cell).\n\n"
            f"{model.answer}\n\n**Rubric ({q.points} point{s}).**\n{rubric}")


def _function_node(source: str, name: str) -> ast.FunctionDef:
    node = next((n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == name), None)
    if node is None:
        raise ValueError(f"no top-level 'def {name}' in:\n{source}")
    return node


def _params(node: ast.FunctionDef) -> list[str]:
    return [a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs]


def _answer_parts(lesson: str, check: str):
    """``(lines of the module, the answer's FunctionDef, [imports it uses], [private helpers it uses])``
    of ``solutions.<lesson>.<check>``, the imports and helpers as source."""
    module = importlib.import_module(f"solutions.{lesson}")
    module_source = inspect.getsource(module)
    tree = ast.parse(module_source)
    lines = module_source.splitlines()

    def segment(node) -> str:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        return "\n".join(lines[start - 1:node.end_lineno])

    fn_node = _function_node(module_source, check)
    names, helpers, todo = set(), [], [fn_node]
    while todo:  # the private helpers it calls, and theirs
        node = todo.pop()
        used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        names |= used
        for other in tree.body:
            if (isinstance(other, ast.FunctionDef) and other.name.startswith("_") and other.name in used
                    and other not in helpers):
                helpers.append(other)
                todo.append(other)
    imports = [segment(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
               and {(a.asname or a.name).split(".")[0] for a in node.names} & names]
    return lines, fn_node, imports, [segment(h) for h in sorted(helpers, key=lambda n: n.lineno)]


def answer_body(lesson: str, check: str, function: str, params: list[str]) -> str:
    """The reference answer ``solutions.<lesson>.<check>`` as the body of the learner's ``def function``
    (unindented): the imports and private helpers it uses, its docstring as comments, its code.
    ValueError unless the answer's parameters are ``params`` (the stub's), in order."""
    lines, fn_node, imports, helpers = _answer_parts(lesson, check)
    got = _params(fn_node)
    if got != params:
        raise ValueError(f"solutions/{lesson}.py: {check}{tuple(got)} must take the stub's parameters "
                         f"{function}{tuple(params)} (same names, same order)")
    doc = ast.get_docstring(fn_node)
    if doc is not None:
        start = fn_node.body[0].end_lineno  # the line after the docstring
    else:  # the first statement, with the comment lines right above it
        start = fn_node.body[0].lineno - 1
        while start - 1 >= fn_node.lineno and lines[start - 1].strip().startswith("#"):
            start -= 1
    code = textwrap.dedent("\n".join(lines[start:fn_node.end_lineno])).strip("\n")
    comments = "".join(("# " + line).rstrip() + "\n" for line in (doc or "").splitlines())
    blocks = (["\n".join(imports)] if imports else []) + [textwrap.dedent(h) for h in helpers] + [comments + code]
    return "\n\n".join(blocks)


def hidden_test_source(lesson: str, check: str, function: str) -> str | None:
    """The hidden test ``solutions.<lesson>._hidden_<check>(fn)`` (it raises on a wrong answer), with
    the imports and helpers it uses, and a call of it on the learner's ``function``, as notebook code;
    None if the answer has none."""
    name = f"_hidden_{check}"
    if not hasattr(importlib.import_module(f"solutions.{lesson}"), name):
        return None
    lines, node, imports, helpers = _answer_parts(lesson, name)
    blocks = (["\n".join(imports)] if imports else []) + helpers
    blocks.append("\n".join(lines[node.lineno - 1:node.end_lineno]))
    return "\n\n\n".join(blocks) + f"\n\n\n{name}({function})\ndel {name}"


def solved_cell_source(stub_source: str, function: str, body: str) -> str:
    """The stub cell with the body of ``def function`` (from its ``# YOUR CODE HERE`` line to its end)
    replaced by ``body`` between the solution markers, at the stub body's indentation."""
    node = _function_node(stub_source, function)
    lines = stub_source.splitlines()
    mark = next((i for i in range(node.lineno - 1, node.end_lineno) if lines[i].strip() == STUB_MARK), None)
    if mark is None:
        raise ValueError(f"the stub of {function} has no {STUB_MARK!r} line in its body:\n{stub_source}")
    indent = lines[mark][:len(lines[mark]) - len(lines[mark].lstrip())]
    block = [BEGIN, *body.strip("\n").splitlines(), END]
    return "\n".join(lines[:mark] + [(indent + line).rstrip() for line in block] + lines[node.end_lineno:])


def _nbgrader(cell, grade_id: str, *, solution=False, grade=False, locked=False, points=None) -> None:
    """Set nbgrader's cell metadata (schema 3) on ``cell``."""
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": NBGRADER_SCHEMA,
            "solution": solution, "task": False}
    if grade:
        meta["points"] = points
    cell.metadata["nbgrader"] = meta


def test_cell_source(ex: Exercise, points: int, hidden: str | None) -> str:
    """The autograded cell of ``ex``: it raises (nbgrader: 0 points) unless the learner's function passes."""
    s = "" if points == 1 else "s"
    source = (f"# Autograded: {points} point{s}. Fails unless your own {ex.function} passes checks.{ex.check}"
              f"{' and hidden tests' if hidden else ''}.\n"
              f"checks.require(\"{ex.check}\", {ex.function})")
    if hidden:
        source += f"\n{BEGIN_HIDDEN}\n{hidden}\n{END_HIDDEN}"
    return source


def instructor_version(nb, notebook: str | Path, models: dict[str, ModelAnswer] | None = None):
    """The nbgrader source notebook of the student notebook ``nb`` (see the module docstring);
    ``models``: the written questions' model answers (default: :func:`written_answers`)."""
    import copy

    import nbformat

    from kdtutor.checks import core

    lesson = lesson_module(notebook)
    out = copy.deepcopy(nb)
    if out.metadata.get("kernelspec", {}).get("language") != "python":
        raise ValueError(f"{notebook}: metadata.kernelspec.language must be 'python' (nbgrader picks its stubs by it)")
    found = exercises(out)
    answers = {q.answer_cell: q for q in written_questions(out, notebook)}
    if models is None:
        models = written_answers() if answers else {}
    missing = [q.qid for q in answers.values() if q.qid not in models]
    if missing:
        raise ValueError(f"{notebook}: no model answer and rubric for {', '.join(missing)} in {WRITTEN_ANSWERS}")
    stubs = {ex.stub_cell: ex for ex in found}
    checks_at = {ex.check_cell: ex for ex in found}
    cells = []
    for cell in out.cells:
        if cell.cell_type == "code":  # the stored outputs are the student version's: not shown here
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)
            cell.metadata.get("kdtutor", {}).pop("output", None)
            if cell.metadata.get("kdtutor") == {}:
                del cell.metadata["kdtutor"]
        if cell.id not in stubs and any(m in cell.source for m in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS")):
            raise ValueError(f"{notebook}, cell {cell.id}: nbgrader would take its 'BEGIN/END SOLUTION' or "
                             "'HIDDEN TESTS' text for a marker; reword it")
        cells.append(cell)
        if cell.id in stubs:
            ex = stubs[cell.id]
            params = _params(_function_node(cell.source, ex.function))
            cell.source = solved_cell_source(cell.source, ex.function, answer_body(lesson, ex.check, ex.function, params))
            _nbgrader(cell, f"{ex.check}-answer", solution=True)
        elif cell.id in checks_at:
            ex = checks_at[cell.id]
            _nbgrader(cell, f"{ex.check}-check", locked=True)
            points = core.points(ex.check)
            test = nbformat.v4.new_code_cell(test_cell_source(ex, points, hidden_test_source(lesson, ex.check, ex.function)),
                                             id=f"{ex.check}-test")
            _nbgrader(test, f"{ex.check}-test", grade=True, locked=True, points=points)
            cells.append(test)
        elif cell.id in answers:  # a written answer: graded by hand in nbgrader
            q = answers[cell.id]
            cell.source = model_answer_source(q, models[q.qid])
            _nbgrader(cell, q.qid, solution=True, grade=True, points=q.points)
        elif cell.cell_type == "markdown" or cell.id == SETUP_CELL:
            if cell.id == SETUP_CELL:
                cell.source = cell.source.rstrip("\n") + "\n" + AUTOGRADE_SCRATCH
            _nbgrader(cell, cell.id, locked=True)  # the lesson's text and the setup: read-only
    out.cells = cells
    out.metadata["kdtutor"] = {"lesson": Path(notebook).stem}
    return out


def student_version(nb, notebook: str | Path, cfg: dict | None = None):
    """The student notebook with its generated parts (badges, setup cell, time line, metadata) up to date."""
    import copy

    from coursetools.delivery import config, decorate, hide_predicted_outputs
    from coursetools.pace import load_pace, set_pace
    from coursetools.stored import restamp_generated

    out = copy.deepcopy(nb)
    cfg = cfg or config()
    decorate(out, Path(notebook).name, cfg)
    set_written_wording(out, cfg["written_questions"], notebook)
    hide_predicted_outputs(out)
    set_pace(out, Path(notebook).stem, load_pace())
    run = out.metadata.get("kdtutor", {}).get("reference_run")
    out.metadata["kdtutor"] = {"lesson": Path(notebook).stem, **({"reference_run": run} if run else {})}
    restamp_generated(out, SETUP_CELL)
    return out


def write_instructor_copies(notebooks=None, instructor_dir: Path = INSTRUCTOR_DIR, check: bool = False) -> list[Path]:
    """Bring every lesson's generated parts up to date; return the files that changed (with
    ``check=True``: that would change, writing nothing). For all the lessons (``notebooks`` None), a
    ValueError before anything is written if ``solutions/written_answers.md`` answers a question no
    lesson asks (renumbered or removed: its answer would never reach a TA)."""
    import nbformat

    paths = [Path(p) for p in (notebooks or sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb")))]
    models, asked, versions = written_answers(), set(), []
    for path in paths:
        student = student_version(nbformat.read(path, as_version=4), path)
        asked |= {q.qid for q in written_questions(student, path)}
        versions += [(path, student), (Path(instructor_dir) / path.name, instructor_version(student, path, models))]
    stray = sorted(set(models) - asked) if notebooks is None else []
    if stray:
        raise ValueError(f"{WRITTEN_ANSWERS}: model answers for questions no lesson asks: {', '.join(stray)}")
    changed = []
    for target, version in versions:
        text = notebook_text(version)
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            changed.append(target)
            if not check:
                target.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(target, text.encode("utf-8"))
    return changed
