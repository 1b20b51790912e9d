"""The README starts in one screen, and the reference pages it links are real (issue 37).

The README holds what a newcomer needs first (what kdtutor is, the lessons, Quick start with its
times); the reference material lives in ``docs/*.md``, which the course website stages
(``coursetools.book``) and a student release ships (``coursetools.release``).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_LINES = 200
QUICK_START_BY = 60  # the Quick start heading within the first screen


def linked(text: str, folder: str, suffix: str) -> list[str]:
    """The targets ``folder/…suffix`` of the markdown links in ``text``, without their ``#anchor``."""
    return re.findall(rf"\]\(({re.escape(folder)}/[^)#\s]+{re.escape(suffix)})(?:#[^)\s]*)?\)", text)


def test_the_link_reader_finds_links_with_and_without_anchors():
    text = "[a](docs/x.md#y-z) and [b](docs/z.md), not [c](https://e.org/docs/w.md) nor `docs/v.md`"
    assert linked(text, "docs", ".md") == ["docs/x.md", "docs/z.md"]


def test_the_readme_is_short_and_its_quick_start_is_in_the_first_screen():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < MAX_LINES, f"README.md has {len(lines)} lines; keep it under {MAX_LINES}"
    assert "## Quick start" in lines, "README.md has no '## Quick start' heading"
    at = lines.index("## Quick start") + 1
    assert at <= QUICK_START_BY, f"Quick start starts at line {at}; it should be within the first {QUICK_START_BY}"
    first_screen = "\n".join(lines[:QUICK_START_BY])
    for command in ("KDTUTOR_PROFILE=smoke make course", "make course ", "make lab", "make test"):
        assert command in first_screen, f"{command!r} is not in the README's first {QUICK_START_BY} lines"
    assert first_screen.index("KDTUTOR_PROFILE=smoke make course") < first_screen.index("make lab"), \
        "the smoke run is the first check"


def test_the_readme_links_every_lesson():
    links = linked(README.read_text(encoding="utf-8"), "notebooks", ".ipynb")
    lessons = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(set(links)) == lessons


def test_every_docs_page_the_readme_links_exists_and_is_on_the_website(tmp_path):
    from coursetools.book import DOCS_PAGES, stage
    from coursetools.release import INCLUDE

    links = linked(README.read_text(encoding="utf-8"), "docs", ".md")
    assert links, "the README links no docs/ page"
    missing = [link for link in links if not (ROOT / link).is_file()]
    assert not missing, f"the README links pages that do not exist: {missing}"
    on_disk = {p.stem for p in (ROOT / "docs").glob("*.md")}
    assert {Path(link).stem for link in links} == on_disk, "every docs/ page is linked from the README"
    assert set(DOCS_PAGES) == on_disk, "coursetools.book.DOCS_PAGES lists every docs/ page"

    lesson = sorted((ROOT / "notebooks").glob("00_*.ipynb"))
    stage(lesson, None, "a test build", tmp_path / "src")
    index = (tmp_path / "src" / "index.md").read_text(encoding="utf-8")
    for name in DOCS_PAGES:
        staged = tmp_path / "src" / "docs" / f"{name}.md"
        assert staged.read_bytes() == (ROOT / "docs" / f"{name}.md").read_bytes(), f"docs/{name}.md is not staged"
        assert f"\ndocs/{name}\n" in index, f"docs/{name} is not in the website's table of contents"
    assert "docs" in INCLUDE, "a student release ships the README, so it ships the pages the README links"


def test_the_docs_pages_links_to_each_other_resolve():
    for page in sorted((ROOT / "docs").glob("*.md")):
        text = page.read_text(encoding="utf-8")
        assert text.startswith("# "), f"{page.name} does not start with a '# ' title (the website's page title)"
        for target in re.findall(r"\]\(([^)#\s:]+\.md)(?:#[^)\s]*)?\)", text):
            assert (page.parent / target).is_file(), f"{page.name} links {target}, which does not exist"
