"""Where each lesson's time goes — a measurement, not a test.

    python -m benchmarks.lesson_profile results/cpu/notebooks            # a finished `make course` run
    python -m benchmarks.lesson_profile results/cpu/notebooks --top 5 --json benchmarks/results/lesson_profile_cpu.json

Reads the executed notebooks of a course run (``coursetools course`` writes them, with the time of every
cell recorded by nbclient) and prints, per lesson: the kernel's start-up and the time before the first cell,
the total of its cells, and its slowest cells with their first line and the share of the lesson they take.
That tells data import (the setup cells), training (the cells that call the training functions), evaluation
and figures apart without instrumenting the lessons.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path


def _t(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def cell_times(path: Path) -> list[dict]:
    """``[{"index", "first_line", "seconds"}]`` of every executed code cell of the notebook at ``path``."""
    nb = json.loads(path.read_text())
    out = []
    for i, cell in enumerate(nb["cells"]):
        ex = cell.get("metadata", {}).get("execution", {})
        if cell["cell_type"] != "code" or "iopub.execute_input" not in ex or "shell.execute_reply" not in ex:
            continue
        lines = [ln for ln in "".join(cell["source"]).splitlines() if ln.strip() and not ln.startswith("# NBVAL")]
        out.append({"index": i, "first_line": (lines[0] if lines else "")[:90],
                    "seconds": (_t(ex["shell.execute_reply"]) - _t(ex["iopub.execute_input"])).total_seconds()})
    return out


def profile(folder: Path, top: int = 5) -> dict:
    """``{lesson: {"cells_s", "slowest": [...]}}`` for every executed notebook in ``folder``."""
    result = {}
    for path in sorted(folder.glob("*.ipynb")):
        cells = cell_times(path)
        total = sum(c["seconds"] for c in cells)
        slowest = sorted(cells, key=lambda c: -c["seconds"])[:top]
        result[path.stem] = {"cells_s": round(total, 1), "n_cells": len(cells),
                             "slowest": [{**c, "seconds": round(c["seconds"], 1),
                                          "share": round(c["seconds"] / total, 3) if total else 0.0} for c in slowest]}
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", help="the executed notebooks of a course run (results/<profile>/notebooks)")
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    prof = profile(Path(args.folder), args.top)
    for lesson, p in prof.items():
        print(f"{lesson}: {p['cells_s'] / 60:.1f} min in {p['n_cells']} cells")
        for c in p["slowest"]:
            print(f"  {c['seconds']:7.1f} s {100 * c['share']:5.1f} %  [{c['index']}] {c['first_line']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(prof, indent=1) + "\n")


if __name__ == "__main__":
    main()
