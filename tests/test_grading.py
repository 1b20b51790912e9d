"""The autograder: real notebooks of lesson 01 run headless, one kernel each, and are graded."""

import csv
import io
import os
import shutil
from pathlib import Path

import nbformat
import pytest

from kdtutor.classroom import grading, instructor

ROOT = Path(__file__).resolve().parent.parent
LESSON = "01_softmax_temperature"  # three cheap exercises, no data
STUDENT = ROOT / "notebooks" / f"{LESSON}.ipynb"
TEACHER = ROOT / "instructor" / f"{LESSON}.ipynb"
EXERCISES = [ex.check for ex in instructor.exercises(nbformat.read(STUDENT, as_version=4))]
ARTEFACTS = Path(os.environ.get("KDTUTOR_TEST_ARTEFACTS", ROOT / "results" / "test-artefacts"))


def _with_cell(path, after_check: str, source: str, out: Path) -> Path:
    """A copy of ``path`` with a new code cell right after the check cell of ``after_check``."""
    nb = nbformat.read(path, as_version=4)
    ex = next(e for e in instructor.exercises(nb) if e.check == after_check)
    i = next(i for i, c in enumerate(nb.cells) if c.id == ex.check_cell)
    nb.cells.insert(i + 1, nbformat.v4.new_code_cell(source, id="planted"))
    nbformat.write(nb, out)
    return out


def _wrong_entropy(out: Path) -> Path:
    """The instructor's notebook with one planted wrong answer: entropy without its minus sign."""
    nb = nbformat.read(TEACHER, as_version=4)
    ex = next(e for e in instructor.exercises(nb) if e.check == "entropy_nats")
    cell = next(c for c in nb.cells if c.id == ex.stub_cell)
    assert "return -p_log_p.sum(dim=-1)" in cell.source
    cell.source = cell.source.replace("return -p_log_p.sum(dim=-1)", "return p_log_p.sum(dim=-1)")
    nbformat.write(nb, out)
    return out


def _by_learner(grades):
    out = {}
    for g in grades:
        out.setdefault(g.learner, {})[g.exercise] = (g.status, g.message)
    return out


@pytest.mark.slow
def test_unsolved_instructor_and_one_wrong_answer_grade_0_N_and_N_of_N_and_N_minus_1(tmp_path):
    assert len(EXERCISES) == 3
    subs = [shutil.copy(STUDENT, tmp_path / "unsolved.ipynb"), shutil.copy(TEACHER, tmp_path / "instructor.ipynb"),
            _wrong_entropy(tmp_path / "one_wrong.ipynb")]
    grades = grading.grade(subs, time_limit=300, progress=lambda line: None)
    rows = _by_learner(grades)
    assert {g.lesson for g in grades} == {LESSON}
    assert [g.exercise for g in grades if g.learner == "unsolved"] == EXERCISES
    assert {s for s, _ in rows["unsolved"].values()} == {"not attempted"}
    assert {s for s, _ in rows["instructor"].values()} == {"passed"}
    wrong = rows["one_wrong"]
    assert [s for s, _ in wrong.values()] == ["passed", "failed", "passed"]
    assert "✗ entropy_nats" in wrong["entropy_nats"][1]  # the check's own message
    text = grading.to_csv(grades)
    table = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == 9 and list(table[0]) == list(grading.FIELDS)
    assert all("\n" not in r["message"] for r in table)
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    grading.write_csv(grades, ARTEFACTS / "grades_lesson01.csv")


@pytest.mark.slow
def test_an_endless_loop_times_out_and_costs_only_its_own_submission(tmp_path):
    loop = _with_cell(TEACHER, "stable_log_softmax", "while True:\n    pass", tmp_path / "loops.ipynb")
    fine = shutil.copy(TEACHER, tmp_path / "fine.ipynb")
    grades = grading.grade([loop, fine], time_limit=45, progress=lambda line: None)
    rows = _by_learner(grades)
    assert rows["loops"]["stable_log_softmax"][0] == "passed"  # graded before the loop
    for name in ("entropy_nats", "temperature_for_entropy"):
        status, message = rows["loops"][name]
        assert status == "error" and "time limit of 45 s" in message
    assert {s for s, _ in rows["fine"].values()} == {"passed"}


def test_a_crash_before_a_check_is_an_error_with_the_first_error_and_later_checks_still_count():
    expected = instructor.exercises(nbformat.read(STUDENT, as_version=4))
    records = [{"check": "stable_log_softmax", "function": "stable_log_softmax", "passed": False, "message": "✗ a"},
               {"check": "stable_log_softmax", "function": "stable_log_softmax", "passed": True, "message": "✓ b"},
               {"check": "temperature_for_entropy", "function": "my_own_name", "passed": True, "message": "✓ c"}]
    report = {"timed_out": False, "died": None, "errors": ["cell cell-016: SyntaxError: invalid syntax"]}
    grades = grading.grade_records("x", LESSON, expected, records, report, 60)
    assert [(g.exercise, g.status) for g in grades] == [
        ("stable_log_softmax", "passed"),  # the last verdict counts
        ("entropy_nats", "error"),
        ("temperature_for_entropy", "error")]  # a check run on another function is not the exercise's
    assert "SyntaxError" in grades[1].message


def test_an_unknown_or_unreadable_submission_is_one_error_row(tmp_path):
    (tmp_path / "notes.ipynb").write_text("not json")
    nb = nbformat.v4.new_notebook()
    nbformat.write(nb, tmp_path / "mystery.ipynb")
    grades = grading.grade([tmp_path / "notes.ipynb", tmp_path / "mystery.ipynb"], progress=lambda line: None)
    assert [(g.learner, g.status) for g in grades] == [("notes", "error"), ("mystery", "error")]
    assert "cannot tell which lesson" in grades[1].message
    with pytest.raises(ValueError):
        grading.grade([], time_limit=0)


def test_the_lesson_is_read_from_metadata_then_from_the_file_name():
    nb = nbformat.v4.new_notebook(metadata={"kdtutor": {"lesson": LESSON}})
    assert grading.lesson_of(nb, Path("alice.ipynb")) == LESSON
    assert grading.lesson_of(nbformat.v4.new_notebook(), Path(f"{LESSON}-bob.ipynb")) == LESSON
