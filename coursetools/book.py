"""The course website: ``make book`` (``python -m coursetools book``) → ``build/book/html/index.html``.

By default the site is built from the lessons as stored in ``notebooks/``: their outputs are the
reference run's (the ``cpu`` profile on the JPEG copy of CIFAR-10 and tiny Shakespeare,
:mod:`coursetools.stored`), and ``book/reference_run.md`` is that run's summary. Nothing is
trained or executed: the build needs no data and takes a minute or two.

With ``--profile P`` it instead runs the lessons headless with
:func:`coursetools.course.run_course` in profile ``P`` (executed copies and ``summary.md``
in ``<results>/<P>/``) — or, with ``--reuse``, takes that folder as it is — and builds from that run.

Either way the pages are staged with a generated ``index.md`` in ``build/book/src``, together with
the reference pages the README links (``docs/*.md``, listed in :data:`DOCS_PAGES`), and built
into static HTML with Sphinx + MyST-NB + the Sphinx Book Theme (``book/conf.py``), the toolchain
Jupyter Book 1 wraps, used directly: every piece installs from PyPI, needs no Node and no network
at build time, and math is rendered by a local MathJax copy (sphinx-mathjax-offline), so the site
works offline and in the browser test.

The badge and setup cells are tagged ``remove-cell``: the site's own launch buttons (Colab,
Binder) point at the same repository and branch (``coursetools/delivery.json``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from kdtutor.storage import REPO_ROOT, RESULTS_DIR

BOOK_DIR = REPO_ROOT / "book"
DOCS_DIR = REPO_ROOT / "docs"
# The reference pages (``docs/<name>.md``, linked from the README), in the site's order.
DOCS_PAGES = ("install", "profiles", "data", "training", "speed", "reference-run", "classrooms", "grading",
              "command-line", "tests", "layout")
BUILD_DIR = REPO_ROOT / "build" / "book"
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


def index_page(lessons: list[Path], source: str, has_summary: bool) -> str:
    """The site's front page: what it is, how it was built (``source``), and the table of contents."""
    from coursetools.delivery import config, repo_url

    lines = ["# kdtutor — a hands-on course on knowledge distillation", "", source, "",
             f"Run them yourself: `make lab` in a clone of {repo_url(config())}, "
             "or the launch button (Colab, Binder) at the top of each lesson.", "",
             "```{toctree}", ":maxdepth: 1", ":caption: Lessons", ""]
    lines += [p.stem for p in lessons]
    lines += ["```", ""]
    if has_summary:
        lines += ["```{toctree}", ":maxdepth: 1", ":caption: Results", "", "summary", "```", ""]
    lines += ["```{toctree}", ":maxdepth: 1", ":caption: Reference", ""]
    lines += [f"docs/{name}" for name in DOCS_PAGES]
    lines += ["```", ""]
    return "\n".join(lines)


def stored_source(lessons: list[Path]) -> str:
    """The front page's sentence for a site built from the stored lessons: which run they hold."""
    import nbformat

    def run_of(path):  # the run, whatever data set the lesson used and whichever day it was stored
        return dict(nbformat.read(path, as_version=4).metadata.get("kdtutor", {}).get("reference_run") or {})

    stored = [run_of(p) for p in lessons]
    runs = {json.dumps({k: v for k, v in r.items() if k not in ("data", "finished")}, sort_keys=True) for r in stored}
    run = json.loads(runs.pop()) if len(runs) == 1 else None
    if not run:
        return ("These pages are the lessons as stored in the repository; their outputs come from more than one run "
                "or from none (see each lesson).")
    days = sorted({r.get("finished", "") for r in stored})
    when = days[0] if len(days) == 1 else f"lessons stored between {days[0]} and {days[-1]}"
    return (f"These pages show the lessons with the outputs of the course's reference run: the `{run['profile']}` "
            f"profile on the JPEG copy of CIFAR-10 and on tiny Shakespeare, on a {run['machine']} "
            f"(kdtutor {run['version']}, {when}). Numbers on official CIFAR-10 or on a GPU differ; "
            "the summary page lists every result of this run.")


def stage(lessons: list[Path], summary: Path | None, source: str, src: Path) -> list[Path]:
    """Copy the lessons (and the run's summary, as ``summary.md``) and the reference pages (``docs/``)
    into ``src`` with the front page."""
    if not lessons:
        raise ValueError("no lessons to build the site from: run the course first (make course)")
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    for path in lessons:
        shutil.copy(path, src / path.name)
    (src / "docs").mkdir()
    for name in DOCS_PAGES:
        shutil.copy(DOCS_DIR / f"{name}.md", src / "docs" / f"{name}.md")
    has_summary = summary is not None and summary.exists()
    if has_summary:
        text = summary.read_text(encoding="utf-8").replace(
            "Executed notebooks are in `notebooks/`.", "The executed lessons are the pages of this site.")
        (src / "summary.md").write_text(text, encoding="utf-8")
        if (summary.parent / "figures").exists():
            shutil.copytree(summary.parent / "figures", src / "figures")
    (src / "index.md").write_text(index_page(lessons, source, has_summary), encoding="utf-8")
    return lessons


def build(profile_name: str | None = None, reuse: bool = False, lessons=None, results_dir: Path | None = None,
          out: Path = BUILD_DIR) -> Path:
    """Build the site from the stored lessons (``profile_name=None``) or from a course run in that
    profile (run now, or reused with ``reuse``); return the folder holding ``index.html``."""
    from coursetools.course import notebooks

    chosen = lambda paths: [p for p in paths if lessons is None or p.name.startswith(tuple(lessons))]  # noqa: E731
    if profile_name is None:
        from coursetools.stored import SUMMARY_PAGE

        pages = chosen(notebooks())
        stage(pages, SUMMARY_PAGE, stored_source(pages), out / "src")
    else:
        run_dir = course_run(profile_name, reuse, lessons, results_dir)
        pages = chosen(sorted((run_dir / "notebooks").glob("[0-9][0-9]_*.ipynb")))
        stage(pages, run_dir / "summary.md", f"These pages are the course's lessons as run headless in the "
              f"`{run_dir.name}` profile (see the course run's summary for the data used and every number).", out / "src")
    html = out / "html"
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-c", str(BOOK_DIR), str(out / "src"), str(html)]
    subprocess.run(cmd, check=True)
    print(f"site: {html / 'index.html'}")
    return html


def course_run(profile_name: str, reuse: bool, lessons, results_dir: Path | None) -> Path:
    """The folder of a course run in ``profile_name``: run now (figures drawn inline), or as it is with ``reuse``."""
    from coursetools.course import run_course
    from kdtutor.profiles import get_profile

    profile_name = get_profile(profile_name).name
    results_dir = Path(results_dir or RESULTS_DIR)
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
    return results_dir / profile_name
