"""kdtutor.course: stored-output hygiene helpers and the one-page summary."""

import nbformat

from kdtutor import course
from kdtutor.storage import save_json


def _nb():
    nb = nbformat.v4.new_notebook()
    checked = nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1)", execution_count=1,
                                        outputs=[nbformat.v4.new_output("stream", text="1\n")])
    other = nbformat.v4.new_code_cell("print(2)", execution_count=2,
                                      outputs=[nbformat.v4.new_output("stream", text="2\n")])
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), checked, other]
    return nb


def test_strip_outputs_keeps_only_checked_cells():
    nb = _nb()
    course.strip_outputs(nb)
    assert nb.cells[1].outputs and nb.cells[1].execution_count == 1
    assert nb.cells[2].outputs == [] and nb.cells[2].execution_count is None


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
