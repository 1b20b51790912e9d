"""Lessons 03-05 run the learner's own code (issue 20): a plain loop trains lesson 03's first model
before ``fit`` appears, the learner's ``kd_step`` drives lesson 04's loop, and every exercise
function is called again after its check, before the results that use it; lesson 02 ends with a
short distillation on digits whose loop and loss (the learner's kd_term) are in plain sight (issue 35)."""

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
LESSONS = ("03_teacher_training", "04_distilling_a_student", "05_evaluating_distillation")


def code_cells(lesson: str) -> list[str]:
    cells = json.loads((NOTEBOOKS / f"{lesson}.ipynb").read_text())["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


def first(cells: list[str], pattern: str) -> int:
    hits = [i for i, s in enumerate(cells) if re.search(pattern, s)]
    assert hits, f"no code cell matches {pattern!r}"
    return hits[0]


def exercise_uses(cells: list[str]) -> dict[str, tuple[int, list[int]]]:
    """``{name: (check cell, [later cells calling it])}``; a call after the check in its own cell counts."""
    out = {}
    for i, s in enumerate(cells):
        for m in re.finditer(r"(\w+) = checks\.(\w+)\(\1\)\.fn", s):
            name, rest = m.group(1), s[m.end():]
            later = [i] if re.search(rf"\b{name}\(", rest) else []
            later += [j for j in range(i + 1, len(cells)) if re.search(rf"\b{name}\b", cells[j])]
            out[name] = (i, later)
    return out


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_exercise_is_called_again_after_its_check(lesson):
    uses = exercise_uses(code_cells(lesson))
    assert uses, f"{lesson} has no exercise"
    unused = sorted(name for name, (_, later) in uses.items() if not later)
    assert not unused, f"{lesson}: exercises never used after their check: {unused}"


def test_lesson_03_trains_its_first_model_with_a_plain_loop_before_fit():
    cells = code_cells("03_teacher_training")
    loop = first(cells, r"\.backward\(\)")
    assert re.search(r"optimizer\.step\(\)", cells[loop]) and "zero_grad" in cells[loop]
    assert loop < first(cells, r"get_teacher\(|train\.fit\(")
    assert first(cells, r"first_model") == loop and any("first_model" in s for s in cells[loop + 1:])  # used later


def test_lesson_04_distils_a_student_with_the_learners_kd_step_before_the_library_runs():
    cells = code_cells("04_distilling_a_student")
    check, later = exercise_uses(cells)["kd_step"]
    assert later, "the learner's kd_step is never used after its check"
    loop = later[0]
    assert "for batch in" in cells[loop] and "lr_factor" in cells[loop] and "prepare_run" in cells[loop]
    compare = first(cells, r"max_weight_difference")
    assert compare == loop + 1 and "distill_student" in cells[compare] and "assert agree" in cells[compare]
    assert loop < first(cells, r"distill\.sweep\(")


def test_lesson_05_writes_its_metrics_before_the_report_card_uses_them():
    cells = code_cells("05_evaluating_distillation")
    uses = exercise_uses(cells)
    card = first(cells, r"report_card\(")
    assert all(check < card for check, _ in uses.values())
    assert all(f'"{name}": {name}' in cells[card] for name in ("top1_agreement", "expected_calibration_error", "macro_f1"))
    seeds = first(cells, r"summarize_seeds\(\[")
    assert "stats.summarize_seeds" not in cells[seeds]


def test_lesson_02_ends_with_a_digits_distillation_in_plain_sight_with_the_learners_kd_term():
    """Issue 35: the whole map early, in at most 25 lines: a plain loop, the learner's kd_term, scratch vs distilled."""
    cells = code_cells("02_losses_ce_kl_mse")
    check, later = exercise_uses(cells)["kd_term"]
    data = first(cells, r"load_digits\(")
    run = data + 1
    assert check < data, "the digits distillation must come after the learner wrote kd_term"
    assert "zero_grad" in cells[data] and ".backward()" in cells[data] and ".step()" in cells[data]
    assert run in later and re.search(r"\bkd_term\(out, teacher_logits", cells[run])
    assert "torch.no_grad()" in cells[run] and "student from scratch" in cells[run] and "digits.name" in cells[run]
    assert sum(1 for s in cells[data:run + 1] for line in s.splitlines() if line.strip()) <= 25
