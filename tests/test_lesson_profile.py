"""benchmarks/lesson_profile: the time of each executed cell, read from nbclient's timestamps."""

import json

from benchmarks.lesson_profile import cell_times, profile


def _cell(source, start, end):
    return {"cell_type": "code", "source": source, "outputs": [],
            "metadata": {"execution": {"iopub.execute_input": start, "shell.execute_reply": end}}}


def test_cell_times_and_the_slowest_cells(tmp_path):
    nb = {"cells": [{"cell_type": "markdown", "source": "# hi", "metadata": {}},
                    _cell("# NBVAL_CHECK_OUTPUT\nx = 1", "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:01.500Z"),
                    _cell("train()\n", "2026-01-01T00:00:02Z", "2026-01-01T00:01:02Z"),
                    {"cell_type": "code", "source": "never ran", "outputs": [], "metadata": {}}]}
    (tmp_path / "04_x.ipynb").write_text(json.dumps(nb))
    times = cell_times(tmp_path / "04_x.ipynb")
    assert [(c["index"], c["first_line"], c["seconds"]) for c in times] == [(1, "x = 1", 1.5), (2, "train()", 60.0)]
    p = profile(tmp_path, top=1)["04_x"]
    assert p["cells_s"] == 61.5 and p["slowest"][0]["index"] == 2 and p["slowest"][0]["share"] == round(60 / 61.5, 3)
