"""coursetools.course: lesson 07's table in summary.md, built from 07_lm.json and labelled with its own text."""

from coursetools import course
from kdtutor.storage import save_json


def _metrics(name, standin):
    row = {"bpc": 2.5, "entropy": 2.4, "p_teacher_top": 0.45, "known_words": 0.62, "distinct_1": 0.5,
           "distinct_2": 0.99, "repetition_1": 0.2, "word_length": 3.456, "teacher_bpc_on_samples": 2.6}
    return {"dataset": name, "is_standin": standin, "split": "test", "n_chars": 38400,
            "params": {"teacher": 800000, "student": 100000},
            "sizes": {"teacher_steps": 800, "student_steps": 400, "batch": 32, "block": 64, "n_samples": 32,
                      "sample_len": 200},
            "results": {"teacher": row, "reverse KL": {**row, "bpc": 2.75, "kl_teacher_student": 0.4,
                                                       "kl_student_teacher": 0.2}},
            "reference_diversity": {"known_words": 0.95, "distinct_1": 0.6, "distinct_2": 0.98, "repetition_1": 0.15,
                                    "word_length": 3.9, "teacher_bpc_on_samples": 2.7},
            "seconds": {"teacher": 200.0, "reverse KL": 50.0}, "methods": ["scratch", "reverse KL"],
            "topk": {"k": 8, "bytes_per_position": 44.0, "full_bytes_per_position": 260.0}}


def test_summary_has_lesson_07s_table(tmp_path):
    save_json(_metrics("tiny Shakespeare", False), tmp_path / "metrics" / "07_lm.json")
    text = course.write_summary("cpu", tmp_path, [("07_distilling_a_language_model.ipynb", 300.0)]).read_text()
    assert "## Lesson 07 — distilling a character model on tiny Shakespeare" in text
    assert "| reverse KL | 2.750 | 0.400 | 0.200 | 2.400 | 0.450 | 2.600 | 0.620 | 0.500 | 0.200 | 3.46 | 50 |" in text
    assert "| held-out text itself | — | — | — | — | — | 2.700 | 0.950 | 0.600 | 0.150 | 3.90 | — |" in text
    assert "44 bytes per position instead of 260" in text and "Stand-in text" not in text
    assert text.index("| teacher |") < text.index("| reverse KL |")  # the lesson's order, not the JSON's


def test_summary_labels_the_standin_text(tmp_path):
    save_json(_metrics("stand-in text (generated, NOT Shakespeare)", True), tmp_path / "metrics" / "07_lm.json")
    text = course.write_summary("smoke", tmp_path, []).read_text()
    assert "**Stand-in text**" in text and "NOT Shakespeare" in text
    assert "Stand-in data" not in text and "CIFAR" not in text  # the image data's banner is not about this text


def test_no_lesson_07_metrics_no_section(tmp_path):
    save_json({"dataset": "x", "is_standin": False}, tmp_path / "metrics" / "03_teacher_other.json")
    assert "Lesson 07" not in course.write_summary("cpu", tmp_path, []).read_text()


def test_summary_says_where_the_students_start_and_over_how_many_seeds(tmp_path):
    m = _metrics("tiny Shakespeare", False)
    m["sizes"]["midpoint"], m["seeds"] = 0.5, [0, 1]
    save_json(m, tmp_path / "metrics" / "07_lm.json")
    text = course.write_summary("cpu", tmp_path, [("07_distilling_a_language_model.ipynb", 300.0)]).read_text()
    assert "400 steps each of 32 windows × 64 characters, all from the scratch student's weights after 200 of them, " \
           "mean of 2 training seeds after that." in text
