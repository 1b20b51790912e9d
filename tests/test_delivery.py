"""Badges, setup cells and the instructor/student versions: generated from one source, in sync."""

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch

from kdtutor import checks
from kdtutor.checks import core
from coursetools import delivery, instructor

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _read(path):
    return nbformat.read(path, as_version=4)


def test_every_lesson_and_its_instructor_version_are_exactly_what_the_generator_writes():
    stale = instructor.write_instructor_copies(check=True)
    assert stale == [], f"out of date (run: python -m coursetools generate): {stale}"
    assert sorted(p.name for p in (ROOT / "instructor").glob("*.ipynb")) == [p.name for p in LESSONS]


def test_the_sync_check_notices_an_edited_instructor_notebook(tmp_path):
    lesson = LESSONS[1]
    shutil.copy(ROOT / "instructor" / lesson.name, tmp_path / lesson.name)
    assert instructor.write_instructor_copies([lesson], instructor_dir=tmp_path, check=True) == []
    text = (tmp_path / lesson.name).read_text().replace("### END SOLUTION", "### END SOLUTION ", 1)
    (tmp_path / lesson.name).write_text(text)
    assert instructor.write_instructor_copies([lesson], instructor_dir=tmp_path, check=True) == [tmp_path / lesson.name]


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_badges_point_at_the_configured_repository_branch_and_this_lesson(path):
    cfg = delivery.config()
    nb = _read(path)
    assert nb.cells[1].id == delivery.BADGES_ID and nb.cells[2].id == delivery.SETUP_ID
    links = re.findall(r"\]\((https://[^)]+)\)\]\((https://[^)]+)\)", nb.cells[1].source)
    assert [target for _, target in links] == [
        f"https://colab.research.google.com/github/{cfg['repository']}/blob/{cfg['branch']}/notebooks/{path.name}",
        f"https://mybinder.org/v2/gh/{cfg['repository']}/{cfg['branch']}?labpath=notebooks%2F{path.name}"]
    assert f"--branch\", \"{cfg['branch']}\", \"https://github.com/{cfg['repository']}\"" in nb.cells[2].source
    assert nb.metadata["kdtutor"]["lesson"] == path.stem


def test_a_fork_changes_one_file_and_every_link_follows(tmp_path):
    (tmp_path / "d.json").write_text(json.dumps({"repository": "someone/fork", "branch": "spring-2027"}))
    cfg = delivery.config(tmp_path / "d.json")
    out = instructor.student_version(_read(LESSONS[0]), LESSONS[0], cfg)
    text = out.cells[1].source + out.cells[2].source
    assert "someone/fork/blob/spring-2027/notebooks/" in text and "gh/someone/fork/spring-2027?" in text
    assert "--branch\", \"spring-2027\", \"https://github.com/someone/fork\"" in text
    assert delivery.config()["repository"] + "/" not in text
    assert delivery.decorate(out, LESSONS[0].name, cfg) is False  # generating again changes nothing
    assert delivery.decorate(out, LESSONS[0].name) is True  # back to the course's own repository


@pytest.mark.parametrize("bad", [{"repository": "no-slash", "branch": "main"},
                                 {"repository": "a/b", "branch": "has space"},
                                 {"repository": "a/b", "branch": "main", "written_questions": "compulsory"}])
def test_a_malformed_delivery_config_is_refused(tmp_path, bad):
    (tmp_path / "d.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError):
        delivery.config(tmp_path / "d.json")


class _FakeSubprocess:
    """Stands in for ``subprocess`` in the setup cell: records each command; ``fail`` maps a command's first
    words to (exit status, stderr), ``missing`` names programs that are not installed."""
    PIPE = subprocess.PIPE

    def __init__(self, fail=None, missing=()):
        self.calls, self.fail, self.missing = [], fail or {}, missing

    def run(self, cmd, **kw):
        self.calls.append((cmd, kw))
        if cmd[0] in self.missing:
            raise FileNotFoundError(2, "No such file or directory", cmd[0])
        code, err = next((v for k, v in self.fail.items() if cmd[:len(k)] == list(k)), (0, ""))
        return subprocess.CompletedProcess(cmd, code, stderr=err)


def _run_setup(source, monkeypatch, cwd, importable, fake=None):
    fake = fake or _FakeSubprocess()
    cwd.mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "path", list(sys.path))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: real(name, *a) if importable else None)
    monkeypatch.setitem(sys.modules, "subprocess", fake)  # the cell's own `import subprocess` gets the fake
    exec(source, {})
    return fake.calls


def _setup_cell(lesson):
    return _read({p.stem[:2]: p for p in LESSONS}[lesson]).cells[2].source


def test_the_setup_cell_does_nothing_where_kdtutor_is_installed(monkeypatch, tmp_path, capsys):
    assert _run_setup(_setup_cell("03"), monkeypatch, tmp_path, importable=True) == []
    assert capsys.readouterr().out == ""


def test_the_setup_cell_clones_installs_and_fetches_the_lessons_data_where_kdtutor_is_missing(monkeypatch, tmp_path):
    cfg = delivery.config()
    calls = _run_setup(_setup_cell("04"), monkeypatch, tmp_path, importable=False)
    cmds = [c for c, _ in calls]
    home = str(tmp_path / "kdtutor-course")
    assert cmds[0] == ["git", "clone", "--depth", "1", "--branch", cfg["branch"],
                       f"https://github.com/{cfg['repository']}", home]
    assert cmds[1] == [sys.executable, "-m", "pip", "install", "--quiet", "-e", home]
    assert cmds[2] == [sys.executable, "-m", "kdtutor", "prepare", "--data-only", "--need", "images"]
    assert calls[2][1]["cwd"] == home and sys.path[0] == home
    assert "--need\", \"text" in _setup_cell("07")
    assert "prepare" not in _setup_cell("01")  # lesson 01 needs no data


@pytest.mark.parametrize("depth", [1, 2])
def test_in_a_checkout_the_setup_cell_installs_that_checkout_instead_of_cloning(monkeypatch, tmp_path, depth):
    repo = tmp_path / "my clone"
    repo.mkdir()
    (repo / "pyproject.toml").write_text('[project]\nname = "kdtutor"\nversion = "0.1.0"\n')
    lesson_dir = repo / "notebooks" if depth == 1 else repo / "work" / "copy"
    cmds = [c for c, _ in _run_setup(_setup_cell("04"), monkeypatch, lesson_dir, importable=False)]
    assert [c[:4] for c in cmds] == [[sys.executable, "-m", "pip", "install"], [sys.executable, "-m", "kdtutor", "prepare"]]
    assert cmds[0][-1] == str(repo) and not (lesson_dir / "kdtutor-course").exists()


def test_in_another_project_the_setup_cell_still_clones(monkeypatch, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "kdtutor-notes"\n')
    cmds = [c for c, _ in _run_setup(_setup_cell("01"), monkeypatch, tmp_path / "notebooks", importable=False)]
    assert cmds[0][:2] == ["git", "clone"]


@pytest.mark.parametrize("fake, said", [
    (_FakeSubprocess(fail={("git", "clone"): (128, "Cloning into 'kdtutor-course'...\n"
                                               "fatal: unable to access 'https://github.com/kdtutor/kdtutor/': "
                                               "Could not resolve host: github.com\n")}),
     "setup: could not download the course (offline?): fatal: unable to access "
     "'https://github.com/kdtutor/kdtutor/': Could not resolve host: github.com"),
    (_FakeSubprocess(missing=("git",)), "setup: could not download the course: [Errno 2] No such file or directory: 'git'"),
])
def test_offline_the_setup_cell_says_what_failed_in_one_line_and_stops(monkeypatch, tmp_path, capsys, fake, said):
    calls = _run_setup(_setup_cell("04"), monkeypatch, tmp_path, importable=False, fake=fake)  # must not raise
    assert [c[:2] for c, _ in calls] == [["git", "clone"]]  # nothing installed or fetched after the failure
    assert capsys.readouterr().out.splitlines() == [said]


def test_a_failed_install_in_a_checkout_is_one_line_too(monkeypatch, tmp_path, capsys):
    (tmp_path / "pyproject.toml").write_text('name = "kdtutor"\n')
    fake = _FakeSubprocess(fail={(sys.executable, "-m", "pip"): (1, "ERROR: No matching distribution found for torch\n")})
    _run_setup(_setup_cell("04"), monkeypatch, tmp_path / "notebooks", importable=False, fake=fake)
    assert capsys.readouterr().out.splitlines() == [
        "setup: could not install kdtutor (offline?): ERROR: No matching distribution found for torch"]
    assert len(fake.calls) == 1


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_each_instructor_answer_passes_its_check_and_each_student_stub_is_not_attempted(path):
    """The instructor cells are the code a learner would write: run them as a notebook would."""
    student, teacher = _read(path), _read(ROOT / "instructor" / path.name)
    found = instructor.exercises(student)
    assert found, "every lesson has exercises"
    by_id = {c.id: c for c in teacher.cells}
    namespace = {"torch": torch}  # one per lesson, as in the notebook: later answers may use earlier ones
    for ex in found:
        solved = by_id[ex.stub_cell].source
        assert instructor.BEGIN in solved and "NotImplementedError" not in solved
        exec(solved, namespace)
        core.reset()
        assert getattr(checks, ex.check)(namespace[ex.function], verbose=False).passed is True, ex
        stub_ns = {"torch": torch}
        exec(next(c for c in student.cells if c.id == ex.stub_cell).source, stub_ns)
        assert getattr(checks, ex.check)(stub_ns[ex.function], verbose=False).passed is None, ex
    tests = [f"{ex.check}-test" for ex in found]  # nbgrader's autograded cells, one after each check cell
    ids = [c.id for c in teacher.cells]
    assert [ids[ids.index(ex.check_cell) + 1] for ex in found] == tests
    assert [i for i in ids if i not in tests] == [c.id for c in student.cells]
    unchanged = {ex.stub_cell for ex in found}  # and the written answers: their model answers (test_written_questions)
    unchanged |= {q.answer_cell for q in instructor.written_questions(student, path)}
    for s, t in zip(student.cells, [c for c in teacher.cells if c.id not in tests]):
        if s.id == delivery.SETUP_ID:  # under nbgrader's autograde, each submission's own data and results
            assert t.source == s.source.rstrip("\n") + "\n" + instructor.AUTOGRADE_SCRATCH
        elif s.id not in unchanged:
            assert s.source == t.source


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_every_check_of_a_lesson_is_an_exercise_the_generator_and_the_grader_find(path):
    import importlib
    import inspect

    module = importlib.import_module(f"kdtutor.checks.{instructor.lesson_module(path)}")
    declared = {name for name, fn in inspect.getmembers(module, inspect.isfunction)
                if fn.__module__ == module.__name__ and list(inspect.signature(fn).parameters)[:2] == ["fn", "verbose"]}
    assert {ex.check for ex in instructor.exercises(_read(path))} == declared


def test_the_exercise_finder_refuses_a_check_without_a_stub():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("f = checks.entropy_nats(f).fn", id="c1")])
    with pytest.raises(ValueError, match="no cell defining f"):
        instructor.exercises(nb)


def test_the_answer_to_every_predict_prompt_is_hidden_until_opened():
    """The code cell right after a "**Predict before you run:**" prompt keeps its stored output, collapsed in
    JupyterLab and behind a toggle on the website; no other cell is hidden."""
    from coursetools.course import notebooks

    hidden_count = 0
    for path in notebooks():
        nb = nbformat.read(path, as_version=4)
        waiting = False
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                waiting = waiting or "**Predict before you run" in cell.source
                continue
            hidden = cell.metadata.get("jupyter", {}).get("outputs_hidden") is True
            tagged = delivery.HIDE_TAG in cell.metadata.get("tags", [])
            assert hidden == tagged == waiting, f"{path.name} cell {cell.get('id')}: hidden {hidden}, after a prompt {waiting}"
            hidden_count += hidden
            waiting = False
    assert hidden_count >= 15  # the lessons ask for a prediction about 20 times


def test_hiding_follows_the_prompt_when_it_moves():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("**Predict before you run:** more or less?"),
                nbformat.v4.new_code_cell("print(1)"), nbformat.v4.new_code_cell("print(2)")]
    assert delivery.hide_predicted_outputs(nb) is True and delivery.hide_predicted_outputs(nb) is False
    assert [c.metadata.get("tags") for c in nb.cells[1:]] == [[delivery.HIDE_TAG], None]
    nb.cells[0].source = "No prompt any more."
    assert delivery.hide_predicted_outputs(nb) is True
    assert all("tags" not in c.metadata and "jupyter" not in c.metadata for c in nb.cells[1:])
