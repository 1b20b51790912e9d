"""Slides from the lessons, made by a standard tool: ``python -m coursetools slides`` →
``build/slides/NN_name.slides.html``, one reveal.js deck per lesson (``jupyter nbconvert --to slides``).

Nothing is written by hand twice: each deck is the lesson itself, with the reference run's stored
outputs (no code runs). The lessons carry no slide marks, so a copy of each (the lesson file is
never changed) gets them from its headings: a markdown cell that opens with ``#`` or ``##`` starts
a slide, one with ``###`` a sub-slide (reveal.js: down arrow), every other cell continues the
slide before it; the setup cell (the lesson's first code cell, which installs on Colab) is left
out. reveal.js itself is loaded from its CDN when a deck opens (nbconvert's default), so a
projector without internet needs ``--SlidesExporter.reveal_url_prefix`` pointed at a local copy.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from kdtutor.storage import REPO_ROOT, atomic_write_bytes

OUT_DIR = REPO_ROOT / "build" / "slides"


def slide_type(cell, first_code: bool) -> str:
    """reveal.js slide type of a lesson cell (see the module docstring)."""
    if first_code:
        return "skip"
    if cell.cell_type == "markdown":
        head = cell.source.lstrip().split(" ", 1)[0]
        if head in ("#", "##"):
            return "slide"
        if head == "###":
            return "subslide"
    return "-"


def marked_copy(path: Path, folder: Path) -> Path:
    """A copy of lesson ``path`` in ``folder`` with slide marks (the lesson itself is not changed)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), None)
    for i, cell in enumerate(nb.cells):
        cell.metadata["slideshow"] = {"slide_type": slide_type(cell, i == first_code)}
    if nb.cells:
        nb.cells[0].metadata["slideshow"] = {"slide_type": "slide"}
    copy = folder / path.name
    nbformat.write(nb, copy)
    return copy


def build_slides(lessons: list[Path] | None = None, out: Path = OUT_DIR) -> list[Path]:
    """Write one deck per lesson (default: every lesson in ``notebooks/``) into ``out``; return their paths."""
    from coursetools.course import notebooks

    lessons = [Path(p) for p in (lessons or notebooks())]
    if not lessons:
        raise ValueError("no lessons to make slides from")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(prefix="kdtutor-slides-") as tmp:
        copies = [marked_copy(p, Path(tmp)) for p in lessons]
        done = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "slides", "--log-level", "WARN",
                               "--output-dir", str(Path(tmp) / "out"), *map(str, copies)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"jupyter nbconvert --to slides failed:\n{done.stderr[-2000:]}")
        for p in lessons:  # each deck replaces the previous one whole
            name = f"{p.stem}.slides.html"
            written.append(atomic_write_bytes(out / name, (Path(tmp) / "out" / name).read_bytes()))
    return written
