"""python -m coursetools slides: one reveal.js deck per lesson, made by jupyter nbconvert from the
lesson itself (slide marks added to a copy from its headings; the lesson file is not changed)."""

import re
from pathlib import Path

import nbformat
import pytest

from coursetools.__main__ import main
from coursetools.slides import slide_type

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.slow
def test_one_deck_per_lesson_with_a_slide_per_section_and_the_lessons_untouched(tmp_path, capsys):
    before = {p: p.read_bytes() for p in LESSONS}
    assert main(["slides", "--out", str(tmp_path)]) == 0
    decks = sorted(tmp_path.glob("*.slides.html"))
    assert [d.name for d in decks] == [f"{p.stem}.slides.html" for p in LESSONS]
    assert capsys.readouterr().out.count("wrote ") == len(LESSONS)
    for lesson, deck in zip(LESSONS, decks):
        html = deck.read_text(encoding="utf-8")
        nb = nbformat.read(lesson, as_version=4)
        sections = sum(slide_type(c, False) in ("slide", "subslide") for c in nb.cells)
        assert "reveal" in html.lower() and html.count("<section") >= max(2, sections), deck.name
        title = re.sub(r"[*_`]", "", nb.cells[0].source.lstrip("# ").splitlines()[0]).split("·")[0].strip()
        assert title[:20] in html, (deck.name, title)
    assert {p: p.read_bytes() for p in LESSONS} == before


def test_slide_marks_follow_the_headings():
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    assert [slide_type(c, False) for c in (md("# Title"), md("## Section"), md("### Part"), md("text"),
                                           md("#hashtag"), code("x = 1"))] == ["slide", "slide", "subslide", "-", "-", "-"]
    assert slide_type(code("!pip install kdtutor"), True) == "skip"


def test_an_unknown_lesson_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["slides", "99", "--out", str(tmp_path)])
    assert "no lesson matches" in capsys.readouterr().err and not list(tmp_path.iterdir())
