"""Every exercise leads somewhere (issue 20): after its check, the lesson uses the learner's
function again (reads its name in a later code cell: a call, or a function handed to a loop), and
no code cell is longer than 25 lines.

DONE lists the lessons already held to this; add the others as they are reworked."""

import ast
import re
from pathlib import Path

import nbformat
import pytest

from coursetools import instructor
from coursetools.delivery import SETUP_ID

ROOT = Path(__file__).resolve().parent.parent
LESSONS = {p.name[:2]: p for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))}
DONE = {"00", "01", "02", "03", "04", "05", "06", "07", "08"}
MAX_LINES = 25


@pytest.mark.parametrize("lesson", sorted(DONE))
def test_every_exercise_function_is_used_again_after_its_check(lesson):
    nb = nbformat.read(LESSONS[lesson], as_version=4)
    exercises = instructor.exercises(nb)
    assert exercises, f"lesson {lesson} has no exercise"
    for ex in exercises:
        after = [c for c in nb.cells[[c.id for c in nb.cells].index(ex.check_cell) + 1:] if c.cell_type == "code"]
        users = [c.id for c in after if any(isinstance(n, ast.Name) and n.id == ex.function and isinstance(n.ctx, ast.Load)
                                            for n in ast.walk(ast.parse(c.source)))]
        assert users, f"lesson {lesson}: {ex.function} is never used after its check"


@pytest.mark.parametrize("lesson", sorted(DONE))
def test_no_code_cell_is_longer_than_25_lines(lesson):
    """Every cell the learner reads; the generated setup cell (hidden: tag remove-cell; it installs the course
    on Colab) is not lesson code."""
    nb = nbformat.read(LESSONS[lesson], as_version=4)
    long = {c.id: len(c.source.splitlines()) for c in nb.cells
            if c.cell_type == "code" and c.id != SETUP_ID and len(c.source.splitlines()) > MAX_LINES}
    assert not long, f"lesson {lesson}: code cells over {MAX_LINES} lines: {long}"


def test_every_lesson_title_reads_lesson_nn_dash():
    for lesson, path in LESSONS.items():
        first = nbformat.read(path, as_version=4).cells[0].source.splitlines()[0]
        assert re.match(rf"^# Lesson {lesson} — \S", first), f"{path.name}: {first!r}"
