"""coursetools.course: lesson 06's table, verdicts, side experiments and shortcut gains in
summary.md, built from 06_beyond.json."""

from coursetools import course
from kdtutor.images.methods import METHODS
from kdtutor.storage import save_json


def _metrics(name, standin):
    table = [{"method": m, "lr_scale": 1.0, "grad_norm": 1.0, "acc_mean": 60.0 + i, "acc_std": 0.5,
              "agree_mean": 70.0, "agree_std": 1.0, "diffs": None, "diff_mean": None, "ci": None, "mdd": None,
              "verdict": None} for i, m in enumerate(METHODS)]
    table[2].update(diffs=[0.1, -0.2, 0.3], diff_mean=0.0667, ci=[-0.55, 0.68], mdd=1.03, verdict="inconclusive")
    table[3].update(lr_scale=0.0225, diffs=[1.1, 0.9, 1.3], diff_mean=1.1, ci=[0.6, 1.6], mdd=0.83,
                    verdict="reliably better")
    gains = {m: {"honest": 0.1, "best_epoch_on_test": 0.5, "best_of_seeds": 0.7, "unequal_tuning": 1.2}
             for m in ("DKD", "LS-KD")}
    return {"dataset": name, "is_standin": standin, "student": "cnn_tiny", "teacher": "airbench_small",
            "teacher_test_acc": 0.83, "n_test": 10000, "n_train": 4000, "epochs": 5, "seeds": [1, 2, 3],
            "sweep_seed": 0, "table": table, "published_style": gains,
            "side": {"seed": 1, "test_acc": {"FitNets": 0.61, "FM, consistent teacher": 0.58}, "kd_test_acc": 0.62}}


def test_summary_has_lesson_06s_table(tmp_path):
    save_json(_metrics("CIFAR-10 (JPEG copy)", False), tmp_path / "metrics" / "06_beyond.json")
    text = course.write_summary("cpu", tmp_path, [("06_beyond_logits.ipynb", 600.0)]).read_text()
    assert "## Lesson 06 — beyond Hinton's loss, compared fairly on CIFAR-10 (JPEG copy)" in text
    assert ("| DKD | 1 | 62.00 ± 0.50 | 70.00 ± 1.00 | +0.10, -0.20, +0.30 | +0.07 [-0.55, +0.68] | 1.03 | "
            "inconclusive |") in text
    assert "| LS-KD | 0.0225 | 63.00 ± 0.50 |" in text
    assert "| KD | 1 | 61.00 ± 0.50 | 70.00 ± 1.00 | — | — | — | — |" in text
    assert "| DKD | +0.10 | +0.50 | +0.70 | +1.20 |" in text
    assert "- LS-KD beat KD reliably: +1.10 points" in text and "- DKD vs KD is inconclusive" in text
    assert "Side experiments (one seed, 1; no verdict)" in text
    assert "FitNets 61.00 %" in text and "FM, consistent teacher 58.00 %" in text and "KD on that seed 62.00 %" in text
    assert "Stand-in data" not in text


def test_summary_labels_lesson_06_on_the_standin(tmp_path):
    save_json(_metrics("stand-in (synthetic shapes, NOT CIFAR-10)", True), tmp_path / "metrics" / "06_beyond.json")
    text = course.write_summary("smoke", tmp_path, []).read_text()
    assert "compared fairly on stand-in (synthetic shapes, NOT CIFAR-10)" in text
    assert "these numbers only show that the code runs" in text
