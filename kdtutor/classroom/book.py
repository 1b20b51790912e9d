"""The course website: ``make book`` (``python -m kdtutor book``) → ``build/book/html/index.html``.

1. runs the lessons headless with :func:`kdtutor.classroom.course.run_course` in the chosen profile
   (smoke by default), which writes executed copies and ``summary.md`` to
   ``<results>/<profile>/`` — or, with ``--reuse``, takes that folder as it is (e.g. a
   finished ``cpu`` run you want to publish);
2. stages them with a generated ``index.md`` in ``build/book/src``;
3. builds static HTML with Sphinx + MyST-NB + the Sphinx Book Theme (``book/conf.py``), the
   toolchain Jupyter Book 1 wraps, used directly: every piece installs from PyPI, needs no
   Node and no network at build time, and math is rendered by a local MathJax copy
   (sphinx-mathjax-offline), so the site works offline and in the browser test.

The badge and setup cells are tagged ``remove-cell``: the site's own launch buttons (Colab,
Binder) point at the same repository and branch (``kdtutor/classroom/delivery.json``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from kdtutor.storage import REPO_ROOT, RESULTS_DIR

BOOK_DIR = REPO_ROOT / "book"
BUILD_DIR = REPO_ROOT / "build" / "book"
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


def index_page(lessons: list[Path], profile_name: str, has_summary: bool) -> str:
    """The site's front page: what it is, how it was built, and the table of contents."""
    from kdtutor.classroom.delivery import config, repo_url

    lines = ["# kdtutor — a hands-on course on knowledge distillation", "",
             f"These pages are the course's lessons as run headless in the `{profile_name}` profile "
             f"(see the course run's summary for the data used and every number). "
             f"Run them yourself: `make lab` in a clone of {repo_url(config())}, "
             "or the launch button (Colab, Binder) at the top of each lesson.", "",
             "```{toctree}", ":maxdepth: 1", ":caption: Lessons", ""]
    lines += [p.stem for p in lessons]
    lines += ["```", ""]
    if has_summary:
        lines += ["```{toctree}", ":maxdepth: 1", ":caption: Results", "", "summary", "```", ""]
    return "\n".join(lines)


def stage(run_dir: Path, src: Path) -> list[Path]:
    """Copy a course run's executed lessons, summary and figures into ``src``; return the lessons."""
    lessons = sorted((run_dir / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not lessons:
        raise ValueError(f"no executed lessons in {run_dir / 'notebooks'}: run the course first (make course)")
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    for path in lessons:
        shutil.copy(path, src / path.name)
    summary = run_dir / "summary.md"
    if summary.exists():
        text = summary.read_text(encoding="utf-8").replace(
            "Executed notebooks are in `notebooks/`.", "The executed lessons are the pages of this site.")
        (src / "summary.md").write_text(text, encoding="utf-8")
    if (run_dir / "figures").exists():
        shutil.copytree(run_dir / "figures", src / "figures")
    (src / "index.md").write_text(index_page(lessons, run_dir.name, summary.exists()), encoding="utf-8")
    return lessons


def build(profile_name: str = "smoke", reuse: bool = False, lessons=None, results_dir: Path | None = None,
          out: Path = BUILD_DIR) -> Path:
    """Run (or reuse) a course run and build the site; return the folder holding ``index.html``."""
    from kdtutor.classroom.course import run_course
    from kdtutor.profiles import get_profile

    profile_name = get_profile(profile_name).name
    results_dir = Path(results_dir or RESULTS_DIR)
    run_dir = results_dir / profile_name
    if not reuse:
        # The kernels must draw figures inline (into the notebook), whatever backend this
        # process was given: MPLBACKEND=Agg (as in make test) would leave the pages without figures.
        old = os.environ.get("MPLBACKEND")
        os.environ["MPLBACKEND"] = INLINE_BACKEND
        try:
            run_course(profile_name, results_dir=results_dir, lessons=lessons)
        finally:
            if old is None:
                os.environ.pop("MPLBACKEND", None)
            else:
                os.environ["MPLBACKEND"] = old
    stage(run_dir, out / "src")
    html = out / "html"
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-c", str(BOOK_DIR), str(out / "src"), str(html)]
    subprocess.run(cmd, check=True)
    print(f"site: {html / 'index.html'}")
    return html
