"""The autograder: real notebooks of lesson 01 run headless, one kernel each, and are graded
outside them; the CSV is never lost or confused (see also test_grading_hostile.py)."""

import csv
import io
import json
import os
import shutil
from pathlib import Path

import nbclient
import nbformat
import pytest

from coursetools.__main__ import main
from kdtutor.checks import core as checks_core
from coursetools import grading, instructor

ROOT = Path(__file__).resolve().parent.parent
LESSON = "01_softmax_temperature"  # three cheap exercises, no data
STUDENT = ROOT / "notebooks" / f"{LESSON}.ipynb"
TEACHER = ROOT / "instructor" / f"{LESSON}.ipynb"
EXERCISES = [ex.check for ex in instructor.exercises(nbformat.read(STUDENT, as_version=4))]
POINTS = {name: checks_core.points(name) for name in EXERCISES}
QUESTIONS = instructor.written_questions(nbformat.read(STUDENT, as_version=4), STUDENT)
ANSWER = "At a high T the ratios are exp(gap / T):\n\nthe ranking stays, and T² keeps the signal."
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
    next(c for c in nb.cells if c.id == QUESTIONS[0].answer_cell).source = ANSWER  # and answers the question
    nbformat.write(nb, out)
    return out


def _by_learner(grades):
    """``{learner: {exercise: (status, message)}}`` of the autograded rows (not the written answers)."""
    out = {}
    for g in grades:
        if g.exercise not in EXERCISES:
            continue
        out.setdefault(g.learner, {})[g.exercise] = (g.status, g.message)
    return out


@pytest.mark.slow
def test_unsolved_instructor_and_one_wrong_answer_grade_0_N_and_N_of_N_and_N_minus_1(tmp_path):
    assert len(EXERCISES) == 3
    subs = [shutil.copy(STUDENT, tmp_path / "unsolved.ipynb"), shutil.copy(TEACHER, tmp_path / "instructor.ipynb"),
            _wrong_entropy(tmp_path / "one_wrong.ipynb")]
    lines = []
    everything = grading.grade(subs, time_limit=300, jobs=2, progress=lines.append)
    written = [g for g in everything if g.exercise not in EXERCISES]
    grades = [g for g in everything if g.exercise in EXERCISES]
    rows = _by_learner(grades)
    assert {g.lesson for g in grades} == {LESSON}
    n = len(EXERCISES) + len(QUESTIONS)  # per submission: the exercises, then the written questions
    assert [g.learner for g in everything] == ["unsolved"] * n + ["instructor"] * n + ["one_wrong"] * n  # input order
    assert [g.exercise for g in everything if g.learner == "unsolved"] == EXERCISES + [q.qid for q in QUESTIONS]
    assert [(g.learner, g.exercise, g.status, g.points, g.max_points) for g in written] == [
        (who, q.qid, status, 0, q.points) for who, status in (("unsolved", "not attempted"),
                                                               ("instructor", grading.BY_HAND),  # its model answer
                                                               ("one_wrong", grading.BY_HAND)) for q in QUESTIONS]
    assert written[-1].message == ANSWER
    assert any(line.startswith("one_wrong") and "1 written answer to grade by hand" in line for line in lines)
    assert {s for s, _ in rows["unsolved"].values()} == {"not attempted"}
    assert {s for s, _ in rows["instructor"].values()} == {"passed"}
    wrong = rows["one_wrong"]
    assert [s for s, _ in wrong.values()] == ["passed", "failed", "passed"]
    assert "✗ entropy_nats" in wrong["entropy_nats"][1]  # the check's own message
    points = {name: sum(g.points for g in grades if g.learner == name) for name in rows}
    full = sum(POINTS.values())  # 4: temperature_for_entropy is worth 2
    assert points == {"unsolved": 0, "instructor": full, "one_wrong": full - POINTS["entropy_nats"]}
    assert {(g.exercise, g.max_points) for g in grades} == set(POINTS.items())
    assert lines[0] == grading.find_sandbox().banner()  # the sandbox (or its absence) is said first
    text = grading.to_csv(everything)
    table = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == 3 * n and list(table[0]) == list(grading.FIELDS)
    assert all("\n" not in r["message"] for r in table)
    assert {r["sandbox"] for r in table} == {grading.find_sandbox().kind}
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    grading.write_csv(everything, ARTEFACTS / "grades_lesson01.csv")


@pytest.mark.slow
def test_an_endless_loop_times_out_and_costs_only_its_own_submission_even_without_a_sandbox(tmp_path):
    loop = _with_cell(TEACHER, "stable_log_softmax", "while True:\n    pass", tmp_path / "loops.ipynb")
    fine = shutil.copy(TEACHER, tmp_path / "fine.ipynb")
    lines = []
    none = grading.Sandbox("none", "switched off by this test")
    grades = grading.grade([loop, fine], time_limit=45, jobs=2, progress=lines.append, sandbox=none)
    rows = _by_learner(grades)
    status, message = rows["loops"]["stable_log_softmax"]
    assert status == "passed", message  # graded: its check cell ran before the loop
    for name in ("entropy_nats", "temperature_for_entropy"):
        status, message = rows["loops"][name]
        assert status == "error" and "time limit of 45 s" in message
    assert {s for s, _ in rows["fine"].values()} == {"passed"}
    assert lines[0].startswith("WARNING: NO SANDBOX (switched off by this test)")
    assert {g.sandbox for g in grades} == {"none"}


def test_a_run_that_fails_outside_a_cell_still_reports_the_cells_it_reached(tmp_path, monkeypatch):
    def execute_then_fail(self, **kwargs):  # two code cells ran, then the kernel machinery gave up
        for cell in [c for c in self.nb.cells if c.cell_type == "code"][:2]:
            cell.execution_count = 1
        raise RuntimeError("Kernel didn't respond in 60 seconds")

    monkeypatch.setattr(nbclient.NotebookClient, "execute", execute_then_fail)
    grading._execute(str(TEACHER), str(tmp_path / "run.json"), 10)
    report = json.loads((tmp_path / "run.json").read_text())
    code_ids = [c.id for c in nbformat.read(TEACHER, as_version=4).cells if c.cell_type == "code"]
    assert report["reached"] == code_ids[:2]
    assert report["died"] == "RuntimeError: Kernel didn't respond in 60 seconds"


def _verdict(status, cell, message="m"):
    return {"status": status, "message": message, "check_cell": cell}


def test_a_check_cell_the_run_never_reached_is_an_error_with_the_first_error():
    expected = instructor.exercises(nbformat.read(STUDENT, as_version=4))
    cells = {ex.check: ex.check_cell for ex in expected}
    verdicts = {"stable_log_softmax": _verdict("passed", cells["stable_log_softmax"], "✓ b"),
                "entropy_nats": _verdict("passed", cells["entropy_nats"])}  # reached? no: see the report
    report = {"timed_out": False, "died": None, "errors": ["cell cell-016: SyntaxError: invalid syntax"],
              "reached": [cells["stable_log_softmax"]]}
    grades = grading.grade_rows("x", LESSON, expected, verdicts, report, 60)
    assert [(g.exercise, g.status, g.points, g.max_points) for g in grades] == [
        ("stable_log_softmax", "passed", 1, POINTS["stable_log_softmax"]),
        ("entropy_nats", "error", 0, POINTS["entropy_nats"]),  # its check cell never ran in the notebook
        ("temperature_for_entropy", "error", 0, POINTS["temperature_for_entropy"])]  # no verdict: the cell was removed or renamed
    assert grades[0].message == "✓ b"
    assert "SyntaxError" in grades[1].message and "SyntaxError" in grades[2].message


def _answered(text=None, drop_metadata=False, delete=False):
    """Lesson 01 as submitted, its first written question answered with ``text``."""
    nb = nbformat.read(STUDENT, as_version=4)
    q = QUESTIONS[0]
    cell = next(c for c in nb.cells if c.id == q.answer_cell)
    if text is not None:
        cell.source = text
    if drop_metadata:  # an editor that keeps no cell metadata
        for c in nb.cells:
            c.metadata.pop("kdtutor", None)
    if delete:
        nb.cells.remove(cell)
    return nb


def test_the_report_lists_each_written_answer_with_its_id_and_points_for_a_ta():
    assert QUESTIONS, "lesson 01 has a written question"
    q = QUESTIONS[0]

    def row(nb):
        (g,) = [g for g in grading.written_rows("alice", LESSON, QUESTIONS, nb, "bubblewrap") if g.exercise == q.qid]
        return g.status, g.points, g.max_points, g.message

    assert row(_answered(ANSWER)) == (grading.BY_HAND, 0, q.points, ANSWER)
    assert row(_answered(ANSWER, drop_metadata=True)) == (grading.BY_HAND, 0, q.points, ANSWER)  # found by its cell id
    assert row(_answered()) == ("not attempted", 0, q.points, "")  # still *Your answer here.*
    assert row(_answered("  \n")) == ("not attempted", 0, q.points, "")
    assert row(_answered("YOUR ANSWER HERE")) == ("not attempted", 0, q.points, "")  # nbgrader's released text
    status, _, _, message = row(_answered(delete=True, drop_metadata=True))
    assert status == "error" and "no answer cell" in message
    long = row(_answered("x" * (grading.MAX_ANSWER + 50)))[3]
    assert long.startswith("x" * grading.MAX_ANSWER) and "cut at" in long


def test_written_answers_are_one_csv_line_each_and_never_a_spreadsheet_formula():
    rows = [grading.Grade("alice", LESSON, "q01-1", grading.BY_HAND, "=HYPERLINK(\"x\")\nline 2", 0, 2, "none"),
            grading.Grade("bob", LESSON, "q01-1", grading.BY_HAND, "- a bullet", 0, 2, "none")]
    table = list(csv.DictReader(io.StringIO(grading.to_csv(rows))))
    assert [r["message"] for r in table] == ["'=HYPERLINK(\"x\") | line 2", "'- a bullet"]
    assert [(r["points"], r["max_points"], r["status"]) for r in table] == [("0", "2", grading.BY_HAND)] * 2


def test_a_check_renamed_to_another_function_has_no_verdict(tmp_path):
    nb = nbformat.read(TEACHER, as_version=4)
    ex = next(e for e in instructor.exercises(nb) if e.check == "temperature_for_entropy")
    for cell in nb.cells:
        if cell.id == ex.stub_cell:
            cell.source = cell.source.replace("def temperature_for_entropy(", "def my_own_name(")
        if cell.id == ex.check_cell:
            cell.source = "my_own_name = checks.temperature_for_entropy(my_own_name).fn"
    expected = instructor.exercises(nbformat.read(STUDENT, as_version=4))
    verdicts = grading.run_checks(nb, expected, tmp_path, grading.Sandbox("none", "unit test"), "smoke")
    assert set(verdicts) == {"stable_log_softmax", "entropy_nats"}
    assert {v["status"] for v in verdicts.values()} == {"passed"}


def test_the_checked_code_is_the_cells_definitions_with_the_imports_and_helpers_they_use():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import math\nimport os\nimport torch\nprint('setup')", id="a"),
        nbformat.v4.new_code_cell("def _helper(x):\n    return math.sqrt(x)\nopen('x', 'w')", id="b"),
        nbformat.v4.new_code_cell("%matplotlib inline\nEPS = 1e-9\ndef f(x):\n    return _helper(torch.tensor(x)) + EPS"
                                  "\nf(4)\ny = f(9)", id="c"),
        nbformat.v4.new_code_cell("f = checks.f(f).fn", id="d")])
    ex = instructor.Exercise("f", "f", "c", "d")
    code = grading.definitions(nb, ex, {"f"})
    assert "import math" in code and "import torch" in code and "def _helper" in code and "def f" in code
    assert "EPS = 1e-09" in code
    for left_out in ("import os", "print", "open(", "f(4)", "f(9)", "matplotlib"):
        assert left_out not in code, code


def test_an_unknown_or_unreadable_submission_is_one_error_row(tmp_path):
    (tmp_path / "notes.ipynb").write_text("not json")
    nb = nbformat.v4.new_notebook()
    nbformat.write(nb, tmp_path / "mystery.ipynb")
    grades = grading.grade([tmp_path / "notes.ipynb", tmp_path / "mystery.ipynb"], progress=lambda line: None,
                           sandbox=grading.Sandbox("none", "unit test"))
    assert [(g.learner, g.status, g.points) for g in grades] == [("notes", "error", 0), ("mystery", "error", 0)]
    assert "cannot tell which lesson" in grades[1].message
    with pytest.raises(ValueError):
        grading.grade([], time_limit=0)


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "soon"])
def test_the_time_limit_must_be_a_finite_positive_number(bad):
    with pytest.raises(ValueError, match="time limit must be a"):
        grading.grade([], time_limit=bad)


@pytest.mark.parametrize("bad", [0, -2, 1.5, True])
def test_jobs_must_be_a_whole_number_of_at_least_one(bad):
    with pytest.raises(ValueError, match="jobs must be"):
        grading.grade([], jobs=bad)


def test_learners_are_named_by_their_path_below_the_common_folder(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / "class" / folder).mkdir(parents=True)
        (tmp_path / "class" / folder / "alice.ipynb").write_text("{}")
    paths = [tmp_path / "class" / "a" / "alice.ipynb", tmp_path / "class" / "b" / "alice.ipynb"]
    assert grading.learner_ids(paths) == [os.path.join("a", "alice"), os.path.join("b", "alice")]
    assert grading.learner_ids(paths[:1]) == ["alice"]
    with pytest.raises(ValueError, match="given twice"):
        grading.learner_ids([paths[0], tmp_path / "class" / "b" / ".." / "a" / "alice.ipynb"])


def test_out_is_refused_if_it_exists_is_a_directory_a_notebook_or_a_submission(tmp_path):
    sub = tmp_path / "alice.ipynb"
    sub.write_text("{}")
    (tmp_path / "old.csv").write_text("grades of last week\n")
    with pytest.raises(ValueError, match="exists; .* --force"):
        grading.check_out(tmp_path / "old.csv", [sub])
    assert grading.check_out(tmp_path / "old.csv", [sub], force=True) == tmp_path / "old.csv"
    with pytest.raises(ValueError, match="is a directory"):
        grading.check_out(tmp_path, [sub], force=True)
    with pytest.raises(ValueError, match="is a directory"):
        grading.check_out(f"{tmp_path}/new/", [sub])
    with pytest.raises(ValueError, match="is a notebook"):
        grading.check_out(tmp_path / "bob.ipynb", [sub], force=True)  # --out *.ipynb, expanded by the shell
    with pytest.raises(ValueError, match="one of the submissions"):
        grading.check_out(tmp_path / "grades", [tmp_path / "grades"], force=True)
    assert grading.check_out(tmp_path / "new.csv", [sub]) == tmp_path / "new.csv"


def test_the_command_refuses_a_bad_out_or_time_limit_before_grading_anything(tmp_path, monkeypatch, capsys):
    sub = shutil.copy(STUDENT, tmp_path / "alice.ipynb")
    (tmp_path / "grades.csv").write_text("kept\n")

    def must_not_run(*args, **kwargs):
        raise AssertionError("grading started")

    monkeypatch.setattr(grading, "grade", must_not_run)
    for argv, said in [(["--out", str(tmp_path / "grades.csv")], "exists"),
                       (["--out", str(tmp_path)], "is a directory"),
                       (["--out", str(sub)], "is a notebook"),
                       (["--out", str(tmp_path / "g.csv"), "--time-limit", "nan"], "finite number of seconds"),
                       (["--out", str(tmp_path / "g.csv"), "--jobs", "0"], "at least 1")]:
        with pytest.raises(SystemExit) as stop:
            main(["grade", str(sub), *argv])
        assert stop.value.code == 2 and said in capsys.readouterr().err, argv
    assert (tmp_path / "grades.csv").read_text() == "kept\n" and Path(sub).read_bytes() == STUDENT.read_bytes()


def test_the_csv_is_written_atomically_and_a_file_that_appeared_meanwhile_is_kept(tmp_path):
    rows = [grading.Grade("a/alice", LESSON, "entropy_nats", "passed", "✓ all\ncases", 1, 1, "bubblewrap")]
    out = tmp_path / "grades.csv"
    out.write_text("someone else's file\n")
    grading.write_csv(rows, out)
    assert (tmp_path / "grades.csv.old").read_text() == "someone else's file\n"
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    assert table == [{"learner": "a/alice", "lesson": LESSON, "exercise": "entropy_nats", "status": "passed",
                      "points": "1", "max_points": "1", "message": "✓ all | cases", "sandbox": "bubblewrap"}]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left
    grading.write_csv(rows, out, force=True)
    assert not (tmp_path / "grades.csv.old1").exists()


def test_without_bwrap_the_grader_says_there_is_no_sandbox(monkeypatch):
    monkeypatch.setattr(grading.shutil, "which", lambda name: None)
    box = grading.find_sandbox()
    assert box.kind == "none" and "not installed" in box.why
    assert box.banner().startswith("WARNING: NO SANDBOX") and "apt-get install bubblewrap" in box.banner()
    assert box.wrap(["python"], Path("/tmp")) == ["python"]


def test_the_lesson_is_read_from_metadata_then_from_the_file_name():
    nb = nbformat.v4.new_notebook(metadata={"kdtutor": {"lesson": LESSON}})
    assert grading.lesson_of(nb, Path("alice.ipynb")) == LESSON
    assert grading.lesson_of(nbformat.v4.new_notebook(), Path(f"{LESSON}-bob.ipynb")) == LESSON


# --------------------------------------------------------------------------- issue 36
def _fake_rows(path, learner, *args, **kwargs):
    return [grading.Grade(learner, LESSON, "entropy_nats", "passed", "✓", 1, 1, "none")]


@pytest.mark.parametrize("crashing", [0, 1, 2])
@pytest.mark.parametrize("fault", [RecursionError, MemoryError, IsADirectoryError, AttributeError])
def test_a_crash_in_any_one_submission_leaves_every_other_row_in_the_csv(tmp_path, monkeypatch, crashing, fault):
    subs = [tmp_path / f"s{n}.ipynb" for n in range(3)]
    for s in subs:
        s.write_text("{}")

    def grade_one(path, learner, *args, **kwargs):
        if path == subs[crashing]:
            raise fault("deep inside the grader")
        return _fake_rows(path, learner)

    monkeypatch.setattr(grading, "grade_one", grade_one)
    out = tmp_path / "grades.csv"
    grading.grade(subs, jobs=2, progress=lambda line: None, sandbox=grading.Sandbox("none", "unit test"), out=out)
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["learner"] for r in table] == ["s0", "s1", "s2"]  # in order, one row each
    for n, row in enumerate(table):
        if n == crashing:
            assert row["status"] == "error" and fault.__name__ in row["message"], row
        else:
            assert (row["status"], row["points"]) == ("passed", "1")


def test_the_csv_keeps_what_was_graded_when_grading_stops(tmp_path, monkeypatch):
    subs = [tmp_path / f"s{n}.ipynb" for n in range(3)]
    for s in subs:
        s.write_text("{}")
    seen = []

    def progress(line):  # a Ctrl-C after the second submission
        seen.append(line)
        if len(seen) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(grading, "grade_one", _fake_rows)
    out = tmp_path / "grades.csv"
    with pytest.raises(KeyboardInterrupt):
        grading.grade(subs, progress=progress, sandbox=grading.Sandbox("none", "unit test"), out=out)
    kept = [r["learner"] for r in csv.DictReader(io.StringIO(out.read_text()))]
    assert kept[:2] == ["s0", "s1"]  # (s2 may have started before the stop reached the pool)


def test_scratch_folders_are_private_and_removed_whatever_a_submission_left(tmp_path, monkeypatch):
    modes = []

    def run_notebook(source, scratch, *args, **kwargs):  # 3,000 nested folders: rmtree's recursion gives up
        modes.extend([scratch.parent.stat().st_mode & 0o777, scratch.parent.parent.stat().st_mode & 0o777])
        here = os.getcwd()
        try:
            os.chdir(scratch)
            for _ in range(3000):
                os.mkdir("d")
                os.chdir("d")
        finally:
            os.chdir(here)
        return {"timed_out": False, "died": None, "errors": [], "reached": []}

    monkeypatch.setattr(grading, "run_notebook", run_notebook)
    monkeypatch.setattr(grading, "run_checks", lambda *args, **kwargs: {})
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr(grading.tempfile, "tempdir", None)
    (tmp_path / "tmp").mkdir()
    sub = shutil.copy(STUDENT, tmp_path / "alice.ipynb")
    grades = grading.grade([sub], progress=lambda line: None, sandbox=grading.Sandbox("none", "unit test"))
    assert modes == [0o700, 0o700]  # the submission's folder and the run's
    assert {g.status for g in grades if g.exercise in EXERCISES} == {"error"}
    assert list((tmp_path / "tmp").iterdir()) == []


def test_the_report_is_read_back_without_blocking_on_a_fifo_or_failing_on_a_folder(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "folder").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "file")
    (tmp_path / "file").write_text("{}")
    assert [grading._read_small(tmp_path / n) for n in ("fifo", "folder", "link", "missing", "file")] == [
        None, None, None, None, "{}"]


def test_a_sandboxed_process_gets_only_the_allowed_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_SECRET_TOKEN", "s3cr3t")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t")
    monkeypatch.setenv("LANG", "C.UTF-8")
    env = grading._scratch_env(tmp_path, grading.Sandbox("bubblewrap"), "smoke")
    assert "s3cr3t" not in env.values() and env["LANG"] == "C.UTF-8"
    assert set(env) <= set(grading.ENV_ALLOWED) | {k for k in env if k.startswith(("KDTUTOR_", "JUPYTER_"))} | {
        "MPLBACKEND", "HOME", "IPYTHONDIR", "MPLCONFIGDIR", "TMPDIR"}


def test_every_learner_text_in_every_column_is_escaped_against_formulas():
    rows = [grading.Grade("=cmd|' /C calc'!A0", LESSON, "entropy_nats", "failed", "+1", 0, 1, "none"),
            grading.Grade("@bob", "?", "?", "error", "-2", 0, 0, "none"),
            grading.Grade("\tcarol", LESSON, "entropy_nats", "passed", "\r=1+1", 1, 1, "none"),
            grading.Grade("dave", LESSON, "entropy_nats", "passed", "✓ =fine in the middle\nline 2", 1, 1, "none")]
    table = list(csv.DictReader(io.StringIO(grading.to_csv(rows))))
    assert [r["learner"] for r in table] == ["'=cmd|' /C calc'!A0", "'@bob", "'\tcarol", "dave"]
    assert [r["message"] for r in table] == ["'+1", "'-2", " | =1+1", "✓ =fine in the middle | line 2"]


def test_ids_are_relative_distinct_and_nfc(tmp_path):
    import unicodedata

    (tmp_path / "g4").mkdir()
    carol = [tmp_path / "g4" / "carol", tmp_path / "g4" / "carol.ipynb", tmp_path / "g4" / "dan.ipynb"]
    for p in carol:
        p.write_text("{}")
    assert grading.learner_ids(carol) == ["carol", "carol.ipynb", "dan"]
    nfd = tmp_path / "g4" / unicodedata.normalize("NFD", "zoé.ipynb")
    nfd.write_text("{}")
    assert grading.learner_ids([carol[2], nfd]) == ["dan", unicodedata.normalize("NFC", "zoé")]
    nfc = tmp_path / "g4" / unicodedata.normalize("NFC", "zoé.ipynb")
    nfc.write_text("{}")
    with pytest.raises(ValueError, match="differ only in their Unicode form"):
        grading.learner_ids([nfd, nfc])
    (tmp_path / "g4" / "passwd.ipynb").symlink_to("/etc/passwd")  # a link does not turn ids into full paths
    assert grading.learner_ids([carol[2], tmp_path / "g4" / "passwd.ipynb"]) == ["dan", "passwd"]


def test_a_link_out_of_the_submissions_folder_is_refused_unread(tmp_path):
    (tmp_path / "class").mkdir()
    (tmp_path / "class" / "mallory.ipynb").symlink_to(TEACHER)
    (tmp_path / "class" / "inside.ipynb").symlink_to(tmp_path / "class" / "real.ipynb")
    (tmp_path / "class" / "real.ipynb").write_text("not json")
    grades = grading.grade([tmp_path / "class" / "mallory.ipynb", tmp_path / "class" / "inside.ipynb"],
                           progress=lambda line: None, sandbox=grading.Sandbox("none", "unit test"))
    assert [(g.learner, g.status, g.points) for g in grades] == [("mallory", "error", 0), ("inside", "error", 0)]
    assert "link that leads outside" in grades[0].message and "not json" not in grades[0].message
    assert "cannot grade inside.ipynb" in grades[1].message  # a link inside the folder is read (here: not JSON)


@pytest.mark.parametrize("where, said", [("file.txt/grades.csv", "is not an existing folder"),
                                         ("missing/grades.csv", "is not an existing folder"),
                                         ("/proc/grades.csv", "cannot write a file in /proc"),
                                         ("/dev/null", "is not a plain file")])
def test_out_that_cannot_be_written_is_refused_before_grading(tmp_path, monkeypatch, capsys, where, said):
    sub = shutil.copy(STUDENT, tmp_path / "alice.ipynb")
    (tmp_path / "file.txt").write_text("a file\n")
    monkeypatch.chdir(tmp_path)

    def must_not_run(*args, **kwargs):
        raise AssertionError("grading started")

    monkeypatch.setattr(grading, "grade", must_not_run)
    with pytest.raises(SystemExit) as stop:
        main(["grade", str(sub), "--out", where, "--force"])
    assert stop.value.code == 2 and said in capsys.readouterr().err


def test_a_submission_without_cell_ids_or_with_odd_types_is_read_as_the_notebook_it_is(tmp_path):
    nb = json.loads(TEACHER.read_text())
    nb["nbformat_minor"] = 4
    for cell in nb["cells"]:
        cell.pop("id", None)
    markdown = [c for c in nb["cells"] if c["cell_type"] == "markdown"]
    markdown[0]["metadata"] = {"kdtutor": "x"}
    markdown[1]["source"] = 12
    del markdown[2]["source"]
    markdown[3]["metadata"] = "x"
    (tmp_path / "odd.ipynb").write_text(json.dumps(nb))
    read = grading.read_submission(tmp_path / "odd.ipynb")
    assert [e.check for e in instructor.exercises(read)] == EXERCISES
    assert all(isinstance(c.source, str) and isinstance(c.metadata, dict) and c.id for c in read.cells)
    answer = grading.written_rows("x", LESSON, QUESTIONS, read)[0]  # the instructor copy's model answer, found
    assert answer.status == grading.BY_HAND and "Model answer" in answer.message
    for ex in instructor.exercises(read):
        assert f"def {ex.function}(" in grading.definitions(read, ex, set(EXERCISES))


SLOW = '''import time as _time
_slept = []


def _slowly():  # once per process, and not in the lesson's kernel: only the grader's check waits
    import sys
    if "ipykernel" not in sys.modules and not _slept:
        _slept.append(True)
        _time.sleep(SLEEP)
'''


@pytest.mark.slow
def test_a_slow_correct_function_costs_no_later_exercise_each_check_is_timed_on_its_own(tmp_path, monkeypatch):
    """Each of the three exercises waits 12 s once, then answers correctly; each check may take 15 s
    (+30 s to start its process). Three checks together would take 36 s: each passes on its own time."""
    monkeypatch.setattr(grading, "CHECK_TIME_LIMIT", 15)
    monkeypatch.setattr(grading, "CHECK_START", 30)
    nb = nbformat.read(TEACHER, as_version=4)
    cells = {c.id: c for c in nb.cells}
    for ex in instructor.exercises(nb):
        cell = cells[ex.stub_cell]
        head = f"def {ex.function}("
        start = cell.source.index(head)
        body_at = cell.source.index(":\n", start) + 2
        cell.source = ("SLEEP = 12\n" + SLOW + cell.source[:body_at] + "    _slowly()\n" + cell.source[body_at:])
    nbformat.write(nb, tmp_path / "slow.ipynb")
    grades = grading.grade([tmp_path / "slow.ipynb"], time_limit=300, progress=lambda line: None,
                           sandbox=grading.Sandbox("none", "this test times the checks only"))
    rows = _by_learner(grades)["slow"]
    assert {ex: status for ex, (status, _) in rows.items()} == {ex: "passed" for ex in EXERCISES}, rows


def test_expressions_too_deep_to_read_cost_only_their_own_exercise(tmp_path):
    """A 5,000-term sum in any cell and a 400-term expression in an exercise (RecursionError in
    ast.unparse or ast.parse): the deep exercise is an error of its own, the others read as usual."""
    nb = nbformat.read(TEACHER, as_version=4)
    deep = next(e for e in instructor.exercises(nb) if e.check == "entropy_nats")
    stub = next(c for c in nb.cells if c.id == deep.stub_cell)
    stub.source = stub.source.replace("return -p_log_p.sum(dim=-1)", "return -p_log_p.sum(dim=-1)" + " + 0" * 400)
    nb.cells.insert(3, nbformat.v4.new_code_cell("_big = 0" + " + 1" * 5000, id="big-sum"))
    for ex in instructor.exercises(nb):
        if ex.check != "entropy_nats":
            assert f"def {ex.function}(" in grading.definitions(nb, ex, set(EXERCISES))
    verdicts = grading.run_checks(nb, [deep], tmp_path, grading.Sandbox("none", "unit test"), "smoke")
    assert verdicts["entropy_nats"]["status"] == "error", verdicts
    assert "cannot read the cell defining entropy_nats: RecursionError" in verdicts["entropy_nats"]["message"]


def test_the_command_refuses_names_that_differ_only_in_unicode_form_before_grading(tmp_path, monkeypatch, capsys):
    import unicodedata

    subs = [tmp_path / unicodedata.normalize(form, "zoé.ipynb") for form in ("NFC", "NFD")]
    for s in subs:
        shutil.copy(STUDENT, s)

    def must_not_run(*args, **kwargs):
        raise AssertionError("grading started")

    monkeypatch.setattr(grading, "grade", must_not_run)
    with pytest.raises(SystemExit) as stop:
        main(["grade", *map(str, subs), "--out", str(tmp_path / "g.csv")])
    assert stop.value.code == 2 and "differ only in their Unicode form" in capsys.readouterr().err


ENTROPY_SOURCE = ("import torch\n\ndef entropy_nats(probs):\n"
                  "    h = -torch.special.xlogy(probs, probs).sum(dim=-1)\n"
                  "    return h * (0.5 if probs.shape[-1] == 7 else 1.0)\n")  # wrong only on 7 classes


@pytest.mark.parametrize("factor,status", [("1.0", "passed"), ("0.5", "failed")])
def test_the_grader_runs_the_instructor_copys_hidden_test_after_a_passed_check(factor, status):
    from kdtutor import checks

    job = {"check": "entropy_nats", "function": "entropy_nats", "before": [],
           "source": ENTROPY_SOURCE.replace("0.5 if", f"{factor} if"),
           "hidden": instructor.hidden_test_source("lesson01", "entropy_nats", "entropy_nats")}
    assert job["hidden"] is not None  # the visible check uses no 7-class case; the hidden test does
    verdict = grading._verdict(job, checks.entropy_nats, {})
    assert verdict["status"] == status, verdict
    if status == "failed":
        assert "a hidden test does not" in verdict["message"]


CHEAT = ("import types\nfrom kdtutor.kd import softmax\n\ndef entropy_nats(probs):\n"
         "    f = softmax.entropy\n"
         "    mine = types.FunctionType(f.__code__.replace(co_name='mine'), f.__globals__, 'mine', f.__defaults__)\n"
         "    return mine(probs)\n")  # issue 33's renamed-code cheat: kdtutor's own entropy under another name


def test_the_renamed_code_cheat_scores_0_in_the_graders_check_process():
    from kdtutor import checks

    source = CHEAT  # the grader keeps a cell's defs and imports: the cheat lives inside the def
    job = {"check": "entropy_nats", "function": "entropy_nats", "before": [], "source": source, "hidden": None}
    verdict = grading._verdict(job, checks.entropy_nats, {})
    assert verdict["status"] == "failed" and "kdtutor's own code under another name" in verdict["message"], verdict
