"""The graded homework (homework/hw1.ipynb, hw2.ipynb): per-student variants, hidden tests in
instructor/homework/, graded by coursetools.homework.grade_homework against the roster's id.

A correct submission earns every point, a partly wrong one part of them, a notebook copied from a
classmate (their id, their numbers) nothing, an untouched one nothing ("not attempted"), and a
cell that never ends an error within the time limit. The hidden tests' references are checked
against independent ones (numpy by hand, scipy's own paired t-test)."""

import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from coursetools.grading import find_sandbox
from coursetools.homework import (HOMEWORK_DIR, HOMEWORKS, INSTRUCTOR_DIR, STUDENT_ID_ROW, grade_homework,
                                  load_module, model_answers, notebook_student_id, problems, solved_notebook)

sys.path.insert(0, str(HOMEWORK_DIR))
import hwtools  # noqa: E402

ALICE, BOB = "s2026001", "s2026005"  # two roster ids whose variants differ in every graded number


@pytest.fixture(scope="module")
def sandbox():
    return find_sandbox()


def _write(nb, tmp_path: Path, name: str, student_id: str) -> Path:
    nb = nbformat.from_dict(nb)
    nb.cells[1].source = f'STUDENT_ID = "{student_id}"'
    path = tmp_path / name / f"{nb.metadata['kdtutor']['homework']}.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(nb, path)
    return path


def _with_answer(nb, name: str, source: str):
    nb = nbformat.from_dict(nb)
    (cell,) = [c for c in nb.cells if c.metadata.get("kdtutor", {}).get("homework_answer") == name]
    cell.source = source
    return nb


def _points(rows) -> tuple[int, int]:
    return sum(r.points for r in rows), sum(r.max_points for r in rows)


def _status(rows) -> dict:
    return {r.exercise: r.status for r in rows}


# ------------------------------------------------------------------ variants
def test_a_variant_depends_on_the_id_only_and_refuses_no_id():
    assert hwtools.variant("hw1", ALICE) == hwtools.variant("hw1", f"  {ALICE.upper()} ")
    assert hwtools.variant("hw1", ALICE) != hwtools.variant("hw1", BOB)
    assert hwtools.variant("hw1", ALICE)["run_seed"] != hwtools.variant("hw2", ALICE)["run_seed"]
    for bad in ("", "   ", hwtools.PLACEHOLDER, 12345, "x" * 65):
        with pytest.raises(ValueError, match="student id|STUDENT_ID"):
            hwtools.variant("hw1", bad)
    with pytest.raises(ValueError, match="homework must be one of"):
        hwtools.variant("hw3", ALICE)


def test_the_two_test_ids_differ_in_every_graded_number():
    a, b = hwtools.variant("hw1", ALICE), hwtools.variant("hw1", BOB)
    assert all(a[k] != b[k] for k in ("T", "lam", "run_seed"))
    a, b = hwtools.variant("hw2", ALICE), hwtools.variant("hw2", BOB)
    assert a["k"] != b["k"] and a["kd"] != b["kd"]


def test_the_digits_run_is_deterministic_and_names_bad_input():
    kd = lambda s, t, y: torch.nn.functional.cross_entropy(s, y)  # noqa: E731
    one, two = hwtools.digits_run(3, 30, loss_fn=kd, steps=20), hwtools.digits_run(3, 30, loss_fn=kd, steps=20)
    assert one["kd_acc"] == two["kd_acc"] == one["scratch_acc"] and one["kd_nll"] == two["kd_nll"]
    assert one["teacher_logits"].shape == (500, 10) and one["test_labels"].shape == (500,)
    with pytest.raises(ValueError, match="n_labelled"):
        hwtools.digits_run(3, 5)


# ------------------------------------------------------------------ the hidden tests' references
def test_hw1_references_match_a_numpy_computation_by_hand():
    tests = load_module(INSTRUCTOR_DIR / "hw1_tests.py", "_hw1_tests_check")
    v = {"T": 3.0, "alpha": 0.7, "eps": 0.1, "lam": 0.2}
    rng = np.random.default_rng(0)
    s, t, y = rng.normal(size=(4, 5)), rng.normal(size=(4, 5)) * 2, np.array([0, 3, 1, 4])

    def softmax(z):
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    smooth = np.full((4, 5), 0.1 / 5)
    smooth[np.arange(4), y] += 0.9
    ce = -(smooth * np.log(softmax(s))).sum(1)
    pt, ps = softmax(t / 3), softmax(s / 3)
    kl = (pt * np.log(pt / ps)).sum(1)
    trust = softmax(t)[np.arange(4), y]
    want = np.mean(0.3 * ce + 0.7 * trust * 9 * kl)
    got = tests.reference_weighted_kd(torch.tensor(s), torch.tensor(t), torch.tensor(y), v)
    assert got.item() == pytest.approx(want, rel=1e-12)
    mix = 0.2 * pt + 0.8 * ps
    assert tests.reference_skew_kl(torch.tensor(s), torch.tensor(t), v).item() == pytest.approx(
        9 * np.mean((pt * np.log(pt / mix)).sum(1)), rel=1e-12)


def test_hw2_references_match_scipy_and_a_count_by_hand():
    from scipy import stats

    tests = load_module(INSTRUCTOR_DIR / "hw2_tests.py", "_hw2_tests_check")
    v = hwtools.variant("hw2", ALICE)
    ci = stats.ttest_rel(v["kd"], v["scratch"]).confidence_interval(0.95)
    assert tests.reference_interval(v) == pytest.approx((ci.low, ci.high), abs=1e-10)
    s = torch.tensor([[3.0, 2.0, 1.0, 0.0], [0.0, 1.0, 2.0, 3.0], [1.0, 3.0, 0.0, 2.0]])
    t = torch.tensor([[0.0, 0.0, 5.0, 0.0], [5.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 5.0]])
    # teacher's classes 2, 0, 3; the student's ranks of them: 3rd, 4th, 2nd
    assert [tests.reference_topk_agreement(s, t, k) for k in (1, 2, 3, 4)] == pytest.approx([0, 1 / 3, 2 / 3, 1])


# ------------------------------------------------------------------ grading submissions
WRONG = {  # one wrong answer per homework: only its problem (and what uses it) loses points
    "hw1": ("skew_kl", "def skew_kl(student_logits, teacher_logits):\n    T, lam = V['T'], V['lam']\n"
                       "    pt = F.softmax(teacher_logits / T, 1)\n"
                       "    mix = (1 - lam) * pt + lam * F.softmax(student_logits / T, 1)\n"
                       "    return T**2 * F.kl_div(mix.log(), pt, reduction='batchmean')"),
    "hw2": ("CI", "from scipy import stats\nd = [k - s for k, s in zip(V['kd'], V['scratch'])]\n"
                  "m = sum(d) / len(d)\nsd = math.sqrt(sum((x - m) ** 2 for x in d) / (len(d) - 1))\n"
                  "half = 1.96 * sd / math.sqrt(len(d))\nCI_LOW, CI_HIGH = m - half, m + half\n"
                  "VERDICT = 'gain' if CI_LOW > 0 else 'loss' if CI_HIGH < 0 else 'no difference'"),
}


@pytest.mark.slow
@pytest.mark.parametrize("homework", HOMEWORKS)
def test_correct_wrong_copied_and_untouched_submissions(homework, tmp_path, sandbox):
    solved = solved_notebook(homework)
    names = [p.name for p in problems(homework)]
    correct = grade_homework(_write(solved, tmp_path, "alice", ALICE), ALICE, sandbox=sandbox)
    assert [r.exercise for r in correct] == names + [STUDENT_ID_ROW]
    assert all(r.status == "passed" for r in correct), [(r.exercise, r.message) for r in correct]
    got, worth = _points(correct)
    assert got == worth and worth >= 7

    wrong_name, wrong_source = WRONG[homework]
    wrong_nb = _with_answer(solved, wrong_name, wrong_source)
    wrong = grade_homework(_write(wrong_nb, tmp_path, "carol", ALICE), ALICE, sandbox=sandbox)
    assert _status(wrong)[wrong_name] == "failed"
    assert 0 < _points(wrong)[0] < worth

    copied_path = _write(solved, tmp_path, "bob", ALICE)  # Alice's notebook, handed in by Bob
    copied = grade_homework(copied_path, BOB, sandbox=sandbox)
    assert _points(copied) == (0, worth)
    assert all(r.status == "failed" for r in copied), [(r.exercise, r.message) for r in copied]
    assert "not 's2026005'" in copied[-1].message and "your variant" in " ".join(r.message for r in copied)

    untouched = nbformat.read(HOMEWORK_DIR / f"{homework}.ipynb", as_version=4)
    rows = grade_homework(_write(untouched, tmp_path, "dave", BOB), BOB, sandbox=sandbox)
    assert _points(rows) == (0, worth)
    assert {r.status for r in rows[:-1]} == {"not attempted"}


@pytest.mark.slow
def test_a_cell_that_never_ends_is_an_error_within_the_time_limit(tmp_path, sandbox):
    nb = _with_answer(solved_notebook("hw2"), "AGREE", "while True:\n    pass")
    rows = grade_homework(_write(nb, tmp_path, "eve", ALICE), ALICE, problem_time_limit=3, time_limit=60,
                          sandbox=sandbox)
    assert {r.status for r in rows[:-1]} == {"error"}
    assert "longer than 3 s" in rows[0].message


def test_the_roster_id_must_be_an_id_and_the_notebook_a_homework(tmp_path):
    path = _write(solved_notebook("hw1"), tmp_path, "alice", ALICE)
    with pytest.raises(ValueError, match="STUDENT_ID"):
        grade_homework(path, "")
    other = tmp_path / "lesson.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), other)
    with pytest.raises(ValueError, match="which homework"):
        grade_homework(other, ALICE)


def test_each_answer_cell_has_a_model_answer_and_the_id_is_read_not_run():
    for homework in HOMEWORKS:
        nb = nbformat.read(HOMEWORK_DIR / f"{homework}.ipynb", as_version=4)
        cells = {c.metadata.get("kdtutor", {}).get("homework_answer") for c in nb.cells} - {None}
        assert cells == set(model_answers(homework)) and cells
        assert nb.metadata["kdtutor"]["homework"] == homework
        assert "raise NotImplementedError" in "".join(c.source for c in nb.cells)
    assert notebook_student_id(["import os", "STUDENT_ID = 's1'", "STUDENT_ID = input()"]) == "s1"
    assert notebook_student_id(["STUDENT_ID = make_id()"]) is None


def test_no_homework_problem_is_implemented_in_kdtutor():
    """The functions the homework asks for are not the package's: no kdtutor module defines them."""
    import ast

    root = Path(__file__).resolve().parents[1] / "kdtutor"
    defined = {n.name for p in root.rglob("*.py") for n in ast.walk(ast.parse(p.read_text()))
               if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    asked = {p.name for hw in HOMEWORKS for p in problems(hw) if p.name[0].islower()}
    assert asked == {"kd_loss_weighted", "skew_kl", "topk_agreement"} and not asked & defined


@pytest.mark.slow
@pytest.mark.parametrize("homework", HOMEWORKS)
def test_the_solved_notebook_runs_top_to_bottom_as_a_learner_runs_it(homework, tmp_path):
    """In a kernel started in homework/ (as Jupyter starts it), the model answers run without an error."""
    from nbclient import NotebookClient

    nb = solved_notebook(homework)
    nb.cells[1].source = f'STUDENT_ID = "{ALICE}"'
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(HOMEWORK_DIR)}}).execute()
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "not attempted" not in printed and "solve Problem 1 first" not in printed  # (a raising cell would stop it)
    assert {"hw1": "same logits: OK", "hw2": "(should be 1.0): 1.0"}[homework] in printed
