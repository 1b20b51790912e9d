"""kdtutor.classroom.course: lesson 06's table and shortcut gains in summary.md, built from 06_beyond.json."""

from kdtutor.classroom import course
from kdtutor.images.methods import GRID, METHODS
from kdtutor.storage import save_json


def _metrics(name, standin):
    table = [{"method": m, "param": GRID[m][0], "value": GRID[m][1][0], "acc_mean": 60.0 + i, "acc_std": 0.5,
              "agree_mean": 70.0, "agree_std": 1.0, "diffs": [0.1, -0.2, 0.3], "diff_mean": 0.0667,
              "verdict": None if m == "KD" else f"{m} verdict"} for i, m in enumerate(METHODS)]
    gains = {m: {"honest": 0.1, "best_epoch_on_test": 0.5, "best_of_seeds": 0.7, "unequal_tuning": 1.2}
             for m in METHODS if m != "KD"}
    return {"dataset": name, "is_standin": standin, "student": "cnn_tiny", "teacher": "airbench_small",
            "teacher_test_acc": 0.83, "n_test": 10000, "n_train": 4000, "epochs": 5, "seeds": [1, 2, 3],
            "sweep_seed": 0, "table": table, "published_style": gains,
            "patient": {"epochs": 15, "seed": 1, "T": 1.0,
                        "val_acc": {"consistent teacher": [0.4, 0.6], "fixed teacher": [0.4, 0.55]}}}


def test_summary_has_lesson_06s_table(tmp_path):
    save_json(_metrics("CIFAR-10 (JPEG copy)", False), tmp_path / "metrics" / "06_beyond.json")
    text = course.write_summary("cpu", tmp_path, [("06_beyond_logits.ipynb", 600.0)]).read_text()
    assert "## Lesson 06 — beyond Hinton's loss, compared fairly on CIFAR-10 (JPEG copy)" in text
    assert "| DKD | beta = 2 | 63.00 ± 0.50 | 70.00 ± 1.00 | +0.10, -0.20, +0.30 | +0.07 |" in text
    assert "| KD | T = 2 | 61.00 ± 0.50 | 70.00 ± 1.00 | — | — |" in text
    assert "| FM | +0.10 | +0.50 | +0.70 | +1.20 |" in text
    assert "- DKD: DKD verdict." in text and "consistent teacher 60.00 %, fixed teacher 55.00 %" in text
    assert "Stand-in data" not in text


def test_summary_labels_lesson_06_on_the_standin(tmp_path):
    save_json(_metrics("stand-in (synthetic shapes, NOT CIFAR-10)", True), tmp_path / "metrics" / "06_beyond.json")
    text = course.write_summary("smoke", tmp_path, []).read_text()
    assert "compared fairly on stand-in (synthetic shapes, NOT CIFAR-10)" in text
    assert "these numbers only show that the code runs" in text
