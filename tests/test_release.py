"""python -m coursetools release DIR: what learners get for graded use. No answers in it, the full
answers disabled in its kdtutor (the marker it writes, read by the checks), nothing overwritten
without --force, and a lesson from it runs on the release's own kdtutor."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from kdtutor import checks
from coursetools.__main__ import main
from kdtutor.checks import core
from coursetools.release import MARKER_PATH, release

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    return release(tmp_path_factory.mktemp("release") / "kdtutor-course")


def _in_release(released: Path, code: str) -> str:
    """Run ``code`` in a fresh Python that imports kdtutor from the release; return its output."""
    env = {**os.environ, "PYTHONPATH": str(released)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=released, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_the_release_has_the_lessons_and_the_package_but_no_answers_and_no_tests(released):
    assert sorted(p.name for p in (released / "notebooks").glob("*.ipynb")) == LESSONS
    for name in LESSONS:
        assert (released / "notebooks" / name).read_bytes() == (ROOT / "notebooks" / name).read_bytes()
    for withheld in ("solutions", "instructor", "tests", "conftest.py", "CONTRIBUTING.md"):
        assert not (released / withheld).exists(), withheld
    assert not list(released.rglob("__pycache__")) and not list(released.rglob("*.pyc"))
    text = "\n".join(p.read_text(encoding="utf-8") for p in released.rglob("*.ipynb"))
    assert "BEGIN SOLUTION" not in text  # no instructor copy slipped in
    assert (released / "kdtutor" / "checks" / "core.py").exists() and (released / "pyproject.toml").exists()
    assert (released / MARKER_PATH).exists() and not (ROOT / MARKER_PATH).exists()


def test_in_the_release_answer_and_the_second_failure_say_the_instructor_disabled_them(released):
    out = _in_release(released, (
        "import kdtutor, torch\n"
        "from kdtutor import checks\n"
        "print(kdtutor.__file__)\n"
        "checks.answer('entropy_nats')\n"
        "wrong = lambda p: p.sum(dim=-1)\n"
        "first = checks.entropy_nats(wrong, verbose=False).message\n"
        "print('FIRST', first)\n"
        "print('SECOND', checks.entropy_nats(wrong, verbose=False).message)\n"))
    assert out.splitlines()[0] == str(released / "kdtutor" / "__init__.py")  # the release's own kdtutor
    answer = core.HINTS["entropy_nats"].answer
    assert answer not in out and out.count(core.DISABLED) == 2
    first = out.split("FIRST", 1)[1].split("SECOND", 1)[0]
    assert core.HINTS["entropy_nats"].nudge in first and "checks.answer" not in first  # the nudge stays


def test_the_checks_read_the_marker_answers_come_back_without_it(tmp_path, monkeypatch):
    name = "entropy_nats"
    assert checks.answer(name, verbose=False) == core.HINTS[name].answer
    monkeypatch.setattr(core, "RELEASE_MARKER", tmp_path / "graded_release.json")
    assert checks.answer(name, verbose=False) == core.HINTS[name].answer  # no marker there yet
    core.RELEASE_MARKER.write_text("{}")
    assert checks.answer(name, verbose=False) == core.DISABLED
    for _ in range(2):
        message = checks.entropy_nats(lambda p: p.sum(dim=-1), verbose=False).message
    assert f"Answer: {core.DISABLED}" in message and core.HINTS[name].answer not in message


@pytest.mark.slow
def test_a_lesson_from_the_release_runs_on_the_releases_kdtutor(released, monkeypatch):
    path = released / "notebooks" / "01_softmax_temperature.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import kdtutor\nprint(kdtutor.__file__)", id="where"))
    monkeypatch.setenv("PYTHONPATH", str(released))  # the kernel inherits it, as a learner's would find it
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    assert nb.cells[-1].outputs[0]["text"].strip() == str(released / "kdtutor" / "__init__.py")
    checked = [o.get("text", "") for c in nb.cells if "checks.entropy_nats(" in c.source for o in c.outputs]
    assert checked and "not attempted" in checked[0]


def test_the_release_builds_as_a_package_that_carries_the_marker(tmp_path):
    released = release(tmp_path / "course")  # its own: building writes build/ and *.egg-info into it
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "wheels"), str(released)], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "wheels").glob("kdtutor-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "kdtutor/graded_release.json" in names and "kdtutor/checks/core.py" in names
    assert not [n for n in names if n.startswith(("solutions/", "instructor/", "tests/"))]


def test_an_existing_folder_is_never_overwritten_without_force(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main(["release", str(mine)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["release", str(mine), "--force"]) == 2  # not a release: --force does not touch it either
    assert "not a kdtutor release" in capsys.readouterr().err
    assert [p.name for p in mine.iterdir()] == ["notes.txt"] and (mine / "notes.txt").read_text() == "keep me"


def test_force_replaces_a_previous_release_and_leaves_nothing_behind(tmp_path, capsys):
    target = tmp_path / "course"
    assert main(["release", str(target)]) == 0 and "wrote a student release" in capsys.readouterr().out
    (target / "notebooks" / "stale.ipynb").write_text("{}")
    assert main(["release", str(target), "--force"]) == 0
    assert not (target / "notebooks" / "stale.ipynb").exists() and (target / MARKER_PATH).exists()
    assert [p.name for p in tmp_path.iterdir()] == ["course"]  # no build or old folder left next to it


@pytest.mark.parametrize("where", [".", "..", "kdtutor/checks/x", "notebooks"])
def test_a_release_is_never_written_over_or_inside_the_course(where, capsys):
    assert main(["release", str(ROOT / where), "--force"]) == 2
    assert "cannot be written over or inside the course" in capsys.readouterr().err
    assert not (ROOT / "kdtutor" / "checks" / "x").exists()


def test_the_release_ships_the_homework_but_no_model_answer_hidden_test_or_instructor_file(released):
    """Learners get homework/ (notebooks and hwtools.py) and nothing of instructor/: no line of a
    homework model answer that is not already in the learner's notebook, no hidden test's name."""
    import ast

    from coursetools.homework import HOMEWORKS, model_answers

    assert sorted(p.name for p in (released / "homework").iterdir()) == ["hw1.ipynb", "hw2.ipynb", "hwtools.py"]
    assert not (released / "instructor").exists() and not list(released.rglob("*_solution.py"))
    assert not list(released.rglob("*_tests.py")) and not list(released.rglob("GUIDE.md"))
    shipped = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in released.rglob("*") if p.is_file())
    learner = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "homework").glob("*.ipynb"))
    answers = [line.strip() for hw in HOMEWORKS for source in model_answers(hw).values()
               for line in source.splitlines() if len(line.strip()) >= 20 and not line.strip().startswith("#")
               and _json(line.strip()) not in learner]
    hidden = [node.name for p in (ROOT / "instructor" / "homework").glob("*_tests.py")
              for node in ast.parse(p.read_text()).body
              if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")]
    assert len(answers) >= 15 and len(hidden) >= 10
    leaked = [text for text in answers + hidden if text in shipped or _json(text) in shipped]
    assert leaked == [], leaked[:5]


def _json(line: str) -> str:
    """``line`` as it reads inside a notebook's JSON."""
    import json

    return json.dumps(line, ensure_ascii=False)[1:-1]


def test_the_release_has_no_model_answer_or_rubric_of_the_written_questions(released):
    """The written questions' model answers and rubrics (solutions/written_answers.md, and the
    instructor copies' answer cells made from it) stay out: no sentence of either in any shipped file."""
    from coursetools.instructor import written_answers

    models = written_answers()
    assert len(models) >= 8
    shipped = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in released.rglob("*") if p.is_file())
    texts = [s for m in models.values() for s in m.answer.replace("\n", " ").split(". ") if len(s) > 40]
    texts += [text for m in models.values() for _, text in m.rubric]
    assert len(texts) >= 50
    leaked = [t for t in texts if t in shipped or _json(t) in shipped]
    assert leaked == [], leaked[:3]
    assert not list(released.rglob("written_answers*")) and "**Rubric (" not in shipped
