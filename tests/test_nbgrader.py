"""instructor/ notebooks are nbgrader source notebooks: the real nbgrader CLI (generate_assignment,
autograde, generate_feedback) in a temporary course directory, on lessons 01 and 02.

For each lesson the same three submissions: the released notebook left unsolved (0 points), the
instructor copy itself (full marks), and the instructor copy with one planted wrong answer (loses
exactly that exercise's points, ``checks.points``), and one that passes the visible check but not
the hidden test. nbgrader runs once per lesson (a module-scoped fixture). Each lesson's written
questions are manually graded cells: their points count in the maximum and score 0 until a TA
grades them.
"""

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from kdtutor import checks
from coursetools import instructor

try:
    from nbgrader.api import Gradebook
except ImportError as e:  # a dev dependency: make installs it
    raise ImportError("tests/test_nbgrader.py needs nbgrader: pip install -e '.[dev]'") from e

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ASSIGNMENT = "kd"
# lesson → (exercise with the planted wrong answer, the line of its answer, the wrong line)
PLANTED = {
    "01_softmax_temperature": ("temperature_for_entropy", "return math.exp(0.5 * (lo + hi))",
                               "return 0.5 * (lo + hi)"),  # log T instead of T
    "02_losses_ce_kl_mse": ("kl_batchmean", "per_example = (logp.exp() * (logp - logq)).sum(dim=1)",
                            "per_example = (logq.exp() * (logq - logp)).sum(dim=1)"),  # the reverse KL
}
# the same for an answer that is right on the visible check's cases and wrong on the hidden test's
HIDDEN_ONLY = {
    "01_softmax_temperature": ("entropy_nats", "return -p_log_p.sum(dim=-1)",
                               "return -p_log_p.sum(dim=-1) * (0.5 if probs.shape[-1] == 7 else 1.0)"),
    "02_losses_ce_kl_mse": ("kl_batchmean", "return per_example.mean()",
                            "return per_example.mean() * (0.5 if student_logits.shape[-1] == 13 else 1.0)"),
}


def _read(path):
    return nbformat.read(path, as_version=4)


def _nbgrader(course: Path, *args) -> subprocess.CompletedProcess:
    """Run the real nbgrader CLI in ``course``; fail with its output if it fails."""
    env = {**os.environ, "KDTUTOR_PROFILE": "smoke", "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),  # this checkout's kdtutor
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}  # its alembic
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _course(root: Path, notebooks) -> Path:
    """An nbgrader course directory with ``notebooks`` (instructor copies) as assignment ``kd``."""
    (root / "source" / ASSIGNMENT).mkdir(parents=True)
    (root / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        "c.CourseDirectory.course_id = 'kdtutor'\n"
        f"c.CourseDirectory.root = {str(root)!r}\n"
        "c.Execute.timeout = 300  # seconds per cell; lessons that train need more than nbgrader's 30\n")
    for nb in notebooks:
        (root / "source" / ASSIGNMENT / nb.name).write_bytes((ROOT / "instructor" / nb.name).read_bytes())
    return root


def _planted(source: Path, check: str, right: str, wrong: str, out: Path) -> None:
    """The instructor copy ``source`` with one line of ``check``'s answer replaced."""
    nb = _read(source)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == f"{check}-answer")
    assert right in cell.source, f"{check}'s answer changed: update PLANTED"
    cell.source = cell.source.replace(right, wrong)
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)


@pytest.fixture(scope="module", params=sorted(PLANTED))
def graded(request, tmp_path_factory):
    """``(lesson, course dir, {student: (score, max score, {exercise: score})})`` after nbgrader's
    generate_assignment, autograde and generate_feedback."""
    lesson = request.param
    course = _course(tmp_path_factory.mktemp(f"nbgrader-{lesson[:2]}"), [ROOT / "notebooks" / f"{lesson}.ipynb"])
    _nbgrader(course, "generate_assignment", ASSIGNMENT)
    name = f"{lesson}.ipynb"
    source, released = course / "source" / ASSIGNMENT / name, course / "release" / ASSIGNMENT / name

    def submitted(student):
        path = course / "submitted" / student / ASSIGNMENT / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    submitted("unsolved").write_bytes(released.read_bytes())
    submitted("instructor").write_bytes(source.read_bytes())
    _planted(source, *PLANTED[lesson], submitted("one_wrong"))
    _planted(source, *HIDDEN_ONLY[lesson], submitted("hidden_wrong"))
    _nbgrader(course, "autograde", ASSIGNMENT)
    _nbgrader(course, "generate_feedback", ASSIGNMENT)
    scores = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in ("unsolved", "instructor", "one_wrong", "hidden_wrong"):
            nb = gb.find_submission_notebook(lesson, ASSIGNMENT, student)
            scores[student] = (nb.score, nb.max_score, {g.name.removesuffix("-test"): g.score for g in nb.grades})
            by_hand = {q: gb.find_grade(q, lesson, ASSIGNMENT, student) for q in _written(lesson)}
            scores[student] += ({q: (g.needs_manual_grade, g.max_score) for q, g in by_hand.items()},)
    print(f"\nnbgrader scores, {lesson}: " + ", ".join(f"{s} {v[0]:g}/{v[1]:g}" for s, v in scores.items()))
    return lesson, course, scores


def _points(lesson: str) -> dict[str, int]:
    return {ex.check: checks.points(ex.check)
            for ex in instructor.exercises(_read(ROOT / "notebooks" / f"{lesson}.ipynb"))}


def _written(lesson: str) -> dict[str, int]:
    """The lesson's written questions and their points (graded by hand)."""
    path = ROOT / "notebooks" / f"{lesson}.ipynb"
    return {q.qid: q.points for q in instructor.written_questions(_read(path), path)}


def _max(lesson: str) -> int:
    return sum(_points(lesson).values()) + sum(_written(lesson).values())


def _unmarked(lesson: str) -> dict[str, int]:
    return {q: 0 for q in _written(lesson)}  # a written answer scores 0 until a TA grades it


@pytest.mark.slow
def test_the_released_notebook_left_unsolved_scores_0_of_the_lessons_points(graded):
    lesson, _, scores = graded
    score, max_score, by_exercise, by_hand = scores["unsolved"]
    assert max_score == _max(lesson) and score == 0
    assert by_exercise == {**{check: 0 for check in _points(lesson)}, **_unmarked(lesson)}
    assert by_hand == {q: (False, p) for q, p in _written(lesson).items()}  # left as released: nothing to grade


@pytest.mark.slow
def test_the_instructor_copy_as_a_submission_scores_full_marks_exercise_by_exercise(graded):
    lesson, _, scores = graded
    score, max_score, by_exercise, _ = scores["instructor"]
    assert by_exercise == {**_points(lesson), **_unmarked(lesson)}
    assert score == sum(_points(lesson).values()) and max_score == _max(lesson)


@pytest.mark.slow
def test_each_written_answer_is_a_manually_graded_cell_worth_its_points(graded):
    lesson, course, scores = graded
    assert _written(lesson), f"{lesson} has a written question"
    _, _, _, by_hand = scores["instructor"]  # its answer differs from the released one: a TA must grade it
    assert by_hand == {q: (True, p) for q, p in _written(lesson).items()}
    released = {c.id: c for c in _read(course / "release" / ASSIGNMENT / f"{lesson}.ipynb").cells}
    source = {c.id: c for c in _read(course / "source" / ASSIGNMENT / f"{lesson}.ipynb").cells}
    path, models = ROOT / "notebooks" / f"{lesson}.ipynb", instructor.written_answers()
    for q in instructor.written_questions(_read(path), path):
        cell = released[q.answer_cell]
        assert cell.cell_type == "markdown" and cell.metadata["nbgrader"]["grade_id"] == q.qid
        assert cell.metadata["nbgrader"]["solution"] and cell.metadata["nbgrader"]["points"] == q.points
        # the source notebook holds the model answer and rubric; nbgrader releases its own empty stub
        assert source[q.answer_cell].source == instructor.model_answer_source(q, models[q.qid])
        assert cell.source == "YOUR ANSWER HERE"


@pytest.mark.slow
def test_one_planted_wrong_answer_loses_exactly_that_exercises_points(graded):
    lesson, _, scores = graded
    wrong = PLANTED[lesson][0]
    score, max_score, by_exercise, _ = scores["one_wrong"]
    assert by_exercise == {**_points(lesson), **_unmarked(lesson), wrong: 0}
    assert score == sum(_points(lesson).values()) - checks.points(wrong) and max_score == _max(lesson)


@pytest.mark.slow
def test_an_answer_right_on_the_visible_check_but_wrong_on_the_hidden_test_loses_its_points(graded):
    lesson, course, scores = graded
    check = HIDDEN_ONLY[lesson][0]
    assert scores["hidden_wrong"][2] == {**_points(lesson), **_unmarked(lesson), check: 0}
    autograded = _read(course / "autograded" / "hidden_wrong" / ASSIGNMENT / f"{lesson}.ipynb")
    ex = next(e for e in instructor.exercises(autograded) if e.check == check)
    shown = "".join(o.get("text", "") for c in autograded.cells if c.id == ex.check_cell for o in c.outputs)
    assert f"✓ {check}" in shown  # the visible check passed it: the hidden test took the points
    released = (course / "release" / ASSIGNMENT / f"{lesson}.ipynb").read_text()
    assert "_hidden_" not in released and instructor.BEGIN_HIDDEN not in released  # learners never see it


@pytest.mark.slow
def test_feedback_is_written_for_every_submission_with_its_score(graded):
    lesson, course, scores = graded
    for student, (score, max_score, _, _) in scores.items():
        html = (course / "feedback" / student / ASSIGNMENT / f"{lesson}.html").read_text(encoding="utf-8")
        assert f"{lesson} (Score: {score:.1f} / {max_score:.1f})" in html, student


@pytest.mark.slow
def test_generate_assignment_accepts_every_lesson_and_releases_the_stubs_and_the_asserting_cells(tmp_path):
    course = _course(tmp_path, LESSONS)
    _nbgrader(course, "generate_assignment", ASSIGNMENT)
    for path in LESSONS:
        student, released = _read(path), _read(course / "release" / ASSIGNMENT / path.name)
        text = nbformat.writes(released)
        assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text, path.name
        by_id = {c.id: c for c in released.cells}
        for ex in instructor.exercises(student):
            stub = by_id[ex.stub_cell].source  # the learner's stub again, with nbgrader's own body
            assert stub.splitlines()[0] == next(c for c in student.cells if c.id == ex.stub_cell).source.splitlines()[0]
            assert "# YOUR CODE HERE" in stub and "raise NotImplementedError()" in stub
            assert by_id[ex.check_cell].source == next(c for c in student.cells if c.id == ex.check_cell).source
            test = by_id[f"{ex.check}-test"]
            assert f'checks.require("{ex.check}", {ex.function})' in test.source
            assert test.metadata["nbgrader"]["points"] == checks.points(ex.check)


def _lesson01_like(stub_source: str, extra_markdown: str = "text"):
    """A tiny lesson-01 notebook: one markdown cell, the entropy_nats stub, its check cell."""
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3"}})
    nb.cells = [nbformat.v4.new_markdown_cell(extra_markdown, id="intro"),
                nbformat.v4.new_code_cell(stub_source, id="stub"),
                nbformat.v4.new_code_cell("entropy_nats = checks.entropy_nats(entropy_nats).fn", id="check")]
    return nb


STUB = "def entropy_nats(probs):\n    \"\"\"doc\"\"\"\n    # YOUR CODE HERE\n    raise NotImplementedError"


def test_the_instructor_version_marks_solution_read_only_and_autograded_cells_for_nbgrader():
    out = instructor.instructor_version(_lesson01_like(STUB), "01_x.ipynb")
    meta = {c.id: c.metadata.get("nbgrader") for c in out.cells}
    assert [c.id for c in out.cells] == ["intro", "stub", "check", "entropy_nats-test"]
    assert meta["intro"]["locked"] and meta["check"]["locked"] and not meta["stub"]["locked"]
    assert meta["stub"]["solution"] and not meta["stub"]["grade"]
    assert meta["entropy_nats-test"] == {"grade": True, "grade_id": "entropy_nats-test", "locked": True,
                                         "points": checks.points("entropy_nats"), "schema_version": 3,
                                         "solution": False, "task": False}
    stub = out.cells[1].source.splitlines()
    assert stub[:2] == STUB.splitlines()[:2] and stub[2] == "    " + instructor.BEGIN and stub[-1] == "    " + instructor.END
    namespace = {}
    exec(out.cells[1].source, namespace)  # the solved stub is the reference answer
    assert checks.entropy_nats(namespace["entropy_nats"], verbose=False).passed is True


@pytest.mark.parametrize("stub,markdown,why", [
    (STUB, "Write your code between ### BEGIN SOLUTION and the end", "nbgrader would take"),
    (STUB.replace("# YOUR CODE HERE", "# your code"), "text", "has no '# YOUR CODE HERE' line"),
    (STUB.replace("(probs)", "(p)"), "text", "must take the stub's parameters"),
])
def test_the_instructor_version_refuses_what_nbgrader_would_misread(stub, markdown, why):
    with pytest.raises(ValueError, match=why):
        instructor.instructor_version(_lesson01_like(stub, markdown), "01_x.ipynb")


def test_the_instructor_version_needs_a_python_kernelspec_for_nbgraders_stubs():
    nb = _lesson01_like(STUB)
    nb.metadata.kernelspec["language"] = "R"
    with pytest.raises(ValueError, match="kernelspec.language must be 'python'"):
        instructor.instructor_version(nb, "01_x.ipynb")


# --------------------------------------------------------------------------- one policy, both graders (issue 33)
LOOP = ("entropy_nats", "return -p_log_p.sum(dim=-1)", "while True:  # an endless loop\n        pass")
CHEAT_BODY = ("    import types\n    from kdtutor.kd import softmax as _sm\n    f = _sm.log_softmax\n"
              "    mine = types.FunctionType(f.__code__.replace(co_name='mine'), f.__globals__, 'mine', f.__defaults__)\n"
              "    return mine(logits, T)\n")  # kdtutor's own log_softmax under a renamed code object


def _cheat(source: Path, out: Path) -> None:
    """The instructor copy with stable_log_softmax's answer replaced by the renamed-code cheat."""
    nb = _read(source)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "stable_log_softmax-answer")
    head, rest = cell.source.split(instructor.BEGIN)
    cell.source = head + instructor.BEGIN + "\n" + CHEAT_BODY + "    " + instructor.END + rest.split(instructor.END)[1]
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)


def test_the_documented_nbgrader_config_has_the_graders_cell_limit_and_clears_hidden_tests_in_feedback():
    text = (ROOT / "instructor" / "nbgrader_config.py").read_text()
    from coursetools.grading import CELL_TIME_LIMIT

    assert f"c.Execute.timeout = {CELL_TIME_LIMIT} " in text
    assert "ClearHiddenTests]" in text and "c.GenerateFeedback.preprocessors" in text


@pytest.mark.slow
def test_both_graders_give_the_same_submissions_the_same_points_and_kdtutors_renamed_code_0(tmp_path):
    """Lesson 01 with the documented nbgrader_config.py (a shorter cell limit, to keep the test short) and
    ``python -m coursetools grade`` with the same limit: correct, one wrong, wrong only on the hidden test,
    an endless loop, and issue 33's renamed-code cheat score the same, exercise by exercise."""
    from coursetools import grading

    lesson, cell_limit = "01_softmax_temperature", 20
    course = tmp_path / "course"
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    (course / "nbgrader_config.py").write_text((ROOT / "instructor" / "nbgrader_config.py").read_text()
                                               + f"c.CourseDirectory.root = {str(course)!r}\n"
                                               + f"c.Execute.timeout = {cell_limit}\n")
    name = f"{lesson}.ipynb"
    source = course / "source" / ASSIGNMENT / name
    source.write_bytes((ROOT / "instructor" / name).read_bytes())
    _nbgrader(course, "generate_assignment", ASSIGNMENT)
    subs = {s: course / "submitted" / s / ASSIGNMENT / name
            for s in ("correct", "one_wrong", "hidden_wrong", "loop", "cheat")}
    subs["correct"].parent.mkdir(parents=True)
    subs["correct"].write_bytes(source.read_bytes())
    _planted(source, *PLANTED[lesson], subs["one_wrong"])
    _planted(source, *HIDDEN_ONLY[lesson], subs["hidden_wrong"])
    _planted(source, *LOOP, subs["loop"])
    _cheat(source, subs["cheat"])
    _nbgrader(course, "autograde", ASSIGNMENT)
    _nbgrader(course, "generate_feedback", ASSIGNMENT)
    points = _points(lesson)
    nbgrader = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in subs:
            nb = gb.find_submission_notebook(lesson, ASSIGNMENT, student)
            nbgrader[student] = {g.name.removesuffix("-test"): g.score for g in nb.grades
                                 if g.name.removesuffix("-test") in points}
    rows = grading.grade(list(subs.values()), time_limit=600, jobs=2, progress=lambda line: None,
                         cell_time_limit=cell_limit)
    ours = {}
    for g in rows:
        if g.exercise in points:
            ours.setdefault(g.learner.split("/")[0], {})[g.exercise] = g.points
    print("\nnbgrader:", nbgrader, "\ncoursetools grade:", ours)
    assert ours == nbgrader
    total = sum(points.values())
    assert {s: sum(v.values()) for s, v in ours.items()} == {
        "correct": total, "one_wrong": total - points[PLANTED[lesson][0]],
        "hidden_wrong": total - points[HIDDEN_ONLY[lesson][0]], "loop": total - points["entropy_nats"],
        "cheat": total - points["stable_log_softmax"]}
    why = {g.learner.split("/")[0]: g.message for g in rows if g.exercise == "stable_log_softmax"}
    assert "kdtutor's own code under another name" in why["cheat"]
    feedback = (course / "feedback" / "correct" / ASSIGNMENT / f"{lesson}.html").read_text(encoding="utf-8")
    assert "_hidden_entropy_nats" not in feedback and "HIDDEN TESTS" not in feedback  # ClearHiddenTests
