"""Think before running, write to be graded (issue 20): every lesson 01-07 has at least two
predict-then-run prompts, each followed by the code cell that answers it, and at least one
optional written question with its answer cell; the instructor copies make each answer an
nbgrader manually graded cell.

Lessons whose prompts and questions are still being written are listed in PENDING (one place):
empty it as they arrive.
"""

import copy
from pathlib import Path

import nbformat
import pytest

from coursetools import instructor

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "**Predict before you run:**"
LESSONS = {p.name[:2]: p for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))}
PENDING: set = set()  # lessons without their prompts and written questions yet


def _read(path):
    return nbformat.read(path, as_version=4)


def test_pending_names_only_lessons_of_the_course():
    assert PENDING <= set(LESSONS) - {"00", "01", "02"}


@pytest.mark.parametrize("lesson", [n for n in sorted(LESSONS) if n != "00"])
def test_every_lesson_has_two_predict_then_run_prompts_and_a_written_question(lesson):
    if lesson in PENDING:
        pytest.skip(f"lesson {lesson} is listed in PENDING")
    nb = _read(LESSONS[lesson])
    prompts = [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and PROMPT in c.source]
    assert len(prompts) >= 2, f"lesson {lesson}: {len(prompts)} predict-then-run prompt(s), at least 2 wanted"
    for i in prompts:
        after = nb.cells[i + 1] if i + 1 < len(nb.cells) else None
        assert after is not None and after.cell_type == "code" and after.source.strip(), (
            f"lesson {lesson}, cell {nb.cells[i].id}: a prompt is followed by the code cell that answers it")
    questions = instructor.written_questions(nb, LESSONS[lesson])  # refuses a malformed one
    assert questions, f"lesson {lesson} has no written question"
    assert [q.qid for q in questions] == [f"q{lesson}-{n}" for n in range(1, len(questions) + 1)]
    answers = {c.id: c for c in nb.cells}
    assert all(answers[q.answer_cell].source == instructor.ANSWER_PLACEHOLDER for q in questions)


@pytest.mark.parametrize("lesson", sorted(set(LESSONS) - {"00"}))  # lesson 00 (setup) asks none
def test_the_instructor_copy_makes_each_written_answer_a_manually_graded_nbgrader_cell(lesson):
    questions = instructor.written_questions(_read(LESSONS[lesson]), LESSONS[lesson])
    assert questions, f"lesson {lesson} has no written question"
    copy_ = {c.id: c for c in _read(ROOT / "instructor" / LESSONS[lesson].name).cells}
    for q in questions:
        assert copy_[q.answer_cell].metadata["nbgrader"] == {
            "grade": True, "grade_id": q.qid, "locked": False, "points": q.points, "schema_version": 3,
            "solution": True, "task": False}
        question = copy_[q.question_cell].metadata["nbgrader"]
        assert question["locked"] and not question["solution"] and not question["grade"]


def _tiny(question_meta=None, text=None, answer_meta=None, extra=()):
    """A lesson-01-like notebook with one written question (changed by the arguments)."""
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3"}})
    qm = {"kdtutor": {"written": "q01-1", "points": 2}} if question_meta is None else question_meta
    nb.cells = [nbformat.v4.new_markdown_cell("intro", id="intro"),
                nbformat.v4.new_markdown_cell(text or instructor.question_heading("q01-1", 2) + " Why?",
                                              id="q", metadata=qm),
                nbformat.v4.new_markdown_cell(instructor.ANSWER_PLACEHOLDER, id="a",
                                              metadata={"kdtutor": {"answer_to": "q01-1"}} if answer_meta is None
                                              else answer_meta), *extra]
    return nb


def test_a_written_question_becomes_a_manually_graded_answer_and_a_read_only_question():
    out = instructor.instructor_version(_tiny(), "01_x.ipynb")
    meta = {c.id: c.metadata["nbgrader"] for c in out.cells}
    assert meta["a"] == {"grade": True, "grade_id": "q01-1", "locked": False, "points": 2, "schema_version": 3,
                         "solution": True, "task": False}
    assert meta["q"]["locked"] and not meta["q"]["grade"] and meta["intro"]["locked"]
    assert instructor.written_questions(_tiny(), "01_x.ipynb") == [instructor.WrittenQuestion("q01-1", 2, "q", "a")]


@pytest.mark.parametrize("change,why", [
    ({"question_meta": {"kdtutor": {"written": "Q1", "points": 2}}}, "id is q<LL>-<n>"),
    ({"question_meta": {"kdtutor": {"written": "q02-1", "points": 2}}}, "belongs to lesson 02"),
    ({"question_meta": {"kdtutor": {"written": "q01-1", "points": 0}}}, "points must be a whole number"),
    ({"question_meta": {"kdtutor": {"written": "q01-1", "points": True}}}, "points must be a whole number"),
    ({"text": "**Written question q01-1 (optional, 3 points).** Why?"}, "a markdown cell starting with"),
    ({"answer_meta": {}}, "the next cell must be a markdown answer cell"),
    ({"extra": [nbformat.v4.new_markdown_cell(instructor.question_heading("q01-1", 2), id="q2",
                                              metadata={"kdtutor": {"written": "q01-1", "points": 2}})]},
     "appears twice"),
])
def test_a_malformed_written_question_is_refused_with_what_is_wrong(change, why):
    with pytest.raises(ValueError, match=why):
        instructor.written_questions(_tiny(**change), "01_x.ipynb")
    with pytest.raises(ValueError, match=why):
        instructor.instructor_version(_tiny(**change), "01_x.ipynb")


def test_a_question_cell_whose_id_is_the_question_id_is_refused_before_nbgrader_sees_two_grade_ids():
    nb = _tiny()
    nb.cells[1]["id"] = "q01-1"
    with pytest.raises(ValueError, match="cell id must differ from 'q01-1'"):
        instructor.written_questions(nb, "01_x.ipynb")


def test_a_question_at_the_end_of_the_notebook_without_its_answer_cell_is_refused():
    nb = _tiny()
    nb.cells = copy.deepcopy(nb.cells[:2])
    with pytest.raises(ValueError, match="the next cell must be"):
        instructor.written_questions(nb)
