"""The per-learner summary CSV of a grading run (issue 33, item 6): one row per learner, total and per
lesson, written questions in their own columns, TA scores merged from a filled-in copy of the long CSV."""

import csv
import io

import pytest

from coursetools import grading, summary
from coursetools.__main__ import main
from coursetools.grading import BY_HAND, Grade

L1, L2 = "01_softmax_temperature", "02_losses_ce_kl_mse"


def _grades():
    """alice: lesson 01 (4 of 4 autograded, one written answer) and lesson 02 (1 of 3); bob: lesson 01 only,
    one exercise wrong, the written question left empty; '=cmd' a learner id that looks like a formula."""
    return [Grade("alice", L1, "stable_log_softmax", "passed", "✓", 1, 1),
            Grade("alice", L1, "temperature_for_entropy", "passed", "✓", 3, 3),
            Grade("alice", L1, "q01-1", BY_HAND, "=SUM(A1)", 0, 2),
            Grade("alice", L2, "kl_batchmean", "passed", "✓", 1, 1),
            Grade("alice", L2, "kd_term", "failed", "✗", 0, 2),
            Grade("bob", L1, "stable_log_softmax", "passed", "✓", 1, 1),
            Grade("bob", L1, "temperature_for_entropy", "error", "timed out", 0, 3),
            Grade("bob", L1, "q01-1", "not attempted", "", 0, 2),
            Grade("=cmd", L1, "stable_log_softmax", "passed", "✓", 1, 1)]


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_one_row_per_learner_with_total_max_lessons_and_written_columns():
    rows = _rows(summary.to_summary_csv(_grades()))
    assert rows[0] == ["learner", "total", "max_total", f"{L1} (max 6)", f"{L2} (max 3)", "q01-1 (max 2)"]
    assert rows[1] == ["alice", "5", "9", "4", "1", ""]  # the written answer: not graded yet (empty, counts 0)
    assert rows[2] == ["bob", "1", "6", "1", "", ""]  # no lesson 02 submitted: empty, not 0
    assert rows[3] == ["'=cmd", "1", "1", "1", "", ""]  # escaped like the long CSV


def test_ta_scores_from_a_filled_copy_of_the_long_csv_go_into_the_lesson_and_the_total(tmp_path):
    grades = _grades()
    long_csv = _rows(grading.to_csv(grades))
    for row in long_csv[1:]:  # the TA scores alice's answer 1.5 of 2 and bob's empty answer 0
        if row[2] == "q01-1":
            row[4] = "1.5" if row[0] == "alice" else "0"
    filled = tmp_path / "graded-by-ta.csv"
    with open(filled, "w", newline="") as f:
        csv.writer(f).writerows(long_csv)
    scores = summary.read_ta_scores(filled)
    assert scores == {("alice", L1, "q01-1"): 1.5, ("bob", L1, "q01-1"): 0.0}
    rows = _rows(summary.to_summary_csv(grades, scores))
    assert rows[1] == ["alice", "6.5", "9", "5.5", "1", "1.5"] and rows[2] == ["bob", "1", "6", "1", "", "0"]
    out = tmp_path / "summary.csv"  # the command: the same summary from the TA's copy, without regrading
    assert main(["summary", str(filled), "--out", str(out)]) == 0
    assert _rows(out.read_text()) == rows


@pytest.mark.parametrize("points,said", [("3", "outside 0..2"), ("-1", "outside 0..2"), ("nan", "outside"),
                                         ("lots", "is not a number")])
def test_a_ta_score_that_is_not_a_number_within_the_questions_points_is_refused(tmp_path, points, said):
    long_csv = _rows(grading.to_csv(_grades()))
    long_csv[3][4] = points  # alice's q01-1
    filled = tmp_path / "ta.csv"
    with open(filled, "w", newline="") as f:
        csv.writer(f).writerows(long_csv)
    with pytest.raises(ValueError, match=said):
        summary.read_ta_scores(filled)


def test_a_file_that_is_no_grades_csv_is_refused(tmp_path):
    (tmp_path / "x.csv").write_text("name,score\nalice,3\n")
    with pytest.raises(ValueError, match="not a copy of the grades CSV"):
        summary.read_ta_scores(tmp_path / "x.csv")
    with pytest.raises(ValueError, match="not a grades CSV"):
        summary.read_grades(tmp_path / "x.csv")


def test_grade_writes_the_summary_beside_the_csv_and_refuses_one_that_exists(tmp_path, monkeypatch, capsys):
    sub = tmp_path / "alice.ipynb"
    sub.write_text("{}")
    monkeypatch.setattr(grading, "grade", lambda *args, **kwargs: _grades())
    assert main(["grade", str(sub), "--out", str(tmp_path / "grades.csv")]) == 0
    assert _rows((tmp_path / "grades-summary.csv").read_text())[1][:3] == ["alice", "5", "9"]
    with pytest.raises(SystemExit):  # a new long CSV, but the summary exists: refused before grading
        main(["grade", str(sub), "--out", str(tmp_path / "new.csv"), "--summary", str(tmp_path / "grades-summary.csv")])
    assert "--out " + str(tmp_path / "grades-summary.csv") + " exists" in capsys.readouterr().err
    assert not (tmp_path / "new.csv").exists()
