"""Think before running, write to be graded (issue 20): every lesson 01-07 has at least two
predict-then-run prompts, each followed by the code cell that answers it, and at least one
written question with its answer cell; the instructor copies make each answer an nbgrader
manually graded cell holding the question's model answer and rubric (issue 33), which the
student notebooks never carry; the course words the questions as optional or required.

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


TINY_MODEL = {"q01-1": instructor.ModelAnswer("q01-1", "Because $T$ divides the logits.",
                                              ((1, "names the division"), (1, "says why")))}


def test_a_written_question_becomes_a_manually_graded_answer_and_a_read_only_question():
    out = instructor.instructor_version(_tiny(), "01_x.ipynb", TINY_MODEL)
    meta = {c.id: c.metadata["nbgrader"] for c in out.cells}
    assert {c.id: c.source for c in out.cells}["a"] == (
        "**Model answer** (instructor copy: nbgrader's release shows learners an empty answer cell).\n\n"
        "Because $T$ divides the logits.\n\n**Rubric (2 points).**\n"
        "- **1 point:** names the division\n- **1 point:** says why")
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


# ---------------------------------------------------------------- model answers and rubrics (issue 33)
def _all_questions():
    return {q.qid: q for path in LESSONS.values() for q in instructor.written_questions(_read(path), path)}


def test_every_written_question_has_a_model_answer_and_a_rubric_worth_its_points_and_no_answer_is_stray():
    questions, models = _all_questions(), instructor.written_answers()
    assert set(questions) == {f"q{n:02d}-1" for n in range(1, 9)}
    assert set(models) == set(questions)  # no question without an answer, no answer without its question
    for qid, q in questions.items():
        model = models[qid]
        assert sum(points for points, _ in model.rubric) == q.points, qid
        assert len(model.rubric) >= 2 and all(len(text) > 30 for _, text in model.rubric), qid
        assert len(model.answer.split()) >= 100, f"{qid}: a model answer, not a note"


@pytest.mark.parametrize("lesson", sorted(set(LESSONS) - {"00"}))
def test_the_instructor_copy_shows_the_model_answer_and_rubric_and_the_student_copy_neither(lesson):
    path, models = LESSONS[lesson], instructor.written_answers()
    student = {c.id: c for c in _read(path).cells}
    teacher = {c.id: c for c in _read(ROOT / "instructor" / path.name).cells}
    student_text = path.read_text(encoding="utf-8")
    for q in instructor.written_questions(_read(path), path):
        shown = teacher[q.answer_cell].source
        assert shown == instructor.model_answer_source(q, models[q.qid])
        assert models[q.qid].answer in shown and f"**Rubric ({q.points} points).**" in shown
        assert all(text in shown for _, text in models[q.qid].rubric)
        assert student[q.answer_cell].source == instructor.ANSWER_PLACEHOLDER
        sentences = [s for s in models[q.qid].answer.replace("\n", " ").split(". ") if len(s) > 40]
        assert sentences and not [s for s in sentences if s in student_text], q.qid


def test_an_answer_to_a_question_no_lesson_asks_is_refused_before_anything_is_written(monkeypatch):
    stray = instructor.ModelAnswer("q09-1", "An answer.", ((2, "a marking point"),))
    real = instructor.written_answers()
    monkeypatch.setattr(instructor, "written_answers", lambda: {**real, "q09-1": stray})
    with pytest.raises(ValueError, match="model answers for questions no lesson asks: q09-1"):
        instructor.write_instructor_copies(check=True)


def test_a_missing_model_answer_or_a_rubric_of_other_points_is_refused():
    with pytest.raises(ValueError, match="no model answer and rubric for q01-1"):
        instructor.instructor_version(_tiny(), "01_x.ipynb", {})
    three = {"q01-1": instructor.ModelAnswer("q01-1", "x", ((2, "a"), (1, "b")))}
    with pytest.raises(ValueError, match="the rubric of q01-1 gives 3 point"):
        instructor.instructor_version(_tiny(), "01_x.ipynb", three)


GOOD = "## q01-1\n\n**Model answer.** An answer.\n\nIts second paragraph.\n\n**Rubric.**\n- 1 point: one\n" \
       "  thing, continued.\n- 1 point: another.\n"


def test_the_answers_file_is_read_section_by_section(tmp_path):
    (tmp_path / "w.md").write_text("# Title\n\nAn introduction.\n\n" + GOOD)
    assert instructor.written_answers(tmp_path / "w.md") == {"q01-1": instructor.ModelAnswer(
        "q01-1", "An answer.\n\nIts second paragraph.", ((1, "one thing, continued."), (1, "another.")))}


@pytest.mark.parametrize("text,why", [
    (GOOD.replace("## q01-1", "## Q1"), "a section heading is a question id"),
    (GOOD + GOOD, "appears twice"),
    (GOOD.replace("**Model answer.** ", ""), "a '\\*\\*Model answer"),
    (GOOD.replace("**Rubric.**", "Rubric:"), "a '\\*\\*Model answer"),
    (GOOD.replace("- 1 point: another.", "- one point: another."), "a rubric line is"),
    ("## q01-1\n\n**Model answer.** An answer.\n\n**Rubric.**\n\n", "the rubric has no marking point"),
    (GOOD.replace("An answer.", "Write ### BEGIN SOLUTION here."), "take its 'BEGIN/END SOLUTION'"),
])
def test_a_malformed_answers_file_is_refused_with_what_is_wrong(tmp_path, text, why):
    (tmp_path / "w.md").write_text(text)
    with pytest.raises(ValueError, match=why):
        instructor.written_answers(tmp_path / "w.md")


# ---------------------------------------------------------------- optional or required: the course's choice
def test_the_course_words_its_written_questions_as_required_or_optional_and_generate_follows(tmp_path):
    from coursetools import delivery

    cfg = {**delivery.config(), "written_questions": "required"}
    lesson01 = _read(LESSONS["01"])
    required = instructor.student_version(lesson01, LESSONS["01"], cfg)
    q = instructor.written_questions(required, LESSONS["01"])[0]  # the other wording is accepted
    question = next(c for c in required.cells if c.id == q.question_cell)
    assert question.source.startswith("**Written question q01-1 (required, graded by hand, 2 points).**")
    assert question.source.endswith(next(c for c in lesson01.cells if c.id == q.question_cell).source[
        len(instructor.question_heading("q01-1", 2)):])  # only the heading changed
    assert instructor.instructor_version(required, LESSONS["01"]).cells  # nbgrader's source of it too
    welcome = instructor.student_version(_read(LESSONS["00"]), LESSONS["00"], cfg)
    text = "\n".join(c.source for c in welcome.cells if c.cell_type == "markdown")
    assert "**Written questions** (required, graded by hand)" in text and "(optional, graded by hand)" not in text
    for path, nb in ((LESSONS["01"], required), (LESSONS["00"], welcome)):  # and back: the lessons as they are
        back = instructor.student_version(nb, path, {**cfg, "written_questions": "optional"})
        assert [c.source for c in back.cells] == [c.source for c in _read(path).cells]
    (tmp_path / "d.json").write_text('{"repository": "a/b", "branch": "main", "written_questions": "required"}')
    assert delivery.config(tmp_path / "d.json")["written_questions"] == "required"
    with pytest.raises(ValueError, match="a written question is optional or required"):
        instructor.set_written_wording(_read(LESSONS["01"]), "compulsory")


def test_the_course_copies_use_the_configured_wording():
    from coursetools import delivery

    wording = delivery.config()["written_questions"]
    for path in LESSONS.values():
        nb = _read(path)
        for q in instructor.written_questions(nb, path):
            cell = next(c for c in nb.cells if c.id == q.question_cell)
            assert cell.source.startswith(instructor.question_heading(q.qid, q.points, wording)), q.qid
