"""coursetools.course: the one-page summary of a course run."""

import nbformat
import pytest

from coursetools import course
from kdtutor.storage import save_json


def _row(name, acc):
    return {"name": name, "dataset": "stand-in (synthetic shapes, NOT CIFAR-10)", "n": 500, "accuracy": acc,
            "agreement": 0.5, "ece": 0.05, "params": 1000, "latency_ms": {"1": 1.0, "256": 9.0}, "device": "cpu"}


def test_summary_is_built_from_saved_metrics_and_labels_the_standin(tmp_path):
    metrics = tmp_path / "metrics"
    save_json({"dataset": "stand-in (synthetic shapes, NOT CIFAR-10)", "is_standin": True, "student": "cnn_tiny",
               "teacher": "airbench_small", "T": 4.0, "alpha": 0.9, "seeds": [0, 1],
               "card": {"teacher": _row("teacher", 0.9), "scratch": _row("scratch", 0.7),
                        "distilled": _row("distilled", 0.75)},
               "per_seed": {"scratch": {"accuracy": [0.7, 0.72], "agreement": [0.6, 0.6], "ece": [0.1, 0.1]},
                            "distilled": {"accuracy": [0.75, 0.77], "agreement": [0.7, 0.7], "ece": [0.05, 0.07]}}},
              metrics / "05_report.json")
    path = course.write_summary("smoke", tmp_path, [("05_evaluating_distillation.ipynb", 12.0)])
    text = path.read_text()
    assert "Stand-in data" in text and "NOT CIFAR-10" in text
    assert "| distilled | 75.00 % | 50.00 % | 5.00 % | 1,000 | 1 | 9 |" in text
    assert "| distilled | 76.00 ± 1.41 % |" in text  # mean ± sample std over seeds
    assert "| 05_evaluating_distillation.ipynb | 12 |" in text


def test_summary_shows_the_few_labels_experiment_with_the_one_verdict_rule(tmp_path):
    test = {"scratch@250": [0.39, 0.40, 0.38], "kd@250": [0.43, 0.44, 0.43], "kd+unlabelled@250": [0.57, 0.58, 0.575]}
    save_json({"dataset": "CIFAR-10 (JPEG copy)", "is_standin": False, "student": "cnn_tiny", "teacher": "t",
               "T": 4.0, "alpha": 0.9, "seeds": [1, 2, 3], "sweep_seed": 0, "n_train": 10000,
               "sweep": {"temperatures": [2.0, 4.0], "alphas": [0.5, 0.9], "val_acc": [[0.5, 0.6], [0.55, 0.6]]},
               "few_labels": {"label_counts": [250], "seeds": [1, 2, 3], "budget": {"steps": 200, "batch_size": 128,
                              "T": 4.0, "alpha": 0.9, "mirror": True}, "val": test,
                              "test": test},
               "dark_knowledge": {"dataset": "digits", "recall3": {"distilled": 0.8}}},
              tmp_path / "metrics" / "04_distill.json")
    text = course.write_summary("cpu", tmp_path, []).read_text()
    assert "| 250 | 39.00 ± 1.00 | 43.33 ± 0.58 | 57.50 ± 0.50 | +18.50 [" in text
    assert "(c) KD + unlabelled images is reliably better than (a) scratch on the labels" in text  # the one rule
    assert "seed 0" in text and "10,000 unlabelled images" in text and "200 steps" in text


@pytest.mark.slow
def test_a_smoke_course_run_labels_every_data_result_as_standin(tmp_path):
    """Executes lessons 03–05 (smoke profile) and reads what a learner would see: the summary and
    every printed output. Nothing computed on the stand-in may be shown as a CIFAR-10 result."""
    import re

    summary_path = course.run_course("smoke", results_dir=tmp_path, lessons=["03", "04", "05"])
    assert summary_path == tmp_path / "smoke" / "summary.md"
    summary = summary_path.read_text()
    assert "Data set: **stand-in (synthetic shapes, NOT CIFAR-10)**" in summary and "Stand-in data" in summary
    assert "CIFAR-10 (JPEG copy)" not in summary
    executed = sorted((tmp_path / "smoke" / "notebooks").glob("*.ipynb"))
    assert [p.name[:2] for p in executed] == ["03", "04", "05"]
    for path in executed:
        nb = nbformat.read(path, as_version=4)
        shown = "\n".join(str(out.get("text", "")) + str(out.get("data", {}).get("text/markdown", ""))
                          for cell in nb.cells for out in getattr(cell, "outputs", []))
        assert "NOT CIFAR-10" in shown, f"{path.name} never names the stand-in in what it prints"
        for line in shown.splitlines():
            if re.search(r"\d\s?%", line) and ("CIFAR-10" in line or "stand-in" in line):
                assert "NOT CIFAR-10" in line, f"{path.name}: {line}"


@pytest.mark.slow
def test_the_course_command_says_what_it_runs_on_and_how_long_it_should_take(tmp_path):
    """``python -m coursetools course`` (make course) opens with the profile, the data it checked, the
    recorded time and where results go, then a line per lesson with its expected and actual time;
    the kernels' TCP warning is not printed."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "KDTUTOR_RESULTS": str(tmp_path), "MPLBACKEND": "Agg"}
    run = subprocess.run([sys.executable, "-m", "coursetools", "course", "--profile", "smoke", "--lessons", "00"],
                         cwd=course.REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    assert lines[0] == "kdtutor course run — profile smoke: 1 lessons, 00", lines[:5]
    assert f"results  {tmp_path / 'smoke'} (executed notebooks in notebooks/, summary.md at the end)" in lines[:20]
    assert "no recorded time for the smoke profile yet" in lines[:20]
    assert any(line.startswith("[1/1] 00_welcome.ipynb (no recorded time) …") for line in lines)
    assert any(line.strip().startswith("done in ") for line in lines)
    assert "without encryption" not in run.stdout + run.stderr


def test_the_header_shouts_a_fallback_to_the_stand_in_and_gives_the_recorded_time(monkeypatch, tmp_path):
    from kdtutor import machine

    monkeypatch.setattr(machine, "images_row", lambda profile: ("images", "FAIL", "CIFAR-10 unavailable (test)"))
    monkeypatch.setattr(machine, "text_row", lambda profile: ("text", "PASS", "tiny Shakespeare: 1,115,394 characters"))
    lessons = [p for p in course.notebooks() if p.name[:2] in ("03", "07")]
    expected = course.expected_seconds("cpu", lessons)
    assert set(expected) == {p.stem for p in lessons}  # pace.json records every lesson of the cpu profile
    text = "\n".join(course.header_lines("cpu", lessons, tmp_path, expected))
    assert "images  CIFAR-10 unavailable (test)" in text and "USING THE STAND-IN DATA SET" in text
    assert "text    tiny Shakespeare: 1,115,394 characters" in text and "STAND-IN TEXT" not in text
    assert f"expected ≈ {course._minutes(sum(expected.values()))} for 2 of the 2 lessons" in text
