"""Lessons 03-05 and 08 run the learner's own code (issue 20): a plain loop trains lesson 03's first model
before ``fit`` appears, the learner's ``kd_step`` drives lesson 04's loop, and every exercise
function is called again after its check, before the results that use it; lesson 02 ends with a
short distillation on digits whose loop and loss (the learner's kd_term) are in plain sight (issue 35).
Lesson 08's one-page recipe (issue 32) is at most 15 lines of calls to functions that exist, with the
arguments they take."""

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
LESSONS = ("03_teacher_training", "04_distilling_a_student", "05_evaluating_distillation", "08_distil_your_own_model")


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
    assert loop < first(cells, r"few_labels\.sweep_t_alpha\(")


def test_lesson_04s_headline_is_the_few_labels_experiment_judged_by_the_one_rule():
    cells = code_cells("04_distilling_a_student")
    run = first(cells, r"few_labels\.run\(")
    assert "fl.label_counts" in cells[run] and "profile.seeds" in cells[run] and "T=T_best" in cells[run]
    assert first(cells, r"few_labels\.sweep_t_alpha\(") < run  # T and α chosen on validation first
    later = "".join(cells[run:])
    assert "headline.verdict(n)" in later and "headline.verdict(n, 'kd')" in later
    assert not any(re.search(r"reliabl|inconclusive", c) for c in cells), "a verdict typed into lesson 04, not the rule's"


def test_lesson_05_writes_its_metrics_before_the_report_card_uses_them():
    cells = code_cells("05_evaluating_distillation")
    uses = exercise_uses(cells)
    card = first(cells, r"report_card\(")
    assert all(check < card for check, _ in uses.values())
    assert all(f'"{name}": {name}' in cells[card] for name in ("top1_agreement", "expected_calibration_error", "macro_f1"))
    seeds = first(cells, r"summarize_seeds\(\[")
    assert "stats.summarize_seeds" not in cells[seeds]


def test_lesson_08_recipe_is_fifteen_lines_of_calls_to_kdtutor_as_it_is():
    import ast
    import importlib
    import inspect

    cells = json.loads((NOTEBOOKS / "08_distil_your_own_model.ipynb").read_text())["cells"]
    text = next("".join(c["source"]) for c in cells if c["cell_type"] == "markdown" and "## 7. The whole job" in
                "".join(c["source"]))
    recipe = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    lines = [line for line in recipe.splitlines() if line.strip()]
    assert len(lines) <= 15, f"the recipe has {len(lines)} lines"
    tree = ast.parse(recipe)
    called = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
            called.add(node.func.value.id)
            if node.func.value.id in ("image_folder", "distill", "train", "recipes", "evaluate"):
                fn = getattr(importlib.import_module(f"kdtutor.images.{node.func.value.id}"), node.func.attr)
                inspect.signature(fn).bind(*node.args, **{k.arg: k.value for k in node.keywords})  # takes them
    assert {"image_folder", "distill", "recipes", "evaluate"} <= called
    for code in [c for c in cells if c["cell_type"] == "code"]:  # the lesson runs the calls it shows
        if "compare_scratch_vs_kd(" in "".join(code["source"]):
            break
    else:
        raise AssertionError("lesson 08 never runs compare_scratch_vs_kd")


def test_lesson_08_recipe_runs_as_printed_on_a_small_mixed_size_folder(tmp_path, monkeypatch):
    """The fifteen lines, executed verbatim with the lesson's constructors on a folder of mixed sizes."""
    import torch

    from kdtutor.images import image_folder
    from kdtutor.images.standin import make_standin

    cells = json.loads((NOTEBOOKS / "08_distil_your_own_model.ipynb").read_text())["cells"]
    text = next("".join(c["source"]) for c in cells if c["cell_type"] == "markdown" and "## 7. The whole job" in
                "".join(c["source"]))
    recipe = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    models = next("".join(c["source"]) for c in cells if c.get("id") == "models")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(image_folder, "CACHE_DIR", tmp_path / "cache")  # never into data/
    standin = make_standin(400, 40, 80, seed=0)
    image_folder.export_classes(standin, tmp_path / "my_images", standin.classes[:4], sizes=(24, 48), fmt="png")
    names = {"nn": torch.nn, "my_data": image_folder.load_image_folder("my_images", size=32, progress=False)}
    exec(models.split("\n\nepochs_teacher")[0], names)  # make_teacher, make_student as the lesson defines them
    torch.save(names["make_teacher"](0).state_dict(), "my_teacher.pth")  # "your" teacher (untrained: the calls)
    for module in ("image_folder", "distill", "recipes", "train", "evaluate"):
        names[module] = __import__(f"kdtutor.images.{module}", fromlist=[module])
    exec(recipe, names)
    assert set(names["card"]) == {"teacher", "scratch", "distilled"} and len(names["comparison"].scratch) == 3
    assert names["card"]["distilled"].dataset == "my_images (image folder, resized to 32×32)"


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
