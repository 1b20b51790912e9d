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
from coursetools import grading, instructor

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


OUTSIDE_TMP = pytest.mark.skipif(ROOT.is_relative_to("/tmp"), reason="the checkout is under /tmp, which the sandbox "
                                 "replaces with an empty private /tmp: none of it is visible there to hide or to show "
                                 "(this test needs a checkout outside /tmp)")


@OUTSIDE_TMP
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


# --------------------------------------------------------------------------- issue 36: one `kdtutor grade` run
FD_FORGER = '''def stable_log_softmax(logits, T=1.0):
    import json, os, sys
    if "ipykernel" in sys.modules:  # in the lesson: look like a stub
        raise NotImplementedError
    line = "KDTUTOR-VERDICTS " + json.dumps({"status": "passed", "message": "=HYPERLINK(1)"})
    for fd in range(3, 64):
        try:
            os.write(fd, (line + "\\n").encode())
        except OSError:
            pass
    os._exit(0)
'''

DEFAULT_ARG = '''from kdtutor import checks as _c
from kdtutor.checks import core as _core
def stable_log_softmax(logits, T=1.0, _=[setattr(_c, n, lambda fn, verbose=True, n=n: _core.CheckResult(
        n, True, "✓ forged", fn)) for n in ("stable_log_softmax", "entropy_nats", "temperature_for_entropy")]):
    return logits * 0
'''
WRONG = {"entropy_nats": "def entropy_nats(probs):\n    return probs.sum(dim=-1) * 0",
         "temperature_for_entropy": "def temperature_for_entropy(logits, target_entropy):\n    return 1.0"}

READER = '''def stable_log_softmax(logits, T=1.0):
    import glob, os
    found = ["token=" + os.environ.get("FAKE_SECRET_TOKEN", "none")]
    for pattern in PATTERNS:
        for path in filter(os.path.isfile, glob.glob(pattern, recursive=True)):  # (glob names a missing folder/**)
            try:
                found.append(path + ":" + open(path, errors="replace").read(100))
            except OSError:
                found.append(path)
    raise ValueError("LEAK " + " ## ".join(found))
'''

FLOOD = '''def stable_log_softmax(logits, T=1.0):
    import os, sys
    if "ipykernel" not in sys.modules and not globals().get("_flooded"):
        globals()["_flooded"] = True
        block = b"x" * (1 << 20)
        for fd in range(3, 64):
            try:
                for _ in range(FLOOD_MB):
                    os.write(fd, block)
            except OSError:
                pass
    m = logits.max(dim=-1, keepdim=True).values
    z = (logits - m) / T
    return z - z.exp().sum(dim=-1, keepdim=True).log()
'''
FLOOD_MB = 2048

DEEP_FOLDERS = '''import os
_start = os.getcwd()
for _ in range(3000):
    os.mkdir("d")
    os.chdir("d")
os.chdir(_start)
'''

FIFO_DAEMON = '''import os, stat, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        end = time.time() + 900
        while time.time() < end:
            try:
                if not stat.S_ISFIFO(os.lstat("run.json").st_mode):
                    os.unlink("run.json")
                    os.mkfifo("run.json")
            except FileNotFoundError:
                os.mkfifo("run.json")
            except OSError:
                pass
            time.sleep(0.001)
    os._exit(0)
'''


def _stub_replaced(sources: dict, out: Path) -> Path:
    """The student's copy of lesson 01 with the stubs of ``sources`` (by check) replaced."""
    nb = nbformat.read(STUDENT, as_version=4)
    cells = {c.id: c for c in nb.cells}
    for ex in instructor.exercises(nb):
        if ex.check in sources:
            cells[ex.stub_cell].source = sources[ex.check]
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    return out


def _small(source: str, out: Path) -> Path:
    """A one-cell notebook of lesson 01 (no exercise in it)."""
    nb = nbformat.v4.new_notebook(metadata={"kdtutor": {"lesson": LESSON}},
                                  cells=[nbformat.v4.new_code_cell(source, id="only")])
    nbformat.write(nb, out)
    return out


def _teacher_json() -> dict:
    import json

    return json.loads(TEACHER.read_text())


def _write_json(nb: dict, out: Path) -> Path:
    import json

    out.write_text(json.dumps(nb))
    return out


def _class_of_issue_36(folder: Path, patterns: list[str]) -> dict[str, Path]:
    """The submissions of issue 36's grader cases, by the learner id the grader must give them."""
    subs = {"honest": Path(shutil.copy(TEACHER, folder / "honest.ipynb"))}
    subs["=forger"] = _stub_replaced({"stable_log_softmax": FD_FORGER}, folder / "=forger.ipynb")
    subs["g4/carol"] = _stub_replaced({"stable_log_softmax": f"PATTERNS = {patterns!r}\n" + READER},
                                      folder / "g4" / "carol")  # no .ipynb
    subs["g4/carol.ipynb"] = _stub_replaced({"stable_log_softmax": DEFAULT_ARG, **WRONG}, folder / "g4" / "carol.ipynb")
    nb = _teacher_json()  # nbformat 4.4: no cell ids
    nb["nbformat_minor"] = 4
    for cell in nb["cells"]:
        cell.pop("id", None)
    subs["nbformat44"] = _write_json(nb, folder / "nbformat44.ipynb")
    nb = _teacher_json()  # metadata and sources of the wrong types
    markdown = [c for c in nb["cells"] if c["cell_type"] == "markdown"]
    markdown[0]["metadata"]["kdtutor"] = "x"
    markdown[1]["source"] = 12
    del markdown[2]["source"]
    subs["bad_types"] = _write_json(nb, folder / "bad_types.ipynb")
    nb = _teacher_json()  # an expression too deep to unparse in an exercise (5,000 terms: test_grading.py)
    stub = next(c for c in nb["cells"] if "def entropy_nats(" in "".join(c["source"]))
    stub["source"] = "".join(stub["source"]).replace("return -p_log_p.sum(dim=-1)",
                                                     "return -p_log_p.sum(dim=-1)" + " + 0" * 400)
    subs["deep_expr"] = _write_json(nb, folder / "deep_expr.ipynb")
    nb = nbformat.read(TEACHER, as_version=4)  # 2 GB on the check's stdout, 3,000 nested folders in its run
    next(c for c in nb.cells if "def stable_log_softmax(" in c.source).source = f"FLOOD_MB = {FLOOD_MB}\n" + FLOOD
    nb.cells.insert(3, nbformat.v4.new_code_cell(DEEP_FOLDERS, id="deep-folders"))
    nbformat.write(nb, folder / "flood_deep.ipynb")
    subs["flood_deep"] = folder / "flood_deep.ipynb"
    subs["dir_report"] = _small('import os\nos.makedirs("run.json/inside", exist_ok=True)', folder / "dir_report.ipynb")
    subs["fifo_report"] = _small(FIFO_DAEMON, folder / "fifo_report.ipynb")
    (folder / "passwd.ipynb").symlink_to("/etc/passwd")
    subs["passwd"] = folder / "passwd.ipynb"
    (folder / "teacher.ipynb").symlink_to(TEACHER)
    subs["teacher"] = folder / "teacher.ipynb"
    return subs


@pytest.mark.slow
def test_issue_36_each_submission_gets_only_its_own_rows_and_reads_nothing_it_should_not(tmp_path):
    """Through the real `python -m coursetools grade`: forged verdicts on every descriptor and a default
    argument that patches the checks change no other exercise's verdict; a crash or flood in one
    submission is that submission's rows only; no secret of the grader's comes back; links out
    of the submissions' folder are refused; ids stay relative and distinct; every learner text is
    escaped in the CSV."""
    import subprocess
    import sys

    folder, out_dir, tmpdir = tmp_path / "class", tmp_path / "out", tmp_path / "tmpdir"
    for f in (folder / "g4" / ".ipynb_checkpoints", out_dir, tmpdir):
        f.mkdir(parents=True)
    secrets = {"token": "s3cr3t-kdtutor-token", "checkpoint": "CHECKPOINT-MARKER", "late": "LATE-MARKER",
               "last week": "LASTWEEK-MARKER"}
    (folder / "g4" / ".ipynb_checkpoints" / "carol-checkpoint.ipynb").write_text(secrets["checkpoint"])
    (folder / "late.ipynb").write_text(secrets["late"])
    (out_dir / "last-week.csv").write_text(secrets["last week"])
    patterns = [f"{ROOT}/solutions/*.py", f"{ROOT}/instructor/*.ipynb", f"{ROOT}/results/**/*.csv", f"{ROOT}/.git/*",
                f"{folder}/**", f"{folder}/**/.ipynb_checkpoints/*", f"{out_dir}/*", f"{tmpdir}/**"]
    subs = _class_of_issue_36(folder, patterns)
    out = out_dir / "grades.csv"
    env = {**os.environ, "FAKE_SECRET_TOKEN": secrets["token"], "TMPDIR": str(tmpdir), "PYTHONPATH": str(ROOT)}
    measure = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
               "print('MAXRSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", measure, sys.executable, "-m", "coursetools", "grade",
                           *map(str, subs.values()), "--out", str(out), "--jobs", "2", "--time-limit", "300"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    maxrss_kb = int(done.stdout.split("MAXRSS")[-1])
    text = out.read_text()
    table = list(csv.DictReader(io.StringIO(text)))
    by = {}
    for row in table:
        if not instructor.QUESTION_ID.match(row["exercise"]):
            by.setdefault(row["learner"], {})[row["exercise"]] = row
    ids = {("'" + name if name.startswith("=") else name) for name in subs}
    assert set(by) == ids, (sorted(by), done.stdout[-3000:])  # every submission has its rows
    status = {name: {ex: r["status"] for ex, r in rows.items()} for name, rows in by.items()}
    points = {name: sum(int(r["points"]) for r in rows.values()) for name, rows in by.items()}
    full = {ex: "passed" for ex in ("stable_log_softmax", "entropy_nats", "temperature_for_entropy")}

    assert status["honest"] == full and points["honest"] == 4
    for name in ("nbformat44", "bad_types"):  # read as the notebooks they are
        assert status[name] == full, by[name]
    # item 1: the forger's descriptors reach only its own check; the default argument patches nothing that counts
    forger = by["'=forger"]
    assert {forger[ex]["status"] for ex in ("entropy_nats", "temperature_for_entropy")} == {"not attempted"}
    assert points["'=forger"] <= 1
    assert all(not r["message"].startswith("=") for r in table)
    assert status["g4/carol.ipynb"] == {ex: "failed" for ex in full} and points["g4/carol.ipynb"] == 0
    # item 2: each fault is its own rows
    assert status["deep_expr"]["stable_log_softmax"] == status["deep_expr"]["temperature_for_entropy"] == "passed"
    assert status["deep_expr"]["entropy_nats"] in {"passed", "error"}
    assert status["flood_deep"]["entropy_nats"] == status["flood_deep"]["temperature_for_entropy"] == "passed"
    assert maxrss_kb < 1_500_000, maxrss_kb  # 2 GB on a check's stdout, read in bounded memory
    for name in ("dir_report", "fifo_report"):
        assert {r["status"] for r in by[name].values()} == {"error"} and {r["lesson"] for r in by[name].values()} == {LESSON}
    # item 3: the reader's message says what it found: no secret, no other file of the class, the course or the grader
    leak = by["g4/carol"]["stable_log_softmax"]
    assert leak["status"] == "failed" and "LEAK token=none" in leak["message"], leak
    for secret in secrets.values():
        assert secret not in text
    for place in (str(ROOT), str(folder), str(out_dir), str(tmpdir), "kdtutor-grade-"):
        assert place not in leak["message"], leak["message"]
    # item 4: links out of the class folder are refused, never read; ids stay relative
    for name in ("passwd", "teacher"):
        assert [(r["status"], r["points"]) for r in by[name].values()] == [("error", "0")]
        assert "link that leads outside" in next(iter(by[name].values()))["message"]
    assert "root:" not in text and not any(r["learner"].startswith("/") for r in table)
    assert list(tmpdir.iterdir()) == []  # every scratch folder removed


@OUTSIDE_TMP
def test_the_sandbox_hides_the_course_checkout_and_the_scratch_root_but_not_the_python_it_needs(tmp_path):
    """What issue 36 found readable (solutions/, instructor/, results/, .git, the other jobs' scratch
    folders wherever TMPDIR is): empty in the sandbox; kdtutor and Python still import."""
    import subprocess
    import sys

    scratch_root = ROOT / "book"  # stands for a TMPDIR outside /tmp (tests write only under /tmp)
    hidden = grading.hidden_folders([tmp_path / "class" / "alice.ipynb"], tmp_path / "grades.csv", scratch_root)
    assert {ROOT / "solutions", ROOT / "instructor", scratch_root} <= set(hidden)
    look = ("import glob, kdtutor.checks; print([len(glob.glob(p + '/*')) for p in %r])"
            % [str(ROOT / "solutions"), str(ROOT / "instructor"), str(scratch_root), str(ROOT / "kdtutor")])
    (tmp_path / "box").mkdir()
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)}
    seen = subprocess.run(BOX.wrap([sys.executable, "-c", look], tmp_path / "box", hidden=hidden),
                          capture_output=True, text=True, env=env)
    assert seen.returncode == 0, seen.stderr[-2000:]
    solutions, instructor_copies, scratch, package = eval(seen.stdout)
    assert (solutions, instructor_copies, scratch) == (0, 0, 0) and package > 5, seen.stdout
    outside = [len(list(p.glob("*"))) for p in (ROOT / "solutions", ROOT / "instructor", scratch_root)]
    assert min(outside) > 0  # (they are there, outside the sandbox)
