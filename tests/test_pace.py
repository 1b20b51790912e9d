"""coursetools.pace: the reading-time estimate, the recorded run times and the time line that
`python -m coursetools generate` writes into every lesson's first cell."""

import json
import math

import nbformat
import pytest

from coursetools import pace
from coursetools.course import notebooks


def _nb(words, code_cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Lesson 99 — a title\n\n" + " ".join(["word"] * words))]
    nb.cells += [nbformat.v4.new_code_cell("x = 1") for _ in range(code_cells)]
    return nb


def test_reading_minutes_counts_words_and_code_cells():
    nb = _nb(1000, 10)  # 1000 + 4 title words
    assert pace.reading_minutes(nb) == math.ceil(1004 / pace.WORDS_PER_MINUTE + 10 * pace.CODE_CELL_MINUTES)
    assert pace.reading_minutes(_nb(0, 0)) == 1


def test_the_time_line_is_replaced_not_repeated_and_not_counted():
    nb, runs = _nb(400, 4), {"runs": {"cpu": {"lessons": {"99_x": 125.0}, "machine": "2-core CPU", "date": "2026-12-04"}}}
    assert pace.set_pace(nb, "99_x", runs)
    first = nb.cells[0].source
    assert first.endswith("**Time:** reading ≈ 5 min · compute ≈ 2 min on the cpu profile (2-core CPU, measured "
                          "2026-12-04) · on a GPU not measured yet")
    assert not pace.set_pace(nb, "99_x", runs) and nb.cells[0].source == first  # idempotent
    assert nb.cells[0].source.count("**Time:**") == 1


def test_record_run_takes_a_course_runs_timings(tmp_path):
    timings = tmp_path / "timings.json"
    timings.write_text(json.dumps({"profile": "cpu", "lessons": {"03_teacher_training.ipynb": 301.26}}))
    out = pace.record_run(timings, "2-core CPU", "2026-12-04", path=tmp_path / "pace.json")
    assert out["runs"]["cpu"] == {"lessons": {"03_teacher_training": 301.3}, "machine": "2-core CPU", "date": "2026-12-04"}
    assert pace.load_pace(tmp_path / "pace.json") == out
    probe = {"cnn_tiny_images_per_s": 2500.0, "lm_teacher_steps_per_s": 7.5}
    env = {"torch": "2.14.1+cu130", "torch_threads": 2, "load_before": [0.1, 0.2, 0.3], "data_empty_at_start": True,
           "probe_before": probe, "runs": [{"x": 1}]}  # course_time.py's --json: what ran it is kept, not its tables
    out = pace.record_run(timings, "2-core CPU", "2026-12-04", path=tmp_path / "pace.json", environment=env)
    assert out["runs"]["cpu"]["environment"] == {"torch": "2.14.1+cu130", "torch_threads": 2, "probe_before": probe,
                                                 "load_before": [0.1, 0.2, 0.3], "data_empty_at_start": True}
    timings.write_text(json.dumps({"lessons": {}}))
    with pytest.raises(ValueError, match="profile"):
        pace.record_run(timings, "x", "y", path=tmp_path / "pace.json")
    (tmp_path / "bad.json").write_text(json.dumps({"runs": {"cpu": {"lessons": {"a": -1}, "machine": "m", "date": "d"}}}))
    with pytest.raises(ValueError, match="seconds"):
        pace.load_pace(tmp_path / "bad.json")


def test_every_lesson_opens_with_its_time_line_from_the_recorded_runs():
    runs = pace.load_pace()
    for path in notebooks():
        nb = nbformat.read(path, as_version=4)
        lines = [line for line in nb.cells[0].source.splitlines() if line.startswith(pace.LINE_PREFIX)]
        assert lines == [pace.pace_line(nb, path.stem, runs)], f"{path.name}: run python -m coursetools generate"
