"""Running the lessons headless (``make course``) and keeping their stored outputs tidy.

``make course`` executes every notebook in ``notebooks/`` in order with the
chosen profile, writes the executed copies to ``results/<profile>/notebooks/``
and a summary to ``results/<profile>/summary.md``.

Stored outputs (what nbval compares): only cells whose first line is
``# NBVAL_CHECK_OUTPUT`` keep their outputs and execution count in git; every
other cell is stored empty. :func:`refresh_notebooks` re-runs the notebooks in
the smoke profile and stores them that way.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .storage import REPO_ROOT, RESULTS_DIR, atomic_write_bytes

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
CHECK_MARK = "# NBVAL_CHECK_OUTPUT"


def notebooks() -> list[Path]:
    """The lessons, in course order (by file name: 00_…, 01_…)."""
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def is_checked(cell) -> bool:
    """True for a code cell marked ``# NBVAL_CHECK_OUTPUT`` (nbval compares its outputs)."""
    return cell.cell_type == "code" and cell.source.lstrip().startswith(CHECK_MARK)


def strip_outputs(nb) -> None:
    """Drop outputs, execution counts and run metadata from every cell not marked for checking."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        if not is_checked(cell):
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)


def execute(path: Path, profile: str, timeout: int = 3600):
    """Run the notebook at ``path`` in a fresh kernel with ``KDTUTOR_PROFILE=profile``; return it."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    old = {k: os.environ.get(k) for k in ("KDTUTOR_PROFILE", "MPLBACKEND")}
    os.environ["KDTUTOR_PROFILE"] = profile
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def refresh_notebooks(paths=None) -> None:
    """Re-run notebooks in the smoke profile (Agg backend) and store only the checked outputs."""
    import nbformat

    os.environ["MPLBACKEND"] = "Agg"
    for path in paths or notebooks():
        t0 = time.perf_counter()
        nb = execute(Path(path), "smoke")
        strip_outputs(nb)
        nbformat.write(nb, path)
        print(f"refreshed {Path(path).name} in {time.perf_counter() - t0:.0f} s")


def run_course(profile: str | None = None, out: Path | None = None) -> Path:
    """Execute every lesson in order; write executed copies and ``summary.md``; return the summary path."""
    import nbformat

    from .profiles import get_profile

    profile = get_profile(profile).name
    out = Path(out or RESULTS_DIR / profile)
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    timings = []
    for path in notebooks():
        t0 = time.perf_counter()
        print(f"running {path.name} (profile {profile}) …", flush=True)
        nb = execute(path, profile)
        nbformat.write(nb, out / "notebooks" / path.name)
        timings.append((path.name, time.perf_counter() - t0))
        print(f"  done in {timings[-1][1]:.0f} s", flush=True)
    return write_summary(profile, out, timings)


def write_summary(profile: str, out: Path, timings: list[tuple[str, float]]) -> Path:
    """``summary.md``: how long each lesson took (the report card is added by lesson 05)."""
    lines = [f"# kdtutor course run — profile `{profile}`", "", "| lesson | seconds |", "|---|---:|"]
    lines += [f"| {name} | {sec:.0f} |" for name, sec in timings]
    lines += ["", f"Total: {sum(s for _, s in timings):.0f} s. Executed notebooks are in `notebooks/`."]
    path = out / "summary.md"
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
    print(f"summary written to {path}")
    return path
