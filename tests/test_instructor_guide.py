"""instructor/GUIDE.md and instructor/exam_questions.md: the guide covers every lesson (objectives, timings,
the misconceptions of every exercise's check, discussion prompts), its timing table is what the estimator
and pace.json say, both timetables add up, every exam question has a model answer and marking points drawn
from a real section of its lesson, and a student release ships nothing of instructor/."""

import math
import re
from pathlib import Path

import nbformat
import pytest

from coursetools.course import notebooks
from coursetools.instructor import exercises, written_questions
from coursetools.pace import load_pace, reading_minutes
from coursetools.release import release
from kdtutor.checks.core import points

ROOT = Path(__file__).resolve().parent.parent
GUIDE = (ROOT / "instructor" / "GUIDE.md").read_text(encoding="utf-8")
EXAM = (ROOT / "instructor" / "exam_questions.md").read_text(encoding="utf-8")
LESSONS = {p.name[:2]: nbformat.read(p, as_version=4) for p in notebooks()}
SUBSECTIONS = ("Objectives", "Timings", "Common misconceptions", "Discussion prompts")
# The guide's estimates (its "Timings" section states them): minutes per exercise point, per prompt, per question.
EXERCISE_MINUTES_PER_POINT, PROMPT_MINUTES, WRITTEN_MINUTES = 4, 1, 10
PROMPT = "**Predict before you run:**"


def _section(text: str, heading: str, level: int = 2) -> str:
    m = re.search(rf"^{'#' * level} {re.escape(heading)}.*?\n(.*?)(?=^#{{1,{level}}} |\Z)", text, re.S | re.M)
    assert m, f"no section {'#' * level} {heading}"
    return m.group(1)


def _main_line(nb):
    """``nb`` without its ``## Optional: …`` sections."""
    keep, optional = [], False
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("## "):
            optional = cell.source.startswith("## Optional")
        if not optional:
            keep.append(cell)
    main = nbformat.from_dict(nb)
    main.cells = keep
    return main


def expected_row(num: str, nb, pace: dict) -> dict:
    """The guide's timing row of lesson ``num``, recomputed."""
    checks = exercises(nb)
    pts = sum(points(e.check) for e in checks)
    prompts = sum(PROMPT in c.source for c in nb.cells if c.cell_type == "markdown")
    seconds = next((v for k, v in pace["lessons"].items() if k.startswith(num)), None)  # None: not measured yet
    questions = len(written_questions(nb))
    day = (reading_minutes(nb) + EXERCISE_MINUTES_PER_POINT * pts + PROMPT_MINUTES * prompts
           + math.ceil((seconds or 0) / 60) + WRITTEN_MINUTES * questions)
    return {"lesson": num, "reading": reading_minutes(nb), "main": reading_minutes(_main_line(nb)),
            "exercises": f"{len(checks)} ({pts})", "exercise_min": EXERCISE_MINUTES_PER_POINT * pts,
            "prompts": prompts, "compute_s": "not measured" if seconds is None else round(seconds),
            "written": questions, "day": day}


def guide_rows() -> dict:
    table = _section(GUIDE, "Timings: what is measured and what is estimated")
    out = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if re.fullmatch(r"\d\d", cells[0]):
            keys = ("lesson", "reading", "main", "exercises", "exercise_min", "prompts", "compute_s", "written", "day")
            out[cells[0]] = {k: (v if k in ("lesson", "exercises") or not v.isdigit() else int(v))
                             for k, v in zip(keys, cells)}
    return out


def test_the_guide_covers_every_lesson_with_its_four_parts():
    for num, nb in LESSONS.items():
        title = nb.cells[0].source.splitlines()[0]
        assert title.startswith(f"# Lesson {num} — ")
        lesson = _section(GUIDE, f"Lesson {num} — ")
        for part in SUBSECTIONS:
            body = _section(lesson, part, level=3)
            assert body.count("\n- ") + body.startswith("- ") >= 1 or len(body.split()) >= 8, (num, part)
        assert len(_section(lesson, "Discussion prompts", 3).split("\n- ")) >= 2, num


def test_every_exercise_check_has_its_misconceptions_in_the_guide():
    for num, nb in LESSONS.items():
        mistakes = _section(_section(GUIDE, f"Lesson {num} — "), "Common misconceptions", level=3)
        missing = [e.check for e in exercises(nb) if f"`{e.check}`" not in mistakes]
        assert not missing, f"lesson {num}: the guide's misconceptions do not name {missing}"


def test_the_timing_table_is_what_the_estimator_and_pace_json_say():
    pace = load_pace()["runs"]["cpu"]
    want = {num: expected_row(num, nb, pace) for num, nb in LESSONS.items()}
    rows = "\n".join("| " + " | ".join(str(v) for v in r.values()) + " |" for r in want.values())
    assert guide_rows() == want, f"instructor/GUIDE.md's timing table is stale; the rows now read:\n{rows}"


def _minutes(span: str) -> int:
    (h0, m0), (h1, m1) = (map(int, t.split(":")) for t in span.split("–"))
    return (h1 * 60 + m1) - (h0 * 60 + m0)


def test_the_workshop_timetable_adds_up():
    """Three hours, no gap; each lesson's slot holds its main-line reading, exercises, prompts and live
    compute (1 min, 2 for lesson 04; lesson 00 is read beforehand: its exercise and the setup check)."""
    table = _section(GUIDE, "The 3-hour workshop, adding up", level=3)
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()
            if re.match(r"\| \d:\d\d–\d:\d\d", line)]
    assert rows[0][0].startswith("0:00") and rows[-1][0].endswith("3:00")
    for before, after in zip(rows, rows[1:]):
        assert before[0].split("–")[1] == after[0].split("–")[0]
    assert sum(_minutes(r[0]) for r in rows) == 180
    for span, lesson, _ in rows:
        if not re.fullmatch(r"\d\d", lesson):
            continue
        nb = LESSONS[lesson]
        pts = sum(points(e.check) for e in exercises(nb))
        prompts = sum(PROMPT in c.source for c in nb.cells if c.cell_type == "markdown")
        need = (EXERCISE_MINUTES_PER_POINT * pts + 1 if lesson == "00" else
                reading_minutes(_main_line(nb)) + EXERCISE_MINUTES_PER_POINT * pts + prompts
                + (2 if lesson == "04" else 1))
        assert _minutes(span) >= need, f"lesson {lesson} needs {need} min, gets {_minutes(span)}"


def test_the_module_timetable_holds_each_lessons_work():
    table = _section(GUIDE, "The 2-week module, adding up", level=3)
    rows = guide_rows()
    seen = []
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 3 and re.match(r"(\d\d)(, \d\d)*( |$)", cells[1]):
            lessons = re.findall(r"\b(\d\d)\b", cells[1].split("(")[0])
            total = int(re.findall(r"\d+", cells[2].split("(")[0])[-1])  # "17 + 49 = 66", "54 (3 min …)"
            assert total == sum(rows[n]["day"] for n in lessons), line
            seen += lessons
    assert sorted(seen) == sorted(LESSONS)
    assert "homework 1" in table and "homework 2" in table


# ------------------------------------------------------------------ the exam question bank
def exam_questions(text: str = EXAM) -> dict:
    blocks = re.split(r"^### (Q\d\d\.\d+)\n", text, flags=re.M)
    return dict(zip(blocks[1::2], blocks[2::2]))


def lesson_text(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown").lower()


def check_answers(text: str) -> None:
    """AssertionError unless every lesson has ≥ 3 questions, each with its question, model answer and marking points."""
    questions = exam_questions(text)
    for num in LESSONS:
        assert sum(q.startswith(f"Q{num}.") for q in questions) >= 3, num
    for qid, body in questions.items():
        answer = re.search(r"\*\*Model answer\.\*\*(.*?)(?=\*\*Marking points|\Z)", body, re.S)
        assert answer and len(answer.group(1).split()) >= 15, f"{qid}: no model answer"
        marking = re.search(r"\*\*Marking points \((\d+)\)\.\*\*\n(.*)", body, re.S)
        assert marking, f"{qid}: no marking points"
        bullets = re.findall(r"^- ", marking.group(2), re.M)
        assert len(bullets) >= 2 and int(marking.group(1)) >= len(bullets) - 1, qid
        assert re.search(r"\*\*Question\.\*\*\s+\S", body), qid


def test_every_question_draws_on_a_real_section_and_the_terms_of_its_lesson():
    for qid, body in exam_questions().items():
        num = qid[1:3]
        source = re.search(r'^\*Source:\* (\d\d), "(## [^"]+)"', body, re.M)
        assert source and source.group(1) == num, f"{qid}: no source line for lesson {num}"
        headings = [c.source.splitlines()[0] for c in LESSONS[num].cells if c.cell_type == "markdown"
                    and c.source.startswith("## ")]
        assert source.group(2) in headings, f"{qid}: lesson {num} has no section {source.group(2)!r}"
        terms = re.search(r"^\*Key terms:\* (.+)$", body, re.M).group(1).split(", ")
        missing = [t for t in terms if t.lower() not in lesson_text(LESSONS[num])]
        assert not missing, f"{qid}: lesson {num} never mentions {missing}"


def test_every_lesson_has_three_questions_each_with_a_model_answer_and_marking_points():
    check_answers(EXAM)


def test_the_check_catches_a_question_without_an_answer_or_marking_points():
    with pytest.raises(AssertionError, match="no model answer"):
        check_answers(EXAM.replace("**Model answer.**", "**Answer.**", 1))
    with pytest.raises(AssertionError, match="no marking points"):
        check_answers(EXAM.replace("**Marking points (3).**", "", 1))


# ------------------------------------------------------------------ the release
def test_a_student_release_ships_nothing_of_instructor(tmp_path):
    released = release(tmp_path / "course")
    assert not (released / "instructor").exists()
    secret = {p.read_bytes() for p in (ROOT / "instructor").rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert len(secret) >= 10
    shipped = [p for p in released.rglob("*") if p.is_file()]
    assert not [p for p in shipped if p.read_bytes() in secret]
    text = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in shipped)
    assert "**Model answer.**" not in text and "**Marking points (" not in text
