"""The per-student summary of a grading run: one row per learner, for a learning management system.

``python -m coursetools grade subs/*.ipynb --out grades.csv`` writes the long CSV (one row per
exercise and written question, :mod:`coursetools.grading`) and, beside it, ``grades-summary.csv``
(or ``--summary FILE``)::

    learner,total,max_total,01_softmax_temperature (max 5),q01-1 (max 1),...
    alice,5,5,5,1,...
    bob,3,5,3,,...

``total`` is everything the learner earned (autograded exercises and the written answers a TA
graded) out of ``max_total`` (every exercise and question of the lessons they submitted); each
lesson's column is that lesson's points, written answers included; each written question has its
own column, empty until a TA grades it (and then counted in the lesson and the total). A lesson the
learner did not submit is an empty cell, not 0.

TA scores: the TA fills the ``points`` of the written questions' rows (status ``to grade by hand``)
in a copy of the long CSV; ``python -m coursetools summary THAT_COPY.csv --out grades-summary.csv``
writes the summary with them (no regrading), and ``grade --ta-scores THAT_COPY.csv`` adds them to the
summary of a new grading run (:func:`read_ta_scores`). A score must be a number from 0 to the question's ``max_points``; an empty one
is "not graded yet". Every text cell is escaped against spreadsheet formulas as in the long CSV.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

from coursetools.grading import FIELDS, WRITTEN_ID, Grade, _safe
from kdtutor.storage import atomic_write_bytes, move_aside


def summary_path(out: str | os.PathLike) -> Path:
    """``grades.csv`` → ``grades-summary.csv`` (beside it)."""
    out = Path(out)
    return out.with_name(f"{out.stem}-summary{out.suffix or '.csv'}")


def read_ta_scores(path: str | os.PathLike) -> dict[tuple[str, str, str], float]:
    """``{(learner, lesson, question): points}`` from a copy of the long CSV in which a TA filled the
    ``points`` of written questions' rows (keys as the CSV writes them: escaped). Rows of exercises,
    and written rows left empty, are ignored. ValueError naming the line: a file without the long
    CSV's columns, a score that is not a number from 0 to the row's ``max_points``, or a question
    scored twice."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = set(FIELDS[:6]) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"--ta-scores {path}: not a copy of the grades CSV (no column {', '.join(sorted(missing))})")
        scores = {}
        for line, row in enumerate(reader, start=2):
            if not WRITTEN_ID.match(row["exercise"] or "") or (row["points"] or "").strip() == "":
                continue
            key = (row["learner"], row["lesson"], row["exercise"])
            try:
                points, most = float(row["points"]), float(row["max_points"])
            except ValueError:
                raise ValueError(f"--ta-scores {path}, line {line}: points {row['points']!r} of {key[0]}'s "
                                 f"{key[2]} is not a number") from None
            if not (math.isfinite(points) and 0 <= points <= most):
                raise ValueError(f"--ta-scores {path}, line {line}: {key[0]}'s {key[2]} scored {row['points']}, "
                                 f"outside 0..{row['max_points']}")
            if key in scores:
                raise ValueError(f"--ta-scores {path}, line {line}: {key[0]}'s {key[2]} is scored twice")
            scores[key] = points
    return scores


def _number(x: float):
    return int(x) if float(x).is_integer() else round(float(x), 4)


def read_grades(path: str | os.PathLike) -> list[Grade]:
    """The rows of a long grades CSV (as :func:`coursetools.grading.to_csv` wrote them; texts stay
    escaped); ValueError naming the line if it is not one."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != FIELDS:
            raise ValueError(f"{path}: not a grades CSV (its columns are {', '.join(FIELDS)})")
        out = []
        for line, row in enumerate(reader, start=2):
            try:
                points, most = float(row["points"] or 0), float(row["max_points"])
            except ValueError:
                raise ValueError(f"{path}, line {line}: points or max_points is not a number") from None
            out.append(Grade(row["learner"], row["lesson"], row["exercise"], row["status"], row["message"],
                             _number(points), _number(most), row["sandbox"]))
    return out


def summary_table(grades: list[Grade], scores: dict[tuple[str, str, str], float] | None = None) -> list[list]:
    """The summary as rows (the header first): see the module docstring. ``scores``: TA scores
    (:func:`read_ta_scores`); a written answer without one is an empty cell and counts 0."""
    scores = scores or {}
    most: dict[tuple[str, str], float] = {}  # (learner, lesson) → that lesson's points
    questions: dict[tuple[str, str], float] = {}  # (lesson, question) → its points
    for g in grades:
        most[(g.learner, g.lesson)] = most.get((g.learner, g.lesson), 0) + g.max_points
        if WRITTEN_ID.match(g.exercise):
            questions[(g.lesson, g.exercise)] = max(questions.get((g.lesson, g.exercise), 0), g.max_points)
    lessons: dict[str, float] = {}  # in the order they first appear
    for (_, lesson), m in most.items():
        lessons[lesson] = max(lessons.get(lesson, 0), m)
    rows = [["learner", "total", "max_total", *(f"{lesson} (max {_number(m)})" for lesson, m in lessons.items()),
             *(f"{q} (max {_number(m)})" for (_, q), m in questions.items())]]
    for learner in dict.fromkeys(g.learner for g in grades):
        by_lesson, written = {}, {}
        for g in (g for g in grades if g.learner == learner):
            earned = g.points
            if WRITTEN_ID.match(g.exercise):
                written[(g.lesson, g.exercise)] = scores.get((_safe(g.learner), _safe(g.lesson), _safe(g.exercise)))
                earned = written[(g.lesson, g.exercise)] or 0
            by_lesson[g.lesson] = by_lesson.get(g.lesson, 0) + earned
        rows.append([learner, _number(sum(by_lesson.values())),
                     _number(sum(m for (who, _), m in most.items() if who == learner)),
                     *("" if lesson not in by_lesson else _number(by_lesson[lesson]) for lesson in lessons),
                     *("" if written.get(q) is None else _number(written[q]) for q in questions)])
    return rows


def to_summary_csv(grades: list[Grade], scores=None) -> str:
    """:func:`summary_table` as CSV, every text cell passed through the long CSV's formula escape."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for row in summary_table(grades, scores):
        writer.writerow([_safe(c) if isinstance(c, str) else c for c in row])
    return buf.getvalue()


def write_summary(grades: list[Grade], path: str | os.PathLike, scores=None, force: bool = False) -> Path:
    """Write the summary CSV atomically; a file that appeared at ``path`` meanwhile (without
    ``force``) is kept as ``<path>.old``."""
    path = Path(path)
    if path.exists() and not force:
        print(f"{path} appeared while grading: kept as {move_aside(path)}")
    return atomic_write_bytes(path, to_summary_csv(grades, scores).encode("utf-8"))
