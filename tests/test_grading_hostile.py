"""Hostile submissions of lesson 01, graded together with an honest one in one run: a forged grade
log, patched checks, kdtutor's own answers handed in, and detached processes (double fork +
setsid, nohup) that try to write into another submission, the CSV, the data folder, the
grader's results and kdtutor's own source. Each earns no points and leaves every other row and
file as it was; nothing they started outlives their sandbox. Needs bubblewrap (.ci/run
installs it where it can)."""

import csv
import io
import os
import shutil
import time
from pathlib import Path

import nbformat
import pytest

import kdtutor.checks.core
from kdtutor.classroom import grading, instructor

ROOT = Path(__file__).resolve().parent.parent
LESSON = "01_softmax_temperature"
STUDENT = ROOT / "notebooks" / f"{LESSON}.ipynb"
TEACHER = ROOT / "instructor" / f"{LESSON}.ipynb"
ARTEFACTS = Path(os.environ.get("KDTUTOR_TEST_ARTEFACTS", ROOT / "results" / "test-artefacts"))
BOX = grading.find_sandbox()
MARKER = "kdtutor-hostile-daemon-marker"

pytestmark = pytest.mark.skipif(BOX.kind != "bubblewrap", reason=f"no sandbox to test: {BOX.why}")

FORGE = '''
import json, os
record = lambda c: json.dumps({"check": c, "function": c, "passed": True, "message": "✓ forged"})
for path in {os.environ.get("KDTUTOR_GRADE_LOG") or "checks.jsonl", "checks.jsonl", "/tmp/grade/checks.jsonl"}:
    try:
        with open(path, "a") as f:
            f.write("\\n".join(record(c) for c in ["stable_log_softmax", "entropy_nats", "temperature_for_entropy"]))
    except OSError:
        pass
print("KDTUTOR-VERDICTS " + json.dumps([{"status": "passed", "message": "✓ forged"}] * 3))
'''

PATCH = '''
import os
import kdtutor.checks as _c, kdtutor.checks.core as _core, kdtutor.checks.lesson01 as _l01

def _always(name, fn, reference, test, verbose=True, **kwargs):
    return _core.CheckResult(name, True, f"✓ {name}: all cases pass.", fn)

_core.run_check = _l01.run_check = _always
for _n in ["stable_log_softmax", "entropy_nats", "temperature_for_entropy"]:
    setattr(_c, _n, lambda fn, verbose=True, _n=_n: _core.CheckResult(_n, True, f"✓ {_n}: all cases pass.", fn))
os.makedirs("kdtutor/checks", exist_ok=True)  # a package that would shadow kdtutor if run from here
open("kdtutor/__init__.py", "w").close()
with open("kdtutor/checks/__init__.py", "w") as f:
    f.write("raise SystemExit('shadowed')")
try:
    with open(_core.__file__, "a") as f:  # patch the checks on disk
        f.write("\\nrun_check = lambda *a, **k: None\\n")
except OSError:
    pass
'''

KEY = {  # kdtutor's own answers, as a learner might hand them in
    "stable_log_softmax": "def stable_log_softmax(logits, T=1.0):\n    return log_softmax(logits, T=T)",
    "entropy_nats": ("def entropy_nats(probs):\n    def stub(*a):\n        raise NotImplementedError\n"
                     "    return checks.entropy_nats(stub, verbose=False).fn(probs)"),
    "temperature_for_entropy": ("def temperature_for_entropy(logits, target_entropy):\n"
                                "    import kdtutor.kd.softmax\n"
                                "    return kdtutor.kd.softmax.temperature_for_entropy(logits, target_entropy)"),
}

DAEMON = '''
import os, subprocess, sys
code = """
import sys, time
end = time.time() + 120
while time.time() < end:
    for target in sys.argv[2:]:
        try:
            with open(target, "a") as f:
                f.write("forged by a detached process\\\\n")
        except OSError:
            pass
    time.sleep(0.2)
"""
own = os.environ["KDTUTOR_DATA"]  # the sandbox's data folder: its prepared entries are read-only
argv = [sys.executable, "-c", code, MARKER, *TARGETS, os.path.join(own, "prepared.txt")]
pid = os.fork()
if pid == 0:  # double fork, new session: the classic daemon
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, argv)
    os._exit(0)
os.waitpid(pid, 0)
subprocess.Popen(["nohup", *argv], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
'''


def _insert_after(nb, predicate, source: str):
    i = next(i for i, c in enumerate(nb.cells) if predicate(c))
    nb.cells.insert(i + 1, nbformat.v4.new_code_cell(source, id=f"hostile-{i}"))


def _first_check(c) -> bool:
    return "= checks.stable_log_softmax(" in c.source


def _hostile_set(folder: Path, targets: list[str]) -> dict[str, Path]:
    """The notebooks of the hostile run, by learner id."""
    subs = {"honest": Path(shutil.copy(TEACHER, folder / "honest.ipynb"))}
    nb = nbformat.read(STUDENT, as_version=4)
    _insert_after(nb, _first_check, FORGE)
    nbformat.write(nb, subs.setdefault("forger", folder / "forger.ipynb"))
    nb = nbformat.read(STUDENT, as_version=4)
    _insert_after(nb, lambda c: "from kdtutor import checks" in c.source, PATCH)
    nbformat.write(nb, subs.setdefault("patcher", folder / "patcher.ipynb"))
    nb = nbformat.read(STUDENT, as_version=4)
    cells = {c.id: c for c in nb.cells}
    for ex in instructor.exercises(nb):
        cells[ex.stub_cell].source = KEY[ex.check]
    nbformat.write(nb, subs.setdefault("answer_key", folder / "answer_key.ipynb"))
    nb = nbformat.read(STUDENT, as_version=4)
    _insert_after(nb, _first_check, f"MARKER = {MARKER!r}\nTARGETS = {targets!r}\n" + DAEMON)
    nbformat.write(nb, subs.setdefault("daemon", folder / "daemon.ipynb"))
    return subs


def _alive_with_marker() -> list[int]:
    alive = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and MARKER.encode() in (proc / "cmdline").read_bytes():
                alive.append(int(proc.name))
        except OSError:
            pass
    return alive


def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()} if folder.is_dir() else {}


@pytest.mark.slow
def test_hostile_submissions_earn_nothing_and_touch_nothing_else(tmp_path):
    data, results = Path(os.environ["KDTUTOR_DATA"]), Path(os.environ["KDTUTOR_RESULTS"])
    data.mkdir(parents=True, exist_ok=True)
    results.mkdir(parents=True, exist_ok=True)
    (data / "prepared.txt").write_text("prepared data\n")
    out = tmp_path / "grades.csv"
    core_py = Path(kdtutor.checks.core.__file__)
    targets = [str(tmp_path / "class" / "honest.ipynb"), str(out), str(data / "prepared.txt"),
               str(data / "planted.txt"), str(results / "planted.txt"), str(core_py)]
    (tmp_path / "class").mkdir()
    subs = _hostile_set(tmp_path / "class", targets)
    before = {"honest": subs["honest"].read_bytes(), "core": core_py.read_bytes(),
              "data": _snapshot(data), "results": _snapshot(results)}

    grades = grading.grade(list(subs.values()), time_limit=300, jobs=2, progress=lambda line: None, sandbox=BOX)
    grading.write_csv(grades, out)
    written = out.read_text()
    time.sleep(2)  # a surviving daemon writes every 0.2 s

    assert _alive_with_marker() == []  # everything a submission started ended with its sandbox
    assert subs["honest"].read_bytes() == before["honest"] and core_py.read_bytes() == before["core"]
    assert _snapshot(data) == before["data"] and _snapshot(results) == before["results"]
    assert out.read_text() == written == grading.to_csv(grades)
    table = list(csv.DictReader(io.StringIO(written)))
    by = {}
    for row in table:
        if instructor.QUESTION_ID.match(row["exercise"]):  # a written answer, graded by hand: 0 points here
            assert row["points"] == "0", row
            continue
        by.setdefault(row["learner"], {})[row["exercise"]] = row
    assert set(by) == set(subs) and {r["sandbox"] for r in table} == {"bubblewrap"}
    points = {name: sum(int(r["points"]) for r in rows.values()) for name, rows in by.items()}
    full = sum(kdtutor.checks.core.points(e.check) for e in instructor.exercises(nbformat.read(STUDENT, as_version=4)))
    assert points == {"honest": full, "forger": 0, "patcher": 0, "answer_key": 0, "daemon": 0}
    assert {r["status"] for r in by["honest"].values()} == {"passed"}
    for name in ("forger", "patcher", "daemon"):
        assert {r["status"] for r in by[name].values()} == {"not attempted"}, by[name]
    for row in by["answer_key"].values():
        assert row["status"] == "failed" and "write it yourself: this calls" in row["message"], row
    assert "kdtutor.kd.softmax.log_softmax" in by["answer_key"]["stable_log_softmax"]["message"]
    assert "kdtutor.kd.softmax.temperature_for_entropy" in by["answer_key"]["temperature_for_entropy"]["message"]
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(out, ARTEFACTS / "grades_hostile.csv")


def test_inside_the_sandbox_the_submissions_read_as_empty_files_and_the_scratch_folder_is_writable(tmp_path):
    """A submission outside /tmp (here: the course's own lesson file) is readable but for the hiding."""
    import subprocess

    seen = subprocess.run(BOX.wrap(["cat", str(STUDENT)], tmp_path), capture_output=True).stdout
    hidden = subprocess.run(BOX.wrap(["cat", str(STUDENT)], tmp_path, hide=[STUDENT]), capture_output=True)
    assert seen == STUDENT.read_bytes() and hidden.returncode == 0 and hidden.stdout == b""
    wrote = subprocess.run(BOX.wrap(["sh", "-c", f"echo x > {grading.INSIDE}/mine; echo y > {STUDENT}"], tmp_path),
                           capture_output=True)
    assert (tmp_path / "mine").read_text() == "x\n" and STUDENT.read_bytes() == seen
    assert b"Read-only file system" in wrote.stderr


RUNNER_ATTACK = """def stable_log_softmax(logits, T=1.0):
    import json, os, signal
    forged = "KDTUTOR-VERDICTS " + json.dumps([{"status": "passed", "message": "forged"}] * 3) + "\\n"
    for fd in range(0, 20):
        try:
            with open(f"/proc/{os.getppid()}/fd/{fd}", "w") as f:
                f.write(forged)
        except OSError:
            pass
    os.kill(os.getppid(), signal.SIGKILL)
"""


def test_an_exercise_function_that_attacks_the_check_runner_forges_no_verdict(tmp_path):
    nb = nbformat.read(STUDENT, as_version=4)
    expected = instructor.exercises(nb)
    next(c for c in nb.cells if c.id == expected[0].stub_cell).source = RUNNER_ATTACK
    verdicts = grading.run_checks(nb, expected, tmp_path, BOX, "smoke")
    assert verdicts[expected[0].check]["status"] == "error", verdicts  # its own check: no verdict
    assert {verdicts[e.check]["status"] for e in expected[1:]} == {"not attempted"}, verdicts  # the others: theirs
    reached = {"timed_out": False, "died": None, "errors": [], "reached": [e.check_cell for e in expected]}
    assert sum(g.points for g in grading.grade_rows("x", LESSON, expected, verdicts, reached, 60)) == 0
