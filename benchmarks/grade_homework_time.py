"""How long grading the homework takes: N correct submissions of each homework, each with its own
student id (so each is checked against its own variant), graded one after the other by
``coursetools.homework.grade_homework`` in the grader's sandbox, as a TA would grade a class.

    python -m benchmarks.grade_homework_time [--n 10]     (from the checkout: coursetools is not installed)

Prints seconds per submission and the extrapolated time for 60 students (two homeworks each).
Run it with nothing else on the machine; it writes only to a temporary folder.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import nbformat

from coursetools.grading import find_sandbox
from coursetools.homework import HOMEWORKS, grade_homework, solved_notebook


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10, help="submissions per homework (default 10)")
    args = parser.parse_args(argv)
    sandbox = find_sandbox()
    print(f"{platform.processor() or platform.machine()}, sandbox: {sandbox.kind}")
    per_homework = {}
    with tempfile.TemporaryDirectory(prefix="kdtutor-hw-bench-") as tmp:
        for homework in HOMEWORKS:
            seconds, points = [], []
            for i in range(args.n):
                student = f"s{1000 + i}"
                nb = solved_notebook(homework)
                nb.cells[1].source = f'STUDENT_ID = "{student}"'
                path = Path(tmp) / student / f"{homework}.ipynb"
                path.parent.mkdir(parents=True, exist_ok=True)
                nbformat.write(nb, path)
                t0 = time.perf_counter()
                rows = grade_homework(path, student, sandbox=sandbox)
                seconds.append(time.perf_counter() - t0)
                points.append(sum(r.points for r in rows))
            per_homework[homework] = statistics.mean(seconds)
            print(f"{homework}: {args.n} correct submissions, {statistics.mean(seconds):.1f} s each "
                  f"(min {min(seconds):.1f}, max {max(seconds):.1f}), points {sorted(set(points))}")
    total = 60 * sum(per_homework.values())
    print(f"60 students × {len(HOMEWORKS)} homeworks, one at a time: ≈ {total / 60:.0f} min")


if __name__ == "__main__":
    main()
